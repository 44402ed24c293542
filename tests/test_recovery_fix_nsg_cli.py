"""`aztriage recover --scenario fix-nsg`, `aztriage runs --release` and `--undo` as an
operator runs them, against the demo on a running emulator: real processes, the demo
story told by `aztriage probe` (blocked, reachable after the run, blocked again after the
release), one-sentence refusals, --read-only, and kill -9 (SIGKILL) of the real command
at every boundary the plan passes (recorded from the plan itself, tests/kill_points.py),
each followed by --resume to the same end."""

from __future__ import annotations

import json
import signal

import pytest

from tests import fork_cli
from tests.kill_points import recorded
from tests.recovery_support import cli_connection, cli_env, json_lines, reset, resources, writes
from tests.test_recovery_cli import REPO, aztriage, one_line_error, runs

# emu (this module's own emulator): tests/rescue_fixtures.py


def nsg_rules(emu, name: str) -> dict[str, dict]:
    (doc,) = [d for d in resources(emu, "Microsoft.Network/networkSecurityGroups") if d["name"] == name]
    return {r["name"]: r["properties"] for r in doc["properties"].get("securityRules") or ()}


def verdict(emu, home, vm: str) -> str:
    proc = aztriage(emu, home, "probe", "--vm", vm, "--format", "json", "--timeout", "0.5")
    (diagnosis,) = json.loads(proc.stdout)["diagnoses"]
    return diagnosis["verdict"]


@pytest.mark.parametrize("vm, nsg, port", [("jump-prod-01", "nsg-jump-prod", 3389), ("tools-lnx-shared-01", "nsg-snet-tools-shared", 22)])
def test_the_demo_story_blocked_reachable_blocked_again(emu, home, vm, nsg, port):
    assert verdict(emu, home, vm) == "blocked-by-nsg"
    before = nsg_rules(emu, nsg)
    proc = aztriage(emu, home, "recover", "--vm", vm, "--scenario", "fix-nsg", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 3 steps verified" in proc.stdout and f"allows 192.88.99.10 to port {port} until" in proc.stdout
    (run,) = runs(emu, home)
    assert f"aztriage-{run['run_id']}-allow-{port}" in nsg_rules(emu, nsg)
    assert verdict(emu, home, vm) == "reachable"

    ask = aztriage(emu, home, "runs", "--release", run["run_id"], stdin="")
    assert ask.returncode == 2 and "add --yes" in one_line_error(ask)
    assert "DELETE security-rule" in ask.stdout and f"aztriage-{run['run_id']}-allow-{port}" in ask.stdout
    released = aztriage(emu, home, "runs", "--release", run["run_id"], "--yes")
    assert released.returncode == 0, released.stdout + released.stderr
    assert "ok   security-rule" in released.stdout and "deleted" in released.stdout
    assert nsg_rules(emu, nsg) == before
    assert verdict(emu, home, vm) == "blocked-by-nsg"
    again = aztriage(emu, home, "runs", "--release", run["run_id"], "--yes")
    assert again.returncode == 0 and "nothing to release" in again.stdout


def test_deleting_the_rule_needs_the_name_and_undo_puts_it_back(emu, home):
    before = nsg_rules(emu, "nsg-jump-prod")
    dry = aztriage(emu, home, "recover", "--vm", "jump-prod-01", "--scenario", "fix-nsg", "--disable-rule", "--dry-run")
    assert dry.returncode == 0 and "[DESTRUCTIVE] Delete the blocking rule Deny-RDP-Incident-4711" in dry.stdout
    assert "for every source, not only yours" in dry.stdout
    refused = aztriage(emu, home, "recover", "--vm", "jump-prod-01", "--scenario", "fix-nsg", "--disable-rule", "--yes", stdin="")
    assert refused.returncode == 2 and "--confirm jump-prod-01" in one_line_error(refused)
    assert nsg_rules(emu, "nsg-jump-prod") == before
    proc = aztriage(emu, home, "recover", "--vm", "jump-prod-01", "--scenario", "fix-nsg", "--disable-rule", "--yes", "--confirm", "jump-prod-01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Deny-RDP-Incident-4711" not in nsg_rules(emu, "nsg-jump-prod")
    (run,) = runs(emu, home)
    nothing = aztriage(emu, home, "runs", "--release", run["run_id"], "--yes")
    assert nothing.returncode == 0 and "nothing to release" in nothing.stdout  # the release deletes only what a run made
    read_only = aztriage(emu, home, "runs", "--undo", run["run_id"], "--yes", "--read-only")
    assert read_only.returncode == 1 and "read-only" in one_line_error(read_only)
    undone = aztriage(emu, home, "runs", "--undo", run["run_id"], "--yes")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "UNDO step 2" in undone.stdout and "restored" in undone.stdout
    assert nsg_rules(emu, "nsg-jump-prod") == before
    assert verdict(emu, home, "jump-prod-01") == "blocked-by-nsg"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--source-ip", "my-laptop", "--yes"], 2, "neither an IP address, a CIDR range"),
        (["--vm", "jump-prod-01", "--scenario", "restart", "--source-ip", "192.0.2.1"], 2, "only apply to --scenario fix-nsg"),
        (
            ["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--disable-rule", "--source-ip", "192.0.2.1"],
            2,
            "--disable-rule deletes the blocking rule for every source",
        ),
        (["--resume", "abc", "--source-ip", "192.0.2.1"], 2, "--resume continues a run as it was planned"),
        (["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--source-ip", "*", "--yes"], 1, "confirm by typing 'allow 3389 from anywhere' (--confirm-source)"),
        (["--vm", "jump-prod-01", "--scenario", "fix-nsg", "--source-ip", "*", "--confirm-source", "yes", "--yes"], 1, "'allow 3389 from anywhere'"),
        (["--vm", "tools-lnx-shared-01", "--scenario", "fix-nsg", "--disable-rule", "--yes", "--confirm", "tools-lnx-shared-01"], 1, "would be shadowed"),
        (["--vm", "web-prod-01", "--scenario", "fix-nsg", "--yes"], 1, "no NSG denies SSH (port 22)"),
    ],
)
def test_refusals_are_one_sentence_and_write_nothing(emu, home, args, code, message):
    before = writes(emu)
    proc = aztriage(emu, home, "recover", *args, stdin="")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in one_line_error(proc)
    assert writes(emu) == before


