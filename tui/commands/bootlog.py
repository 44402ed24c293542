"""`aztriage bootlog`: a VM's serial console log and console screenshot
(boot diagnostics), and what the log says about its last boot."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tui.cli import CliError
from tui.commands.common import add_vm_option, output_format, print_json, run_with_backend

if TYPE_CHECKING:
    from backend.adapter import RecoveryBackend
    from backend.models import BootDiagnosticsData, Vm

DEFAULT_LINES = 40


def _lines(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines between 1 and 100000")
    return int(text)


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bootlog",
        parents=parents,
        help="a VM's serial console log and screenshot (boot diagnostics), and why it does not boot",
        description="Read a VM's boot diagnostics (the serial console log and the console screenshot) through "
        "Compute's retrieve-boot-diagnostics-data operation, and name the known problems in its last boot "
        "with the evidence line and the recovery to use.",
        epilog='Exit status: 0 when the log was read (whatever it says: see "booted" in the JSON), 1 when it could not be '
        "read (boot diagnostics off, Azure or the storage account refused) or the screenshot could not be saved, 2 for bad input.",
    )
    add_vm_option(p)
    p.add_argument("--screenshot", metavar="FILE.png", help="also save the console screenshot as a PNG file")
    p.add_argument("--lines", metavar="N", type=_lines, default=DEFAULT_LINES, help=f"how many lines of the log's end to print (default {DEFAULT_LINES})")
    p.set_defaults(func=run)


def _check_screenshot_path(value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if path.suffix.lower() != ".png":
        raise CliError(f"--screenshot {value}: the file name must end in .png")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"--screenshot {value}: the folder {parent} does not exist")
    if path.is_dir():
        raise CliError(f"--screenshot {value}: that is a folder, not a file")
    if not os.access(parent, os.W_OK):
        raise CliError(f"--screenshot {value}: the folder {parent} is not writable")
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """The whole file or none of it."""
    from backend.files import write_private_atomically

    try:
        write_private_atomically(path, data)
    except OSError as exc:
        raise CliError(f"--screenshot {path}: cannot write it ({exc.strerror or exc})", exit_code=1) from None


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("text", "json"), default="text")
    shot_path = _check_screenshot_path(args.screenshot)
    subscriptions = list(args.subscription) if args.subscription else None

    async def work(backend: RecoveryBackend) -> tuple[Vm, BootDiagnosticsData]:
        from backend.errors import BootDiagnosticsOff
        from backend.recovery.service import VmNotFound, find_vm, read_vm

        try:
            vm_id = await find_vm(backend, args.vm, subscriptions)
        except VmNotFound as exc:
            raise CliError(str(exc)) from None
        vm = (await read_vm(backend, vm_id)).vm
        try:
            data = await backend.boot_diagnostics(vm, screenshot=shot_path is not None)
        except BootDiagnosticsOff as exc:
            raise CliError(f"{exc} (aztriage recover --vm {vm.name} --scenario enable-boot-diagnostics)", exit_code=1) from None
        return vm, data

    vm, data = run_with_backend(args, work)

    from backend import bootdiag

    if data.serial_log is None:
        raise CliError(f"the serial log of VM {vm.name} cannot be read: {data.serial_error or 'no answer'}", exit_code=1)
    verdict = bootdiag.analyze(data.serial_log, vm.os_type)
    saved = None
    shot_error = None
    if shot_path is not None:
        if data.screenshot is None:
            shot_error = data.screenshot_error or "no screenshot"
        else:
            try:
                png = bootdiag.screenshot_png(data.screenshot)
            except ValueError as exc:
                shot_error = str(exc)
            else:
                _write_atomically(shot_path, png)
                saved = str(shot_path)
    tail = bootdiag.tail(data.serial_log, args.lines)
    if fmt == "json":
        doc = {
            "vm": vm.name,
            "serial_log_tail": tail,
            "signatures": [{"id": f.id, "line": f.line, "recommended_scenario": f.recommended_scenario} for f in verdict.findings],
            "screenshot_saved": saved,
            "vm_id": vm.id,
            "storage": data.storage,
            "booted": verdict.booted,
            "summary": verdict.summary,
            "recommended_scenario": verdict.recommended_scenario,
            "repair": list(verdict.repair),
            "last_boot": {"first_line": verdict.last_boot.start + 1, "last_line": verdict.last_boot.end, "boots": verdict.boot_count},
        }
        if shot_error:
            doc["screenshot_error"] = shot_error
        print_json(doc)
    else:
        print(f"{vm.name}: {verdict.summary}")
        for f in verdict.findings:
            print(f"  {f.signature.title} (line {f.line_number}): {f.line}")
            print(f"    recovery: {f.recommended_scenario}")
        if verdict.repair:
            where = "on the rescue VM" if verdict.recommended_scenario == "rescue" else f"(scenario {verdict.recommended_scenario})"
            print(f"\nRepair {where}:")
            for command in verdict.repair:
                print(f"  {command}")
        first = max(1, verdict.line_count - len(tail) + 1)
        print(f"\nLast {len(tail)} lines of the serial log ({data.storage}; the last boot starts at line {verdict.last_boot.start + 1}):")
        for n, line in enumerate(tail, start=first):
            mark = ">" if n - 1 >= verdict.last_boot.start else " "
            print(f"{mark}{n:5d}  {line}")
        if saved:
            print(f"\nScreenshot saved to {saved}")
    if shot_error:
        print(f"aztriage: the screenshot of VM {vm.name} was not saved: {shot_error}", file=sys.stderr)
        return 1
    return 0
