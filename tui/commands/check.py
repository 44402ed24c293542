"""`aztriage check`: the high-availability checklist over every VM."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli import CliError
from tui.commands.common import add_instance_views_option, check_subscriptions, output_format, print_json, run_with_backend
from tui.textfmt import fill, table

if TYPE_CHECKING:
    from backend.adapter import CheckBackend


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", parents=parents, help="the high-availability checklist: findings with evidence and fix")
    p.add_argument("--rule", metavar="ID", action="append", help="only this rule (repeatable); see --list-rules")
    p.add_argument("--min-severity", choices=("high", "medium", "low", "info"), default="info", help="leave out findings below this severity")
    p.add_argument("--role-tag", metavar="TAG", help="tag whose value names a VM's role (default: config role_tag, else 'role')")
    p.add_argument("--role-pattern", metavar="REGEX", help="regular expression on VM names whose group 'role' names the role")
    add_instance_views_option(p)
    p.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    p.set_defaults(func=run)


def role_settings_from(args: argparse.Namespace):
    """The role rule's settings: command line, else the config file, else the default tag."""
    from backend.checks import RoleSettings, role_settings
    from backend.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    base = role_settings(config)
    tag = base.tag if args.role_tag is None else (args.role_tag.strip() or None)
    pattern = base.pattern if args.role_pattern is None else (args.role_pattern or None)
    try:
        return RoleSettings(tag=tag, pattern=pattern, nonprod_pattern=base.nonprod_pattern)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from backend import checks

    if args.list_rules:
        rows = [(r.id, r.severity, r.title, r.source) for r in checks.RULES]
        print(table(("RULE", "SEVERITY", "TITLE", "SOURCE"), rows, shrink=(3, 2)))
        return 0
    fmt = output_format(args, ("table", "json", "md"))
    unknown = [r for r in args.rule or () if r not in checks.RULES_BY_ID]
    if unknown:
        raise CliError(f"unknown rule {', '.join(unknown)}: see 'aztriage check --list-rules'")
    roles = role_settings_from(args)

    async def work(backend: CheckBackend):
        return await checks.evaluate(backend, list(args.subscription) if args.subscription else None, roles, instance_view_limit=args.instance_views)

    inv, result = run_with_backend(args, work)
    check_subscriptions(args, inv.errors)
    result = filtered(result, args.rule, args.min_severity)
    if fmt == "json":
        print_json(result.to_json())
    elif fmt == "md":
        sys.stdout.write(checks.render_markdown(result))
    else:
        print_table(result)
    if inv.errors and len(inv.errors) >= len(inv.subscriptions):
        return 1
    return 0


def filtered(result, rule_ids, min_severity: str):
    """The same result with only the chosen rules and severities (the summary follows)."""
    import dataclasses

    from backend.checks import RULES_BY_ID, SEVERITY_RANK

    limit = SEVERITY_RANK[min_severity]
    keep_rules = set(rule_ids or RULES_BY_ID)
    findings = tuple(f for f in result.findings if f.rule in keep_rules and SEVERITY_RANK[f.severity] <= limit)
    return dataclasses.replace(
        result,
        findings=findings,
        not_checked=tuple(n for n in result.not_checked if n.rule in keep_rules),
        rules=tuple(r for r in result.rules if r.id in keep_rules),
    )


def print_table(result) -> None:
    rows = [(f.severity.upper() if f.severity == "high" else f.severity, f.rule, f.vm or f"({f.location})", f.evidence) for f in result.findings]
    if rows:
        print(table(("SEVERITY", "RULE", "VM", "EVIDENCE"), rows, shrink=(3, 2, 1)))
    else:
        print("No findings.")
    s = result.summary()
    sev = s["by_severity"]
    tail = [
        f"Score {s['score']}/100 over {s['vms']} VMs: {sev['high']} high, {sev['medium']} medium, {sev['low']} low, {sev['info']} info."
        " 'aztriage check --format md' shows the evidence and fix of every finding."
    ]
    tail += [f"not checked: {n.rule} ({n.scope}): {n.reason}" for n in result.not_checked]
    print()
    for line in tail:
        print(fill(line, subsequent_indent="  "))
    for e in s["errors"]:
        print(f"subscription {e['subscription_id']} failed: {e['code']}: {e['message']}", file=sys.stderr)
