"""The verbs on one VM, with the same key in every pane that has a VM selected
(Inventory, Health, Connectivity, Boot, the VM detail, the boot log):

    enter  open          o  recover (the verdict's recovery, else the scenario list)
    p      probe         c  copy (what the pane shows: ids, links, the connect line)
    x      export        esc back

and the command palette's actions on it: recover it with any scenario its state
allows, probe it, read its boot log, see its timeline, open its serial console,
export a report. Typing "redeploy", "probe", "boot", "timeline", "console" or
"report" in the palette finds them."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.scenarios import SCENARIOS

Command = tuple[str, str, Any]


def vm_commands(screen: Any, vm: Vm | None) -> list[Command]:
    if vm is None:
        return []
    commands: list[Command] = []
    now = screen.app.now()  # the console's clock, as its verdicts are judged
    for scenario in SCENARIOS:
        if scenario.unavailable(vm, now) is None:
            commands.append(
                (
                    f"recover: {scenario.title.lower()} ({scenario.id}) {vm.name}",
                    scenario.summary,
                    lambda s=scenario.id: _recover(screen, vm, s),
                )
            )
    commands.append((f"probe: {vm.name}", "Check RDP/SSH of this VM now, and say why not (Connectivity pane; p)", lambda: probe(screen, vm)))
    commands.append((f"vm: boot log of {vm.name}", "The serial log and the console screenshot, and what they say", lambda: _boot(screen, vm)))
    commands.append(
        (f"vm: timeline of {vm.name}", "Who did what, when: activity log, Resource Health and aztriage's runs (T)", lambda: open_timeline(screen, vm))
    )
    commands.append((f"vm: serial console of {vm.name}", "Type into the VM through Azure Serial Console (ctrl+] leaves)", lambda: _console(screen, vm)))
    commands.append(
        (
            f"export: report of {vm.name}",
            "Write the VM's verdict, evidence, ids and portal link to the export folder (x in the VM detail)",
            lambda: export_vm(screen, vm),
        )
    )
    return commands


def open_timeline(screen: Any, vm: Vm) -> None:
    from tui.screens.timeline import TimelineScreen

    screen.app.push_screen(TimelineScreen(vm.id))


def _console(screen: Any, vm: Vm) -> None:
    from tui.screens.serial_console import open_console

    open_console(screen, vm)


def recover(screen: Any, vm: Vm | None) -> None:
    """`o`: the recovery the VM's verdict recommends, chosen in the Recovery pane; with none,
    the pane opens on the VM's list of scenarios."""
    if vm is None:
        screen.notify("No VM is selected.", severity="warning", timeout=3)
        return
    verdict = screen.app.verdict_for(vm)
    scenario = verdict.scenario or ""
    reason = verdict.summary if scenario else f"{verdict.label}: {verdict.summary} (no recovery is recommended; choose one)"
    # The app's worker, not the screen's: leaving a detail page must not cancel it.
    screen.app.run_worker(_open_recovery(screen, vm.id, scenario, reason, tuple(verdict.evidence)), exclusive=False)


async def _open_recovery(screen: Any, vm_id: str, scenario: str, reason: str, evidence: tuple[str, ...]) -> None:
    from tui.screens.boot import open_recovery

    await open_recovery(screen, vm_id, scenario, reason=reason, evidence=evidence)


def _recover(screen: Any, vm: Vm, scenario_id: str) -> None:
    screen.app.run_worker(_open_recovery(screen, vm.id, scenario_id, f"{scenario_id} chosen from the command palette", ()), exclusive=False)


def probe(screen: Any, vm: Vm | None) -> None:
    """`p`: the Connectivity pane, probing this VM."""
    if vm is None:
        screen.notify("No VM is selected.", severity="warning", timeout=3)
        return
    app = screen.app

    async def go() -> None:
        from textual.screen import ModalScreen

        from tui.screens.connectivity import ConnectivityScreen

        while len(app.screen_stack) > 1 and not isinstance(app.screen, ModalScreen):
            app.pop_screen()
        await app.switch_mode("connectivity")
        if isinstance(app.screen, ConnectivityScreen):  # not if a key typed meanwhile moved on (o, a pane's number)
            app.screen.probe_vm(vm)

    app.run_worker(go(), exclusive=False)  # the app's: popping the detail page would cancel the screen's


def export_vm(screen: Any, vm: Vm | None) -> None:
    """`x` in the VM detail: the VM's verdict, evidence, resource id and portal link, as text in the export folder."""
    if vm is None:
        return
    verdict = screen.app.verdict_for(vm)
    lines = [
        f"VM {vm.name}",
        f"resource id: {vm.id}",
        f"portal: {vm.portal_url}",
        f"verdict: {verdict.label}: {verdict.summary}",
        f"next: {verdict.next_step}",
        *(f"  - {line}" for line in verdict.evidence),
    ]
    screen.app.export_text(f"vm-{vm.name}", "txt", "\n".join(lines) + "\n")


def _boot(screen: Any, vm: Vm) -> None:
    from tui.screens.boot import BootDetailScreen

    screen.app.push_screen(BootDetailScreen(vm.id))
