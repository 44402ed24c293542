"""`aztriage find TEXT`: a VM anywhere in the tenant, by name, IP address or id, from
Azure Resource Graph (backend/search.py) without loading the inventory."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli import CliError
from tui.commands.common import output_format, print_json, run_with_backend
from tui.textfmt import table

if TYPE_CHECKING:
    from backend.adapter import ResourceGraph


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("find", parents=parents, help="find a VM anywhere in the tenant by name, IP address or id (Azure Resource Graph)")
    p.add_argument("text", metavar="NAME|IP|ID")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backend.safetext import safe_line
    from backend.search import MAX_MATCHES, SearchError, classify, find_vms

    fmt = output_format(args, ("table", "json"))
    try:
        classify(args.text)
    except SearchError as exc:
        raise CliError(str(exc)) from None

    async def work(backend: ResourceGraph):
        return await find_vms(backend, args.text, list(args.subscription) if args.subscription else None)

    found = run_with_backend(args, work)
    if fmt == "json":
        print_json(
            {
                "vms": [
                    {
                        "id": v.id,
                        "name": v.name,
                        "resource_group": v.resource_group,
                        "subscription_id": v.subscription_id,
                        "location": v.location,
                        "power_state": v.power_state,
                        "matched": v.matched,
                    }
                    for v in found.vms
                ],
                "truncated": found.truncated,
                "subscription_limit_hit": found.subscription_limit_hit,
            }
        )
    elif found.vms:
        rows = [(v.name, v.resource_group, v.subscription_id, v.location, v.power_state, v.matched, v.id) for v in found.vms]
        print(table(("NAME", "GROUP", "SUBSCRIPTION", "LOCATION", "POWER", "MATCHED", "ID"), rows, shrink=(6, 2, 1)))
    if found.truncated:
        print(
            f"warning: more VMs match than the {MAX_MATCHES} shown (or Resource Graph cut its answer): narrow the search with --subscription", file=sys.stderr
        )
    if found.subscription_limit_hit:
        print("warning: Resource Graph searched only the first 10,000 subscriptions of the tenant: name more with --subscription", file=sys.stderr)
    if not found.vms:
        raise CliError(f"no VM matches {safe_line(args.text.strip())} in the subscriptions Resource Graph searched", exit_code=1)
    return 0
