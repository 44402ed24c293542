"""`aztriage console --vm NAME`: a VM's serial console (Azure Serial Console), full
screen, the same view the console app opens (tui/screens/serial_console.py).

The VM is found and the serial console's preflight runs before the screen opens, so
an unknown VM or a refusal (disabled, not running, boot diagnostics off, forbidden,
storage firewall, Windows client without SAC) is one line on stderr and a non-zero
exit. Ctrl+] leaves."""

from __future__ import annotations

import argparse

from tui.cli import CliError
from tui.commands.common import add_vm_option


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "console",
        parents=parents,
        help="type into a VM through Azure Serial Console, full screen (ctrl+] leaves)",
        description="Open a VM's serial console (Azure Serial Console: the preflight checks, the connect call and the websocket) "
        "full screen: the guest's screen through a terminal emulator, every key sent as a terminal sends it, ctrl+] leaves, "
        "ctrl+p offers reconnect, scrollback search and the admin commands (NMI, reset, SysRq; confirmed). With --read-only "
        "the console is watched and nothing is sent. The journal records the session (never what is typed).",
        epilog="Exit status: 0 after leaving the console, 1 when the serial console refuses (the failing check is named) or "
        "cannot be reached, 2 for bad input (an unknown VM).",
    )
    add_vm_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backend.errors import BackendError
    from backend.recovery.service import VmNotFound, find_vm
    from tui.commands.common import run_async
    from tui.runtime import demo_emulator, open_backend, resolve_settings

    subscriptions = list(args.subscription) if args.subscription else None
    with demo_emulator(args) as emulator:
        settings = resolve_settings(args, emulator)

        async def check() -> tuple[str, str]:
            async with open_backend(settings) as backend:
                try:
                    vm_id = await find_vm(backend, args.vm, subscriptions)
                except VmNotFound as exc:
                    raise CliError(str(exc)) from None
                target = await backend.serial_preflight(vm_id)
                return vm_id, target["vm_name"]

        try:
            vm_id, vm_name = run_async(check())
        except BackendError as exc:
            raise CliError(f"the serial console cannot open: {exc}", exit_code=1) from None
        from tui.serial_app import SerialConsoleApp

        app = SerialConsoleApp(settings, vm_id, vm_name)
        app.run()
    return int(app.return_code or 0)
