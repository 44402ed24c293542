"""The command palette's actions on one VM, the same from every pane that has a VM
selected (Inventory, Health, Connectivity, Boot, the VM detail): recover it with any
scenario its state allows, probe it, read its boot log, see its timeline, open its serial
console. Typing "redeploy", "probe", "boot", "timeline" or "console" in the palette finds them."""

from __future__ import annotations

from typing import Any

from backend.models import Vm
from backend.recovery.scenarios import SCENARIOS

Command = tuple[str, str, Any]


def vm_commands(screen: Any, vm: Vm | None) -> list[Command]:
    if vm is None:
        return []
    commands: list[Command] = []
    for scenario in SCENARIOS:
        if scenario.unavailable(vm) is None:
            commands.append((
                f"recover: {scenario.title.lower()} ({scenario.id}) {vm.name}",
                scenario.summary,
                lambda s=scenario.id: _recover(screen, vm, s),
            ))
    commands.append((f"probe: {vm.name}", "Check RDP/SSH of this VM now, and say why not (Connectivity pane)", lambda: _probe(screen, vm)))
    commands.append((f"vm: boot log of {vm.name}", "The serial log and the console screenshot, and what they say", lambda: _boot(screen, vm)))
    commands.append((f"vm: timeline of {vm.name}", "Who did what, when: activity log, Resource Health and aztriage's runs (T)", lambda: open_timeline(screen, vm)))
    commands.append((f"vm: serial console of {vm.name}", "Type into the VM through Azure Serial Console (ctrl+] leaves)", lambda: _console(screen, vm)))
    return commands


def open_timeline(screen: Any, vm: Vm) -> None:
    from tui.screens.timeline import TimelineScreen

    screen.app.push_screen(TimelineScreen(vm.id))


def _recover(screen: Any, vm: Vm, scenario_id: str) -> None:
    from tui.screens.boot import open_recovery

    screen.run_worker(open_recovery(screen, vm.id, scenario_id, reason=f"{scenario_id} chosen from the command palette"), exclusive=False)


def _probe(screen: Any, vm: Vm) -> None:
    app = screen.app

    async def go() -> None:
        await app.switch_mode("connectivity")
        app.screen.start_probe([vm.id], vm.name)

    screen.run_worker(go(), exclusive=False)


def _console(screen: Any, vm: Vm) -> None:
    from tui.screens.serial_console import open_console

    open_console(screen, vm)


def _boot(screen: Any, vm: Vm) -> None:
    from tui.screens.boot import BootDetailScreen

    screen.app.push_screen(BootDetailScreen(vm.id))
