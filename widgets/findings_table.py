"""The checklist's findings as one table, grouped by rule or by VM, worst first.

A group is a header row ("▾ no-zone-or-set (21)") followed by its findings,
indented. The order is the checklist's (points lost, then severity), so the
table does not sort by column: `s` and a click on a header do nothing here.
Severity reads without colour: HIGH in upper case, the others in lower case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.checks import SEVERITY_RANK, CheckResult, Finding, NotChecked
from widgets.fast_table import Column, FastTable, Row

COLUMNS = (
    Column("severity", "SEV", min_width=4, max_width=6),
    Column("what", "FINDING", min_width=14, max_width=24),
    Column("evidence", "EVIDENCE", min_width=10, max_width=400, shrink=True),
)

BY_RULE = "rule"
BY_VM = "vm"
SEVERITY_TONES = {"high": "bad", "medium": "warn", "low": None, "info": "muted"}


@dataclass(frozen=True)
class Group:
    """What a header row stands for."""

    kind: str  # rule / vm / subscription / not-checked
    key: str
    title: str
    findings: tuple[Finding, ...] = ()
    not_checked: tuple[NotChecked, ...] = ()
    score: int | None = None
    vm_id: str | None = None


def severity_text(severity: str) -> str:
    return severity.upper() if severity == "high" else severity


def finding_key(f: Finding) -> Hashable:
    """Stable across refreshes (evidence text may change, e.g. quota numbers)."""
    if f.vm_id:
        return ("finding", f.rule, f.vm_id.lower())
    return ("finding", f.rule, f.subscription_id.lower(), f.location.lower(), f.evidence.split(":", 1)[0])


def _haystack(f: Finding, names: Mapping[str, str]) -> str:
    return " ".join(
        (f.severity, f.rule, f.title, f.vm or "", f.resource_group, f.location, names.get(f.subscription_id.lower(), f.subscription_id), f.evidence)
    ).lower()


def _finding_row(f: Finding, label: str, names: Mapping[str, str]) -> Row:
    return Row(finding_key(f), (severity_text(f.severity), "  " + label, f.evidence), (SEVERITY_TONES[f.severity], None, None), (), _haystack(f, names), f)


def _header(key: Hashable, severity: str, label: str, detail: str, item: Group, members: Iterable[Row]) -> Row:
    hay = " ".join([label.lower(), detail.lower()] + [m.haystack for m in members])
    return Row(
        key,
        (severity_text(severity) if severity else "-", "▾ " + label, detail),
        (SEVERITY_TONES.get(severity, "muted") or "accent", "accent", "muted"),
        (),
        hay,
        item,
    )


def rows_for(result: CheckResult, grouping: str, names: Mapping[str, str] | None = None) -> list[Row]:
    """Header and finding rows in display order."""
    names = names or {}
    rows: list[Row] = []
    summary = result.summary()
    if grouping == BY_RULE:
        of_rule: dict[str, list[Finding]] = defaultdict(list)
        for f in result.findings:
            of_rule[f.rule].append(f)
        for r in summary["by_rule"]:
            found = of_rule.get(r["rule"])
            if not found:
                continue
            found.sort(key=lambda f: (SEVERITY_RANK[f.severity], (f.vm or "").lower()))
            members = [_finding_row(f, f.vm or f"subscription {names.get(f.subscription_id.lower(), f.subscription_id)} · {f.location}", names) for f in found]
            worst = found[0].severity
            detail = f"{r['title']} · {r['vms'] or len(found)} {'VM' if (r['vms'] or len(found)) == 1 else 'VMs'}" + (
                f" · -{r['points']} points" if r["points"] else ""
            )
            group = Group("rule", r["rule"], r["title"], tuple(found))
            rows.append(_header(("rule", r["rule"]), worst, f"{r['rule']} ({len(found)})", detail, group, members))
            rows.extend(members)
    else:
        scores = result.vm_scores()
        for entry in summary["by_vm"]:
            found = list(result.for_vm(entry["vm_id"]))
            if not found:
                continue
            vm = result.inventory.vm_by_id(entry["vm_id"])
            members = [_finding_row(f, f.rule, names) for f in found]
            where = f"{vm.resource_group} · {names.get(vm.subscription_id.lower(), vm.subscription_id)} · {vm.location}" if vm else ""
            score = scores.get(entry["vm_id"].lower())
            group = Group("vm", entry["vm_id"].lower(), entry["vm"], tuple(found), score=score, vm_id=entry["vm_id"])
            rows.append(_header(("vm", entry["vm_id"].lower()), found[0].severity, f"{entry['vm']} ({len(found)})", f"score {score} · {where}", group, members))
            rows.extend(members)
        wide = [f for f in result.findings if not f.vm_id]
        if wide:
            members = [_finding_row(f, f.rule, names) for f in wide]
            group = Group("subscription", "wide", "subscription-wide", tuple(wide))
            rows.append(
                _header(
                    ("group", "subscription-wide"),
                    wide[0].severity,
                    f"subscription-wide ({len(wide)})",
                    "quota and other limits of a subscription in a region",
                    group,
                    members,
                )
            )
            rows.extend(members)
    if result.not_checked:
        members = [
            Row(
                ("not-checked", n.rule, n.scope),
                ("-", "  " + n.rule, f"{n.scope}: {n.reason}"),
                ("muted", "muted", "muted"),
                (),
                f"not checked {n.rule} {n.scope} {n.reason}".lower(),
                n,
            )
            for n in result.not_checked
        ]
        group = Group("not-checked", "not-checked", "not checked", not_checked=tuple(result.not_checked))
        rows.append(
            _header(
                ("group", "not-checked"),
                "",
                f"not checked ({len(members)})",
                "rules or scopes that could not be evaluated: no answer is invented",
                group,
                members,
            )
        )
        rows.extend(members)
    return rows


class FindingsTable(FastTable):
    """Findings grouped under header rows; the checklist's order, never re-sorted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(COLUMNS, fixed_columns=2, sort_column=None, empty_text="Checking…", **kwargs)

    def sort_by(self, column: str | None, reverse: bool | None = None) -> None:
        """Groups keep the checklist's order (worst first)."""

    def action_sort_next(self) -> None:
        """No column sort here (see sort_by)."""

    def action_sort_reverse(self) -> None:
        """No column sort here (see sort_by)."""

    @property
    def cursor_finding(self) -> Finding | None:
        item = self.cursor_item
        return item if isinstance(item, Finding) else None

    @property
    def cursor_vm_id(self) -> str | None:
        """The VM of the selected finding or VM group."""
        item = self.cursor_item
        if isinstance(item, Finding):
            return item.vm_id
        if isinstance(item, Group):
            return item.vm_id
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Hides "s Sort" from the footer: this table keeps the checklist's order.
        return action not in ("sort_next", "sort_reverse")