def test_anywhere_runs_once_the_phrase_is_typed(emu, home):
    proc = aztriage(
        emu,
        home,
        "recover",
        "--vm",
        "jump-prod-01",
        "--scenario",
        "fix-nsg",
        "--source-ip",
        "0.0.0.0/0",
        "--confirm-source",
        "allow 3389 from anywhere",
        "--yes",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (made,) = [r for n, r in nsg_rules(emu, "nsg-jump-prod").items() if n.startswith("aztriage-")]
    assert made["sourceAddressPrefix"] == "0.0.0.0/0"


def test_read_only_shows_the_change_disabled_and_writes_nothing(emu, home):
    before = writes(emu)
    proc = aztriage(emu, home, "recover", "--vm", "jump-prod-01", "--scenario", "fix-nsg", "--yes", "--read-only")
    assert proc.returncode == 1 and "read-only" in one_line_error(proc)
    assert "Temporary allow rule: 192.88.99.10 to port 3389, priority 199, NIC NSG nsg-jump-prod (disabled: read-only)" in proc.stdout
    assert writes(emu) == before and runs(emu, home) == []


def test_json_plan_names_the_rule_the_effect_and_the_release(emu, home):
    proc = aztriage(
        emu, home, "recover", "--vm", "tools-lnx-shared-01", "--scenario", "fix-nsg", "--source-ip", "203.0.113.0/24", "--dry-run", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    plan = line["plan"]
    assert plan["params"] == {"source": "203.0.113.0/24", "disable_rule": False, "hours": 4}
    allow = plan["steps"][1]
    assert allow["kind"] == "change" and "priority 109" in allow["title"] and "address 10.21.2.4 only, so no other VM is opened" in allow["why"]
    assert "aztriage runs --release RUN_ID" in allow["undo"]
    assert plan["details"][0]["what"] == "subnet NSG nsg-snet-tools-shared"


# --- kill -9 at every boundary ---------------------------------------------------------------------------


def _forked(emu, home, *args: str, kill_at: str | None = None) -> fork_cli.Result:
    env = dict(cli_env(home, emu), AZTRIAGE_REACH_TIMEOUT="3")
    if kill_at:
        env["AZTRIAGE_RECOVERY_KILL_AT"] = kill_at
    return fork_cli.run([*args, *cli_connection(emu)], env, REPO)


@pytest.mark.parametrize("disable", [False, True], ids=["allow", "disable"])
def test_killed_with_sigkill_at_every_boundary_resumes_to_the_same_end(emu, tmp_path, disable):
    params = (("disable_rule", True),) if disable else ()
    points = [p for step in recorded("jump-prod-01", "fix-nsg", params).steps for p in step.points]
    assert any(p.startswith("operation:") for p in points)
    args = ["recover", "--vm", "jump-prod-01", "--scenario", "fix-nsg", "--yes", *(["--disable-rule", "--confirm", "jump-prod-01"] if disable else [])]
    for n, point in enumerate(points):
        reset(emu)
        home = tmp_path / f"home-{n}"
        before = nsg_rules(emu, "nsg-jump-prod")
        killed = _forked(emu, home, *args, kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stdout[-2000:], killed.stderr[-2000:])
        (listed,) = runs(emu, home)
        assert listed["status"] == "interrupted", (point, listed["status"])
        resumed = _forked(emu, home, "recover", "--resume", listed["run_id"], *(["--confirm", "jump-prod-01"] if disable else []))
        assert resumed.returncode == 0, (point, resumed.stdout[-3000:], resumed.stderr[-2000:])
        after = nsg_rules(emu, "nsg-jump-prod")
        if disable:
            assert set(before) - set(after) == {"Deny-RDP-Incident-4711"} and set(after) <= set(before), point
        else:
            assert set(after) - set(before) == {f"aztriage-{listed['run_id']}-allow-3389"}, point
            released = _forked(emu, home, "runs", "--release", listed["run_id"], "--yes")
            assert released.returncode == 0 and nsg_rules(emu, "nsg-jump-prod") == before, (point, released.stdout)
