"""`aztriage check` as a script and an operator use it."""

from __future__ import annotations

import json

from tests.support import assert_one_clear_line, succeeded
from tests.test_cli import aztriage


def test_check_json_has_the_documented_shape():
    doc = json.loads(succeeded(aztriage("check", "--demo", "--format", "json")))
    assert set(doc) == {"findings", "summary"}
    for f in doc["findings"]:
        assert {"vm_id", "vm", "rule", "severity", "evidence", "fix"} <= set(f)
        assert f["evidence"] and f["fix"]
    s = doc["summary"]
    assert {"score", "vms", "findings", "by_severity", "by_rule", "by_vm", "by_subscription", "not_checked", "scoring"} <= set(s)
    assert s["vms"] == 30 and 0 <= s["score"] <= 100
    status = {r["rule"]: r["status"] for r in s["by_rule"]}
    assert status["azure-backup"] == status["backup-health"] == "findings"  # read from the Recovery Services vaults
    delete = [f["vm"] for f in doc["findings"] if f["rule"] == "disk-delete-option"]
    assert delete == ["dev-sandbox-01"]
    # Worst first.
    order = ["high", "medium", "low", "info"]
    assert [order.index(f["severity"]) for f in doc["findings"]] == sorted(order.index(f["severity"]) for f in doc["findings"])


def test_check_markdown_and_filters():
    stdout = succeeded(aztriage("check", "--demo", "--format", "md", "--rule", "unmanaged-disks", "--rule", "vm-agent-not-ready"))
    assert stdout.startswith("# High-availability checklist")
    assert "### HIGH unmanaged-disks: legacy-ftp-01" in stdout
    assert "### MEDIUM vm-agent-not-ready: mon-shared-eus-01" in stdout
    assert "no-zone-or-set" not in stdout
    high = json.loads(aztriage("check", "--demo", "--format", "json", "--min-severity", "high").stdout)
    assert high["findings"] and {f["severity"] for f in high["findings"]} == {"high"}


def test_check_table_fits_80_columns():
    stdout = succeeded(aztriage("check", "--demo", "--width", "80"))
    lines = stdout.splitlines()
    assert lines[0].startswith("SEVERITY") and max(len(line) for line in lines) <= 80
    assert any(line.startswith("HIGH") and "unmanaged-disks" in line and "legacy-app-01" in line for line in lines)
    assert any(line.startswith("Score ") for line in lines) and any("not checked: retirement" in line for line in lines)


def test_check_bad_input_is_one_clear_line():
    assert_one_clear_line(aztriage("check", "--demo", "--rule", "no-such-rule"), "unknown rule no-such-rule")
    assert_one_clear_line(aztriage("check", "--demo", "--role-pattern", "("), "not a valid regular expression")
    assert_one_clear_line(aztriage("check", "--demo", "--instance-views", "some"), "not a number of VMs")


def test_list_rules_names_every_rule_with_its_source():
    stdout = succeeded(aztriage("check", "--list-rules"))
    for rule in (
        "no-zone-or-set",
        "single-vm-set",
        "set-domains",
        "single-instance-disks",
        "unmanaged-disks",
        "shared-storage-account",
        "lrs-where-zrs",
        "role-not-load-balanced",
        "boot-diagnostics-off",
        "vm-agent-not-ready",
        "disk-delete-option",
        "planned-maintenance",
        "vcpu-quota",
        "temporary-disk",
        "azure-backup",
        "backup-health",
    ):
        assert rule in stdout


def test_role_rule_is_configured_by_the_environment_or_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.test_checks_adapter import web_estate
    from tests.test_cli import ROOT

    estate = web_estate(tmp_path)

    def run(*extra: str, env: dict | None = None) -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", "check", "--demo", "--demo-estate", estate, "--format", "json", "--rule", "role-not-load-balanced", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )
        assert proc.returncode == 0, proc.stderr
        return [f["vm"] for f in json.loads(proc.stdout)["findings"]]

    assert run() == []  # the default tag "role" is not set in this estate
    assert run(env={"AZTRIAGE_ROLE_TAG": "tier"}) == ["web-03"]
    assert run("--role-tag", "", "--role-pattern", r"^(?P<role>[a-z]+)-\d+$") == ["web-03"]
