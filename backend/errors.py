"""The failures a backend capability raises, in a module of their own: the
capability protocols (``backend.adapter``), their Azure implementation and the
domain code all import it, and it imports nothing."""

from __future__ import annotations


class BackendError(Exception):
    """A failure the operator can act on; ``str()`` is one sentence."""

    def __init__(self, message: str, *, code: str = "Error", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class BootDiagnosticsOff(BackendError):
    """The VM has boot diagnostics off: there is nothing to read until they are enabled."""


class SerialConsoleRefused(BackendError):
    """The serial console cannot open on this VM; ``reason`` names the one condition
    (disabled, not-running, boot-diagnostics-off, forbidden, storage-firewall, no-sac,
    not-found) and ``str()`` says it in one sentence."""

    def __init__(self, reason: str, message: str, *, status: int | None = None):
        super().__init__(message, code=f"SerialConsole.{reason}", status=status)
        self.reason = reason


class SerialConsoleClosed(BackendError):
    """The serial console's websocket closed (dropped by the network, the gateway or the VM)."""
