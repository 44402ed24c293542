"""`aztriage probe`: can RDP/SSH be reached, is it really RDP or SSH, and if not, why."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui.cli import CliError
from tui.commands.common import check_subscriptions, output_format, print_json, run_async
from tui.textfmt import fill, table

if TYPE_CHECKING:
    from backend.adapter import Backend

EXIT_NOT_ALL_REACHABLE = 3
EVIDENCE_FOR_AT_MOST = 3  # the table shows evidence when this few VMs are probed


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "probe",
        parents=parents,
        help="probe RDP/SSH of VMs and explain why a port does not answer",
        description="Probe each VM's public IPs, FQDNs and load-balancer NAT frontends on 22 (Linux) or 3389 (Windows), "
        "check that SSH or RDP really answers, and diagnose why not.",
        epilog=f"Exit status: 0 when every probed port is reachable, {EXIT_NOT_ALL_REACHABLE} when some are not, 2 for bad input, 1 when Azure cannot be read.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--vm", metavar="NAME", nargs="+", action="extend", help="the VMs to probe (repeatable)")
    which.add_argument("--all", action="store_true", help="every VM (the default)")
    p.add_argument("--private", action="store_true", help="also probe private IPs (from a network that reaches the VNet, e.g. over VPN)")
    p.add_argument("--source-ip", metavar="IP", help="evaluate NSGs for this source address or tag (default: Internet, or $AZTRIAGE_SOURCE_IP)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds per connection attempt (default 2)")
    p.add_argument("--attempts", type=int, default=2, metavar="N", help="connection attempts per endpoint (default 2)")
    p.add_argument("--concurrency", type=int, default=256, metavar="N", help="probes at once (default 256)")
    p.add_argument("--port", type=int, action="append", default=[], metavar="P", help="an extra port to probe (repeatable)")
    p.add_argument("--from-azure", action="store_true", help="also run Network Watcher's connectivity check from another VM for ports that do not answer")
    p.add_argument("--rdp-file", metavar="DIR", help="write a .rdp file with the current address for every Windows VM whose RDP answers")
    p.set_defaults(func=run)


def _request(args: argparse.Namespace) -> Any:
    from backend.config import ConfigError, load_config
    from backend.connectivity import Request, extra_ports
    from backend.network import Source

    if not 0 < args.timeout <= 600:
        raise CliError("--timeout must be more than 0 and at most 600 seconds")
    if not 1 <= args.attempts <= 20:
        raise CliError("--attempts must be between 1 and 20")
    if not 1 <= args.concurrency <= 65536:
        raise CliError("--concurrency must be between 1 and 65536")
    for port in args.port:
        if not 0 < port < 65536:
            raise CliError(f"--port {port} is not a TCP port (1-65535)")
    if args.rdp_file and not os.path.isdir(args.rdp_file):
        raise CliError(f"--rdp-file {args.rdp_file} is not a directory")
    try:
        config = load_config()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    source = args.source_ip or config.source_ip
    try:
        Source.parse(source)
    except ValueError as exc:
        raise CliError(f"--source-ip: {exc}") from None
    return Request(
        private=args.private,
        source=source,
        extra_ports=extra_ports([*getattr(config, "probe_ports", ()), *args.port]),
        timeout=args.timeout,
        attempts=args.attempts,
        concurrency=args.concurrency,
        from_azure=args.from_azure,
    )


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"))
    request = _request(args)
    from backend.errors import BackendError
    from tui.runtime import demo_emulator, open_backend, resolve_settings

    with demo_emulator(args) as emulator:
        settings = resolve_settings(args, emulator)

        async def main():
            from backend.verdict import VerdictBook, read_changes

            async with open_backend(settings) as backend:
                inventory, report, vms = await _probe(args, backend, request)
                now = datetime.now(UTC)
                book = VerdictBook()
                book.record_report(report, vms, now)
                # A VM that does not answer: what changed on it lately is evidence (one Resource Graph query).
                changes_error = await read_changes(book, backend, inventory, vms, now)
                return inventory, report, vms, book, changes_error

        try:
            inventory, report, vms, book, changes_error = run_async(main())
        except BackendError as exc:
            raise CliError(str(exc), exit_code=1) from None
    written = _write_rdp_files(args.rdp_file, report) if args.rdp_file else []
    verdicts = {vm.name: book.verdict(vm, inventory) for vm in vms}
    if fmt == "json":
        doc = report.to_json()
        # One verdict per VM (backend/verdict.py), the same the console shows.
        doc["verdicts"] = [dict(verdicts[vm.name].to_json(), vm=vm.name, vm_id=vm.id) for vm in vms]
        for d in doc["diagnoses"]:
            d["verdict_of_vm"] = verdicts[d["vm"]].id if d["vm"] in verdicts else None
        if written:
            doc["rdp_files"] = [str(p) for p in written]
        print_json(doc)
    else:
        _print_table(report, vms, written)
        print("\nverdicts:")
        print(table(("VM", "VERDICT", "NEXT STEP"), [(name, v.id, v.next_step) for name, v in verdicts.items()], shrink=(2, 0)))
        _print_changes(verdicts)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if changes_error:
        print(f"note: {changes_error}", file=sys.stderr)
    reachable = all(d.verdict in ("reachable", "ip-changed") for d in report.diagnoses)
    return 0 if reachable else EXIT_NOT_ALL_REACHABLE


async def _probe(args: argparse.Namespace, backend: Backend, request: Any):
    from backend import connectivity
    from backend.lastknown import LastKnownStore, scope_for

    inventory = await backend.inventory(list(args.subscription) if args.subscription else None)
    check_subscriptions(args, inventory.errors)
    try:
        vms = connectivity.choose_vms(inventory, args.vm)
    except KeyError as exc:
        raise CliError(f"no VM named {exc.args[0]!r} in the inventory") from None
    env = await connectivity.environment(backend.settings, inventory)
    store = LastKnownStore(scope=scope_for(backend.settings))
    if backend.settings.demo:
        connectivity.seed_demo_history(store, env, inventory)
    report = await connectivity.run(backend, inventory, vms, request, env=env, store=store)
    return inventory, report, vms


def _write_rdp_files(directory: str, report: Any) -> list[Any]:
    from backend.probe import OPEN, connect_host, write_rdp_file

    written = []
    done: set[str] = set()
    for r in report.results:
        if r.target.protocol != "rdp" or r.status != OPEN or not r.protocol_ok or r.target.vm_id in done:
            continue
        done.add(r.target.vm_id)
        try:
            # The VM's DNS name when Azure gives one, so the file still works after the address changes.
            written.append(write_rdp_file(directory, r.target.vm, connect_host(r, report.results), r.connect_port or r.target.port))
        except OSError as exc:
            raise CliError(f"--rdp-file: cannot write into {directory}: {exc.strerror or exc}") from None
    return written


def _print_table(report: Any, vms: list[Any], written: list[Any]) -> None:
    rows: list[tuple[Any, ...]] = []
    for r in report.results:
        where = f"{r.target.host}:{r.target.port}"
        answer = r.banner or (r.answered or "") if r.status == "open" else r.detail
        rows.append(
            (
                r.target.vm,
                where,
                r.target.kind,
                r.status.upper() if r.status != "open" else "open",
                f"{r.latency_ms:.1f}" if r.latency_ms is not None else "-",
                answer or "",
            )
        )
    if rows:
        print(table(("VM", "ENDPOINT", "VIA", "STATUS", "MS", "ANSWER"), rows, shrink=(5, 1, 0)))
        print()
    rows = [(d.vm, str(d.port), d.summary, d.recommended_scenario or "-") for d in report.diagnoses]
    print(table(("VM", "PORT", "DIAGNOSIS", "RECOVERY"), rows, shrink=(2, 0)))
    if len(vms) <= EVIDENCE_FOR_AT_MOST:
        for d in report.diagnoses:
            print()
            print(fill(f"{d.vm} port {d.port}: {d.summary}", subsequent_indent="  "))
            for line in d.evidence:
                print(fill(line, initial_indent="  - ", subsequent_indent="    "))
    connect = [(d.vm, line) for d in report.diagnoses for line in d.connect]
    if connect:
        print("\nconnect:")
        for vm, line in connect:
            print(f"  {vm}: {line}")
    for path in written:
        print(f"wrote {path}")
    print(f"\n{len(report.results)} endpoints of {len(vms)} VMs probed in {report.elapsed_s:.2f} s")


def _print_changes(verdicts: dict) -> None:
    """What changed lately on the VMs that do not answer (their verdict's evidence)."""
    rows = [(name, v.change) for name, v in verdicts.items() if v.change is not None]
    if not rows:
        return
    from backend.verdict import change_line

    now = datetime.now(UTC)
    print("\nrecent changes (evidence in the verdict):")
    for name, change in rows:
        print(f"  {name}: {change_line(change, now)}")
