"""The composition root: the one place that knows ``AzureBackend``.

The console, the CLI and the benchmarks ask here for a ``Backend`` (every
capability of ``backend.adapter``); the rest of the code sees the protocols
only. Importing this module is cheap: the Azure SDK is imported by
``create_backend`` (or ahead of it by ``import_sdk``, from a thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.adapter import Backend
    from backend.settings import ConnectionSettings


def create_backend(settings: ConnectionSettings) -> Backend:
    """Build the real adapter. Imports the Azure SDK, so call it after the first frame."""
    from backend.azure.backend import AzureBackend

    return AzureBackend(settings.validate())


def import_sdk() -> None:
    """Import the Azure SDK ahead of use (about a second): the console runs this in a
    thread after its first frame, so neither that frame nor the first load waits."""
    from backend.azure.warmup import import_sdk as warm_up

    warm_up()
