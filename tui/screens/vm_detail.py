"""The detail panel of one VM (enter on a row). It follows refreshes: the VM
is looked up again by id in each new inventory."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from backend.models import Inventory, Vm
from tui.screens.base import BaseScreen
from widgets.vm_detail import VmDetail


class VmDetailScreen(BaseScreen):
    CSS_PATH = "vm_detail.tcss"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("c", "copy_id", "Copy id", id="detail.copy_id"),
        Binding("o", "copy_link", "Copy portal link", id="detail.copy_link"),
        Binding("b", "boot", "Boot diagnostics", show=False, id="detail.boot"),
        Binding("T", "timeline", "Timeline", show=False, id="detail.timeline"),
        Binding("i", "console", "Serial console", id="detail.console"),
    ]

    def __init__(self, vm_id: str) -> None:
        super().__init__()
        self.vm_id = vm_id
        self.vm: Vm | None = None

    def compose_body(self) -> ComposeResult:
        yield VmDetail(id="detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(VmDetail).focus()

    def show_inventory(self, inventory: Inventory) -> None:
        self.vm = inventory.vm_by_id(self.vm_id)
        self.query_one(VmDetail).show(self.vm, inventory, self.aztriage.now())
        self.update_status()

    def update_status(self) -> None:
        name = self.vm.name if self.vm else self.vm_id.rsplit("/", 1)[-1]
        self.set_status(f" VM {name} · esc back · T timeline · c copy id · i serial console")

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(self.vm_id)
        self.notify("Resource id copied to the clipboard (OSC 52).", timeout=3)

    def action_copy_link(self) -> None:
        if self.vm:
            self.app.copy_to_clipboard(self.vm.portal_url)
            self.notify("Portal link copied to the clipboard (OSC 52).", timeout=3)

    def action_boot(self) -> None:
        from tui.screens.boot import BootDetailScreen

        self.app.push_screen(BootDetailScreen(self.vm_id))

    def action_timeline(self) -> None:
        from tui.screens.timeline import TimelineScreen

        self.app.push_screen(TimelineScreen(self.vm_id))

    def action_console(self) -> None:
        from tui.screens.serial_console import open_console

        if self.vm is None:
            self.notify("The VM is not in the inventory (yet).", severity="warning", timeout=4)
            return
        open_console(self, self.vm)

    def palette_commands(self):
        from tui.vm_commands import vm_commands

        name = self.vm.name if self.vm else "this VM"
        return [
            (f"vm: boot diagnostics of {name}", "The serial log and the console screenshot, and what they say (b)", self.action_boot),
            (f"vm: copy resource id of {name}", "Put the ARM resource id on the clipboard", self.action_copy_id),
            (f"vm: copy portal link of {name}", "Put the Azure portal link on the clipboard", self.action_copy_link),
            ("view: back", "Close the detail panel", self.app.pop_screen),
            *vm_commands(self, self.vm),
        ]
