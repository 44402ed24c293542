"""Messages the app sends to every pane."""

from __future__ import annotations

from textual.message import Message

from backend.models import Inventory


class InventoryChanged(Message):
    """A refresh finished: every pane redraws from this inventory."""

    def __init__(self, inventory: Inventory) -> None:
        super().__init__()
        self.inventory = inventory


class LoadStateChanged(Message):
    """A refresh started, failed or the connection came up: panes update their error rows and status."""


class VerdictsChanged(Message):
    """What the session knows about some VMs changed (a probe, a boot log, a recovery run):
    panes that show verdicts redraw them (backend.verdict, the app's `verdict_for`)."""


class ShowVm(Message):
    """Show this VM in the Inventory pane: any pane posts it to the app (the Checklist's enter)."""

    def __init__(self, vm_id: str) -> None:
        super().__init__()
        self.vm_id = vm_id


class OpenRecovery(Message):
    """Open the Recovery pane on a VM with a scenario chosen (the Connectivity pane's `o`).

    The sender switches to the "recovery" pane and posts this to that pane's
    screen; `scenario` is a recovery scenario id (start, redeploy, restart,
    reset-access, run-fix, fix-nsg, rescue, perform-maintenance), `reason` the
    one-line verdict and `evidence` its lines, to show why it was chosen."""

    def __init__(self, vm_id: str, scenario: str, reason: str = "", evidence: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.vm_id = vm_id
        self.scenario = scenario
        self.reason = reason
        self.evidence = tuple(evidence)
