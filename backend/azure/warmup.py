"""Import the Azure SDK ahead of use, from a worker thread.

The SDK's modules take most of a second to import; the console imports them
in a thread after its first frame so neither the first frame nor the first
load waits on the event loop for them."""

from __future__ import annotations


def import_sdk() -> None:
    import azure.mgmt.compute.aio
    import azure.mgmt.network.aio
    import azure.mgmt.resource.subscriptions.aio
    import azure.mgmt.resourcehealth.aio  # noqa: F401

    import backend.azure.backend  # noqa: F401  azure.core, azure.identity, aiohttp
