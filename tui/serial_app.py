"""The serial console screen alone, full screen: what `aztriage console --vm NAME` runs
(tui/commands/console.py checks the VM and the preflight before it starts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import App

from tui.palette import AztriageCommands

if TYPE_CHECKING:
    from backend.adapter import Backend
    from backend.settings import ConnectionSettings


class SerialConsoleApp(App[int]):
    """The serial console screen alone: what `aztriage console` runs."""

    TITLE = "aztriage console"
    COMMANDS = App.COMMANDS | {AztriageCommands}

    def __init__(self, settings: ConnectionSettings, vm_id: str, vm_name: str, *, journal_path: Any = None) -> None:
        super().__init__()
        self.settings = settings
        self.vm_id = vm_id
        self.vm_name = vm_name
        self.journal_path = journal_path
        self.backend: Backend | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Ctrl+Q belongs to the guest while its terminal has the focus (ctrl+] leaves).
        if action == "quit" and getattr(self.focused, "TAKES_EVERY_KEY", False):
            return False
        return super().check_action(action, parameters)

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None, markup: bool = False) -> None:
        """Plain text, never markup (messages carry VM names and Azure's text)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        from backend.composition import create_backend
        from tui.screens.serial_console import SerialConsoleScreen

        self.backend = create_backend(self.settings)
        screen = SerialConsoleScreen(self.backend, self.vm_id, self.vm_name, read_only=self.settings.read_only, journal_path=self.journal_path)
        self.push_screen(screen, lambda _result: self.exit(0))

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("app: quit", "Leave the console and aztriage", self.exit)]

    async def on_unmount(self) -> None:
        if self.backend is not None:
            await self.backend.close()
