"""What the composition root (backend/composition.py) needs of the Azure side: the real
adapter, and the SDK's imports ahead of use, from a worker thread.

The SDK's modules take most of a second to import. The first load needs only
azure.core, azure.identity and aiohttp (every list is read through the raw
pipeline client, ``lists.raw_list``): ``import_core`` is what the console waits
for before it starts loading. The management clients' modules (about 0.5 s of
CPU, which held the interpreter lock while the first load parsed its pages)
are imported by ``import_clients`` once the first load is in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.azure.backend import AzureBackend
    from backend.settings import ConnectionSettings


def create(settings: ConnectionSettings) -> AzureBackend:
    """The real adapter (imports the Azure SDK)."""
    from backend.azure.backend import AzureBackend

    return AzureBackend(settings.validate())


def import_core() -> None:
    import backend.azure.backend  # noqa: F401  azure.core, azure.identity, aiohttp


def import_clients() -> None:
    import azure.mgmt.compute.aio
    import azure.mgmt.network.aio
    import azure.mgmt.resource.subscriptions.aio
    import azure.mgmt.resourcehealth.aio  # noqa: F401
