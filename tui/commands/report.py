"""`aztriage report --vm NAME`: an incident report for a ticket."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backend.files import write_private_atomically
from tui.cli import CliError
from tui.commands.common import check_subscriptions, output_format, run_with_backend

if TYPE_CHECKING:
    from backend.adapter import ReportBackend


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        parents=parents,
        help="an incident report for a ticket: the VM, its health, service events, probes and diagnosis, recovery runs, open findings",
    )
    p.add_argument("--vm", metavar="NAME", action="append", required=True, help="the VM: NAME, RESOURCE_GROUP/NAME or its id (repeatable)")
    p.add_argument("--output", "-o", metavar="PATH", help="write the report to this file (default: standard output)")
    p.add_argument("--no-probe", action="store_true", help="do not probe RDP/SSH for the report")
    p.add_argument("--role-tag", metavar="TAG", help=argparse.SUPPRESS)
    p.add_argument("--role-pattern", metavar="REGEX", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def write_file(path: str, text: str) -> Path:
    """Write atomically (never a half-written report), readable only by the user."""
    target = Path(path).expanduser()
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise CliError(f"--output {path} is a directory; name a file")
    if not directory.is_dir():
        raise CliError(f"--output {path}: the directory {directory} does not exist")
    try:
        write_private_atomically(target, text)
    except OSError as exc:
        raise CliError(f"--output {path} cannot be written: {exc.strerror}") from None
    return target.resolve()


def run(args: argparse.Namespace) -> int:
    from backend.report import ReportError, collect_reports, render
    from tui.commands.check import role_settings_from

    fmt = output_format(args, ("md", "json"), default="md")
    roles = role_settings_from(args)
    if args.output:
        # Refuse a bad path before any work is done.
        out = Path(args.output).expanduser()
        if out.is_dir():
            raise CliError(f"--output {args.output} is a directory; name a file")
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise CliError(f"--output {args.output}: the directory {out.parent} does not exist")

    async def work(backend: ReportBackend):
        try:
            return await collect_reports(
                backend,
                args.vm,
                subscription_ids=list(args.subscription) if args.subscription else None,
                roles=roles,
                probe=not args.no_probe,
            )
        except ReportError as exc:
            raise CliError(str(exc)) from None

    inv, reports = run_with_backend(args, work)
    check_subscriptions(args, inv.errors)
    text = render(reports, fmt)
    if args.output:
        path = write_file(args.output, text)
        print(f"incident report written to {path}")
    else:
        sys.stdout.write(text)
    return 0
