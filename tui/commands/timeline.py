"""`aztriage timeline --vm NAME [--since 24h] [--source ...]`: who did what to a VM, when.

The activity log of the VM and of what it stands on (NICs, NSGs, public IPs, disks),
Resource Health's availability history and aztriage's recovery runs, newest first,
with "who stopped it" on top when the VM is stopped or deallocated."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli import CliError
from tui.commands.common import check_subscriptions, output_format, print_json, run_with_backend
from tui.textfmt import table

if TYPE_CHECKING:
    from backend.adapter import Backend
    from backend.timeline import Timeline

SOURCE_CHOICES = ("activity", "health", "changes", "aztriage")


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("timeline", parents=parents, help="who did what to a VM, when: activity log, Resource Health and recovery runs on one time axis")
    p.add_argument("--vm", metavar="NAME", required=True, help="the VM: NAME, RESOURCE_GROUP/NAME or its id")
    p.add_argument("--since", metavar="AGE", default="24h", help="how far back: 90m, 24h, 7d (at most 90d, the activity log's retention; default 24h)")
    p.add_argument(
        "--source", metavar="SOURCE", action="append", choices=SOURCE_CHOICES, help="only this source: activity, health, changes or aztriage (repeatable)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from backend.report import ReportError, find_vm
    from backend.timeline import build_timeline, journal_for, parse_since

    fmt = output_format(args, ("table", "json", "md"))
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise CliError(str(exc)) from None

    async def work(backend: Backend) -> tuple[object, Timeline]:
        inv = await backend.inventory(list(args.subscription) if args.subscription else None, instance_views=0)
        try:
            vm = find_vm(inv, args.vm)
        except ReportError as exc:
            raise CliError(str(exc)) from None
        now = datetime.now(UTC)
        return inv, await build_timeline(backend, vm, since=now - since, until=now, journal=journal_for(vm.id))

    inv, timeline = run_with_backend(args, work)
    check_subscriptions(args, getattr(inv, "errors", ()))
    if args.source:
        timeline = timeline.only(args.source)
    if fmt == "json":
        print_json(timeline.to_json())
    elif fmt == "md":
        from backend.escape import md_inline
        from backend.report import timeline_markdown

        sys.stdout.write("\n".join([f"# Timeline: {md_inline(timeline.vm_name)}", "", *timeline_markdown(timeline.to_json())]).rstrip() + "\n")
    else:
        print(render_table(timeline))
    for source, message in timeline.errors:
        print(f"{source} not read: {message}", file=sys.stderr)
    return 1 if timeline.errors and not timeline.entries else 0


def render_table(timeline: Timeline) -> str:
    lines = [f"Timeline of {timeline.vm_name}: {timeline.since:%Y-%m-%d %H:%M} to {timeline.until:%Y-%m-%d %H:%M} UTC, newest first"]
    if timeline.who_stopped is not None:
        lines.append(f"Who stopped it: {timeline.who_stopped.sentence}")
    if not timeline.entries:
        lines.append("Nothing recorded in this window (try a longer --since).")
        return "\n".join(lines)
    # Sources by their short names (activity, health, aztriage): the WHAT column keeps the room.
    rows = [(e.time.strftime("%Y-%m-%d %H:%M"), e.source, e.actor, e.what, e.status) for e in timeline.entries]
    lines += ["", table(("TIME (UTC)", "SOURCE", "WHO", "WHAT", "STATUS"), rows, shrink=(3, 2))]
    return "\n".join(lines)
