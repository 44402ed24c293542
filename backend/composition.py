"""The composition root: the one place that knows ``AzureBackend``.

The console, the CLI and the benchmarks ask here for a ``Backend`` (every
capability of ``backend.adapter``); the rest of the code sees the protocols
only. Importing this module is cheap: the Azure SDK is imported by
``create_backend`` (or ahead of it by ``import_sdk`` and ``import_sdk_clients``, from a
thread)."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.adapter import Backend
    from backend.settings import ConnectionSettings


def _azure() -> ModuleType:
    """backend.azure's entry module, imported here only (it imports the SDK lazily itself)."""
    from backend.azure import entry

    return entry


def create_backend(settings: ConnectionSettings) -> Backend:
    """Build the real adapter. Imports the Azure SDK, so call it after the first frame."""
    backend: Backend = _azure().create(settings)
    return backend


def import_sdk() -> None:
    """Import what the first load needs of the Azure SDK ahead of use (azure.core,
    azure.identity, aiohttp): the console runs this in a thread after its first frame,
    so neither that frame nor the first load waits on the event loop for it."""
    _azure().import_core()


def import_sdk_clients() -> None:
    """Import the SDK's management clients ahead of their first use (about 0.5 s of CPU):
    the console runs this in a thread once its first load is in, when importing no
    longer competes with that load for the interpreter lock."""
    _azure().import_clients()
