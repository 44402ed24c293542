"""The detail panel of one VM (enter on a row). It follows refreshes: the VM
is looked up again by id in each new inventory."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from backend.backup import BackupBook
from backend.models import Inventory, Vm
from tui.messages import VerdictsChanged
from tui.screens.base import BaseScreen
from widgets.vm_detail import VmDetail


class VmDetailScreen(BaseScreen):
    CSS_PATH = "vm_detail.tcss"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("o", "recover", "Recover", id="detail.recover"),
        Binding("p", "probe", "Probe", id="detail.probe"),
        Binding("c", "copy", "Copy", id="detail.copy"),
        Binding("x", "export", "Export", show=False, id="detail.export"),
        Binding("b", "boot", "Boot log", show=False, id="detail.boot"),
        Binding("T", "timeline", "Timeline", show=False, id="detail.timeline"),
        Binding("i", "console", "Serial console", id="detail.console"),
    ]

    def __init__(self, vm_id: str) -> None:
        super().__init__()
        self.vm_id = vm_id
        self.vm: Vm | None = None
        self._reading = False  # a sketch of the VM (the broken view's) is being read whole
        self.backup: BackupBook | None = None  # the VM's subscription's Azure Backup, once read

    def compose_body(self) -> ComposeResult:
        yield VmDetail(id="detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(VmDetail).focus()

    def show_inventory(self, inventory: Inventory) -> None:
        from backend.search import is_sketch

        self.vm = inventory.vm_by_id(self.vm_id)
        self._show(inventory)
        if self.vm is not None and is_sketch(self.vm) and not self._reading:
            self._reading = True
            self.set_status(f" VM {self.vm.name} · reading it whole from Resource Graph…")
            self._read_whole()
        elif self.vm is not None:
            # A VM that does not answer: what changed on it lately (read once, after the fact).
            self.aztriage.changes_for([self.vm])

    def _show(self, inventory: Inventory | None) -> None:
        verdict = self.aztriage.verdict_for(self.vm) if self.vm is not None and inventory is not None else None
        self.query_one(VmDetail).show(self.vm, inventory, self.aztriage.now(), verdict, self.backup)
        self.update_status()
        if self.backup is None and self.vm is not None:
            self.read_backup(self.vm.subscription_id)

    @work(exclusive=True, group="vm-backup", exit_on_error=False, description="reading Azure Backup")
    async def read_backup(self, subscription_id: str) -> None:
        """The Recovery Services vaults of the VM's subscription (one list, two per vault)."""
        backend = self.aztriage.backend
        if backend is None:
            return
        self.backup = await backend.backup_protection([subscription_id])
        self._show(self.aztriage.inventory)

    @work(exclusive=True, group="read-vm", exit_on_error=False, description="reading the VM from Resource Graph")
    async def _read_whole(self) -> None:
        """The broken view knows this VM from its health row only: its NICs, disks and NSGs
        come from Resource Graph now (the new inventory redraws this page)."""
        await self.aztriage.read_whole(self.vm_id)

    @on(VerdictsChanged)
    def _verdicts_changed(self) -> None:
        self._show(self.aztriage.inventory)

    def update_status(self) -> None:
        name = self.vm.name if self.vm else self.vm_id.rsplit("/", 1)[-1]
        self.set_status(f" VM {name} · esc back · x export · T timeline · b boot log")

    def action_copy(self) -> None:
        """The resource id and the portal link, whole and selectable, sent to the clipboard on request."""
        from widgets.copy_dialog import CopyDialog

        name = self.vm.name if self.vm else self.vm_id.rsplit("/", 1)[-1]
        items = [("resource id", self.vm_id)]
        if self.vm is not None:
            items.append(("portal link", self.vm.portal_url))
        self.app.push_screen(CopyDialog(f"Copy from {name}", items, file_stem=f"vm-{name}-ids", write=self.aztriage.export_text))

    def action_recover(self) -> None:
        from tui.vm_commands import recover

        recover(self, self.vm)

    def action_probe(self) -> None:
        from tui.vm_commands import probe

        probe(self, self.vm)

    def action_export(self) -> None:
        from tui.vm_commands import export_vm

        export_vm(self, self.vm)

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
            (f"vm: copy resource id or portal link of {name}", "Show them whole and selectable; send one to the clipboard (c)", self.action_copy),
            ("view: back", "Close the detail panel", self.app.pop_screen),
            *vm_commands(self, self.vm),
        ]
