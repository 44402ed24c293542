"""The one async interface the console, the CLI and the benchmarks use.

``AzureBackend`` (backend/azure) is the only implementation; the demo points
it at the local emulator, so the demo and real Azure share one code path.
"""

from __future__ import annotations

from typing import Protocol

from backend.models import Inventory, Subscription
from backend.settings import ConnectionSettings


class BackendError(Exception):
    """A failure the operator can act on; ``str()`` is one sentence."""

    def __init__(self, message: str, *, code: str = "Error", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class Backend(Protocol):
    settings: ConnectionSettings

    @property
    def identity(self) -> str:
        """Who is signed in, for the header (or DEMO)."""

    async def list_subscriptions(self) -> list[Subscription]: ...

    async def inventory(self, subscription_ids: list[str] | None = None) -> Inventory: ...

    async def close(self) -> None: ...


def create_backend(settings: ConnectionSettings) -> Backend:
    """Build the real adapter. Imports the Azure SDK, so call it after the first frame."""
    from backend.azure.backend import AzureBackend

    return AzureBackend(settings.validate())
