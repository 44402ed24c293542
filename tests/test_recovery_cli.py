"""`aztriage recover` and `aztriage runs` as an operator runs them: real
processes against the emulator, killed with -9 anywhere and resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recovery_support import (
    cli_connection,
    cli_env,
    guest_ports,
    journal_path,
    json_lines,
    kill_when_accepted,
    operation_counts,
    operation_on,
    operations,
    own_emulator,
    power,
    vm_doc,
    writes,
)

REPO = Path(__file__).resolve().parents[1]
SENTINEL = "Sentinel-Pa55-XYZZY-9047"
AZTRIAGE = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]


def aztriage(emu, home: Path, *args: str, kill_at: str | None = None, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = cli_env(home, emu)
    if kill_at:
        env["AZTRIAGE_RECOVERY_KILL_AT"] = kill_at
    env["AZTRIAGE_REACH_TIMEOUT"] = "2"
    return subprocess.run(
        [*AZTRIAGE, *args, *cli_connection(emu)],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs(emu, home: Path) -> list[dict]:
    """The journal's runs as `aztriage runs --format json` prints them (read in-process: fewer processes)."""
    from backend.recovery.journal import Journal

    if not journal_path(home).exists():
        return []
    with Journal(journal_path(home)) as journal:
        return [r.to_json() for r in journal.list_runs()]


def runs_cli(emu, home: Path, *args: str) -> subprocess.CompletedProcess:
    proc = aztriage(emu, home, "runs", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- plans, dry runs, read-only ---------------------------------------------------------


def test_dry_run_shows_the_full_plan_and_sends_no_write(emu, home):
    before = writes(emu)
    proc = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "redeploy", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Redeploy to a new host: web-prod-01" in out
    assert "[DESTRUCTIVE] Redeploy web-prod-01 to a new host" in out
    assert "why:" in out and "changes:" in out and "undo: cannot be undone" in out
    assert "Interrupts service" in out
    assert writes(emu) == before
    assert runs(emu, home) == []


def test_dry_run_in_json_is_one_plan_line(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "web-prod-03", "--scenario", "resize", "--size", "Standard_D4s_v5", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    plan = line["plan"]
    assert line["event"] == "plan" and plan["scenario"] == "resize" and plan["destructive"] is True
    assert {"what": "vCPUs", "before": "2", "after": "4"} in plan["details"]
    assert [s["key"] for s in plan["steps"]] == ["preflight", "resize", "reach-ssh"]


def test_read_only_shows_every_change_disabled_and_sends_no_write(emu, home):
    before = writes(emu)
    proc = aztriage(emu, home, "--read-only", "recover", "--vm", "web-prod-01", "--scenario", "restart", "--yes")
    assert proc.returncode == 1
    assert "read-only" in one_line_error(proc)
    assert "[change] Restart web-prod-01 (disabled: read-only)" in proc.stdout
    assert writes(emu) == before
    assert runs(emu, home) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vm", "web-prod-01", "--scenario", "reboot"], "unknown scenario 'reboot'"),
        (["--vm", "web-prod-01", "--scenario", "restart", "--size", "Standard_D4s_v5"], "--size only applies"),
        (["--vm", "no-such-vm", "--scenario", "restart", "--yes"], "no VM named no-such-vm"),
        (["--vm", "web-prod-01", "--scenario", "restart"], "add --yes"),
        (["--vm", "web-prod-01", "--scenario", "redeploy", "--yes"], "--confirm web-prod-01"),
        (["--vm", "web-prod-01", "--scenario", "redeploy", "--yes", "--confirm", "web-prod-02"], "is not the VM's name"),
        (["--vm", "web-prod-03", "--scenario", "resize", "--size", "Standard_Q99_v9", "--yes"], "cannot take size Standard_Q99_v9"),
        (["--resume", "nosuchrun"], "there is no run nosuchrun"),
        (["--vm", "files-shared-01", "--scenario", "reset-access", "--ssh-key", "/nonexistent.pub", "--yes"], "cannot be read"),
        (["--vm", "web-prod-03", "--scenario", "restore-point", "--retain-days", "7"], "--retain-days only applies to --scenario backup-now"),
        (["--vm", "web-prod-03", "--scenario", "backup-now", "--consistency", "crash"], "--consistency only applies to --scenario restore-point"),
        (["--vm", "web-prod-03", "--scenario", "restore-point", "--source", "snap-1"], "--source and --disk only apply to --scenario restore-disk"),
        (["--vm", "web-prod-03", "--scenario", "restart", "--backup-first"], "--backup-first only applies to --scenario recreate"),
        (["--resume", "nosuchrun", "--consistency", "crash"], "--resume continues a run as it was planned"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_changes_nothing(emu, home, args, message):
    before = writes(emu)
    proc = aztriage(emu, home, "recover", *args, stdin="")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in one_line_error(proc)
    assert writes(emu) == before


def test_a_blocked_plan_exits_1_with_its_reason(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "dev-ephemeral-01", "--scenario", "deallocate", "--yes", "--confirm", "dev-ephemeral-01")
    assert proc.returncode == 1
    assert "ephemeral OS disk" in one_line_error(proc)


# --- a refusal writes nothing ---------------------------------------------------------------------

REFUSALS = {
    "no-such-vm": (["--vm", "nosuchvm", "--scenario", "restart", "--yes"], 2, "no VM named nosuchvm"),
    "unknown-scenario": (["--vm", "web-prod-01", "--scenario", "reboot", "--yes"], 2, "unknown scenario 'reboot'"),
    "blocked-scenario": (["--vm", "dev-ephemeral-01", "--scenario", "deallocate", "--yes", "--confirm", "dev-ephemeral-01"], 1, "ephemeral OS disk"),
    "not-confirmed": (["--vm", "web-prod-01", "--scenario", "restart"], 2, "add --yes"),
    "destructive-not-confirmed": (["--vm", "web-prod-01", "--scenario", "redeploy", "--yes"], 2, "--confirm web-prod-01"),
    "wrong-name-typed": (["--vm", "web-prod-01", "--scenario", "redeploy", "--yes", "--confirm", "web-prod-02"], 2, "is not the VM's name"),
    "read-only": (["--vm", "web-prod-01", "--scenario", "restart", "--yes", "--read-only"], 1, "read-only mode"),
    "resume-unknown-run": (["--resume", "nosuchrun"], 2, "there is no run nosuchrun in the journal"),
}


def _written(home: Path) -> set[str]:
    """Every file under the throwaway home, but the log every command opens."""
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != "aztriage.log"}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_recover_creates_no_journal_and_writes_nothing(emu, home, case):
    args, code, message = REFUSALS[case]
    before = writes(emu)
    proc = aztriage(emu, home, "recover", *args, stdin="")
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert message in one_line_error(proc)
    assert not journal_path(home).exists()
    assert not journal_path(home).parent.exists()  # not even the journal's directory
    assert _written(home) == set()
    assert writes(emu) == before


def test_a_dry_run_creates_no_journal(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "restart", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert not journal_path(home).exists() and _written(home) == set()


def test_a_refusal_leaves_an_existing_journal_as_it_was(emu, home):
    done = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "reapply", "--yes")
    assert done.returncode == 0, done.stderr
    snapshot = {name: (home / name).read_bytes() for name in _written(home)}
    for args, code, message in REFUSALS.values():
        proc = aztriage(emu, home, "recover", *args, stdin="")
        assert proc.returncode == code and message in one_line_error(proc)
    assert {name: (home / name).read_bytes() for name in _written(home)} == snapshot
    assert [r["status"] for r in runs(emu, home)] == ["succeeded"]


def test_runs_before_the_first_run_says_so_and_creates_nothing(emu, home):
    listed = aztriage(emu, home, "runs")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "no recovery runs yet (start one with: aztriage recover --vm NAME --scenario ID)"
    as_json = aztriage(emu, home, "runs", "--format", "json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []
    for args, code in ((["nosuchrun"], 2), (["--abandon", "nosuchrun"], 1), (["--release", "nosuchrun", "--yes"], 1)):
        proc = aztriage(emu, home, "runs", *args)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert one_line_error(proc) == "aztriage: there is no run nosuchrun in the journal"
    assert not journal_path(home).parent.exists() and _written(home) == set()


# --- runs ---------------------------------------------------------------------------------------


def test_json_output_is_one_line_per_step_event_and_exit_0_when_verified(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "qa-win-01", "--scenario", "start", "--yes", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    assert events[0]["event"] == "plan"
    assert events[1]["event"] == "run-started"
    assert events[-1]["event"] == "run-finished" and events[-1]["state"] == "succeeded"
    run_id = events[1]["run_id"]
    assert all(e["run_id"] == run_id for e in events[1:])
    verified = [(e["step"], e["key"]) for e in events if e["event"] == "verified"]
    assert verified == [(0, "preflight"), (1, "start"), (2, "reach-rdp")]
    assert power(emu, "qa-win-01") == "running"
    (listed,) = json.loads(runs_cli(emu, home, "--format", "json").stdout)
    assert listed["run_id"] == run_id and listed["status"] == "succeeded" and listed["vm"] == "qa-win-01"
    assert [s["state"] for s in listed["steps"]] == ["verified"] * 3


def test_a_failed_run_exits_1_and_tells_how_to_resume(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "tools-lnx-shared-01", "--scenario", "restart", "--yes")
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout and "aztriage recover --resume" in proc.stdout
    (listed,) = runs(emu, home)
    assert listed["status"] == "failed"


# --- kill -9 anywhere, then --resume --------------------------------------------------------------

RESTART_BOUNDARIES = [f"{b}:{i}" for i in range(3) for b in ("before", "running", "done", "verified")] + ["operation:1"]


def _kill_then_resume(
    emu, home, args: list[str], kill_at: str, *, resume_args: tuple[str, ...] = (), stdin: str | None = None
) -> tuple[str, subprocess.CompletedProcess]:
    first = aztriage(emu, home, "recover", *args, kill_at=kill_at, stdin=stdin)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stderr)
    (listed,) = runs(emu, home)
    assert listed["status"] == "interrupted"
    run_id = listed["run_id"]
    second = aztriage(emu, home, "recover", "--resume", run_id, *resume_args)
    return run_id, second


@pytest.mark.parametrize("kill_at", RESTART_BOUNDARIES)
def test_restart_killed_at_every_step_boundary_resumes_verified_and_restarts_once(emu, home, kill_at):
    run_id, second = _kill_then_resume(emu, home, ["--vm", "web-prod-01", "--scenario", "restart", "--yes"], kill_at)
    assert second.returncode == 0, second.stdout + second.stderr
    (listed,) = runs(emu, home)
    assert listed["status"] == "succeeded"
    assert [s["state"] for s in listed["steps"]] == ["verified"] * 3
    vm_id = vm_doc(emu, "web-prod-01")["doc"]["id"].lower()
    assert operation_counts(emu)[("restart", vm_id)] == 1


def test_runs_lists_an_interrupted_run_first_and_how_to_resume_it(emu, home):
    done = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "reapply", "--yes")
    assert done.returncode == 0, done.stderr
    killed = aztriage(emu, home, "recover", "--vm", "qa-win-01", "--scenario", "start", "--yes", kill_at="operation:1")
    assert killed.returncode == -signal.SIGKILL
    table = runs_cli(emu, home).stdout.splitlines()
    assert table[0].split()[:4] == ["RUN", "VM", "SCENARIO", "STATUS"]
    assert "qa-win-01" in table[1] and "INTERRUPTED" in table[1] and "1/3" in table[1]
    assert "web-prod-01" in table[2] and "succeeded" in table[2]
    assert "1 unfinished: resume with 'aztriage recover --resume RUN_ID'" in table[-1]
    listed = json.loads(runs_cli(emu, home, "--format", "json").stdout)
    assert [(r["vm"], r["status"]) for r in listed] == [("qa-win-01", "interrupted"), ("web-prod-01", "succeeded")]
    assert set(listed[0]) >= {"run_id", "vm", "scenario", "status", "steps"}
    detail = runs_cli(emu, home, listed[0]["run_id"]).stdout
    assert "start on qa-win-01 - interrupted" in detail and "Start qa-win-01" in detail


@pytest.mark.parametrize("kill_at", ["operation:1", "done:1", "running:2", "operation:2"])
def test_snapshot_disks_killed_and_resumed_creates_each_snapshot_once(emu, home, kill_at):
    run_id, second = _kill_then_resume(emu, home, ["--vm", "web-prod-03", "--scenario", "snapshot-disks", "--yes"], kill_at)
    assert second.returncode == 0, second.stdout + second.stderr
    creates = [op for op in operations(emu) if op["kind"] == "create" and "/snapshots/" in op["resource_id"].lower()]
    assert len(creates) == 2
    assert len({op["resource_id"].lower() for op in creates}) == 2
    (listed,) = runs(emu, home)
    assert sorted(r["state"] for r in listed["resources"]) == ["created", "created"]


@pytest.mark.parametrize("kill_at", ["operation:1", "done:1"])
def test_run_fix_killed_mid_command_resumes_without_running_it_again(emu, home, kill_at):
    run_id, second = _kill_then_resume(emu, home, ["--vm", "files-shared-01", "--scenario", "run-fix", "--yes"], kill_at)
    assert second.returncode == 0, second.stdout + second.stderr
    vm_id = vm_doc(emu, "files-shared-01")["doc"]["id"]
    assert operation_counts(emu)[("runCommand", vm_id.lower())] == 1
    assert guest_ports(emu, vm_id)["3389"] == "rdp"


def test_kill_9_in_the_middle_of_a_long_operation_resumes_polling_the_same_one(tmp_path):
    slow = own_emulator(acceleration=10)  # a restart takes 4 s
    try:
        home = tmp_path / "home"
        env = cli_env(home, slow)
        proc = subprocess.Popen(
            [*AZTRIAGE, "recover", "--vm", "web-prod-01", "--scenario", "restart", "--yes", *cli_connection(slow)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kill_when_accepted(proc, home, "restart", timeout=30)
        assert operation_on(slow, "restart", "web-prod-01")["status"] == "InProgress"  # killed in the middle of it
        vm_id = vm_doc(slow, "web-prod-01")["doc"]["id"].lower()
        (listed,) = runs(slow, home)
        second = aztriage(slow, home, "recover", "--resume", listed["run_id"])
        assert second.returncode == 0, second.stdout + second.stderr
        assert "resuming the restart operation sent before the interruption" in second.stdout
        assert operation_counts(slow)[("restart", vm_id)] == 1
        assert power(slow, "web-prod-01") == "running"
    finally:
        slow.stop()


def test_resume_of_a_finished_run_does_nothing(emu, home):
    proc = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "reapply", "--yes")
    assert proc.returncode == 0, proc.stderr
    (listed,) = runs(emu, home)
    before = writes(emu)
    again = aztriage(emu, home, "recover", "--resume", listed["run_id"])
    assert again.returncode == 0
    assert "already ended verified" in again.stdout
    assert writes(emu) == before


# --- secrets ----------------------------------------------------------------------------------------


def _files_under(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def test_a_password_never_reaches_a_file_or_the_output_even_across_a_kill(emu, home):
    args = ["--vm", "files-shared-01", "--scenario", "reset-access", "--password-stdin", "--yes"]
    run_id, second = _kill_then_resume(emu, home, args, "operation:1", stdin=SENTINEL + "\n")
    assert second.returncode == 0, second.stdout + second.stderr
    first_outputs = runs_cli(emu, home, run_id, "--format", "json")
    vm_id = vm_doc(emu, "files-shared-01")["doc"]["id"]
    assert guest_ports(emu, vm_id)["3389"] == "rdp"
    files = _files_under(home)
    assert any(p.name == "journal.sqlite3" for p in files)
    assert any(p.name == "aztriage.log" for p in files)
    for path in files:
        assert SENTINEL.encode() not in path.read_bytes(), path
    for text in (second.stdout, second.stderr, first_outputs.stdout):
        assert SENTINEL not in text
    ext = [d for d in json.loads(json.dumps(operations(emu))) if "/extensions/" in d["resource_id"].lower()]
    assert len(ext) == 1  # the PUT was sent once, recognised after the kill


def test_a_reset_that_must_send_again_asks_for_the_secret_again(emu, home):
    args = ["--vm", "files-shared-01", "--scenario", "reset-access", "--password-stdin", "--yes"]
    first = aztriage(emu, home, "recover", *args, kill_at="before:1", stdin=SENTINEL + "\n")
    assert first.returncode == -signal.SIGKILL
    (listed,) = runs(emu, home)
    refused = aztriage(emu, home, "recover", "--resume", listed["run_id"])
    assert refused.returncode == 1
    assert "needs the password again" in one_line_error(refused)
    again = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--password-stdin", stdin=SENTINEL + "\n")
    assert again.returncode == 0, again.stdout + again.stderr
    for path in _files_under(home):
        assert SENTINEL.encode() not in path.read_bytes(), path
    assert SENTINEL not in again.stdout + again.stderr


def test_an_ssh_key_reset_keeps_the_key_out_of_the_journal(emu, home, tmp_path):
    key = tmp_path / "id_ed25519.pub"
    key.write_text(f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{SENTINEL} operator@laptop\n")
    proc = aztriage(
        emu, home, "recover", "--vm", "legacy-ftp-01", "--scenario", "reset-access", "--ssh-key", str(key), "--username", "ops", "--reset-config", "--yes"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in _files_under(home):
        assert SENTINEL.encode() not in path.read_bytes(), path
    assert SENTINEL not in proc.stdout + proc.stderr
    private = tmp_path / "id_rsa"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n")
    refused = aztriage(emu, home, "recover", "--vm", "legacy-ftp-01", "--scenario", "reset-access", "--ssh-key", str(private), "--yes")
    assert refused.returncode == 2
    assert "private key" in one_line_error(refused)


def test_an_abandoned_run_frees_the_vm_for_a_new_run(emu, home):
    killed = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "restart", "--yes", kill_at="done:0")
    assert killed.returncode == -signal.SIGKILL
    (listed,) = runs(emu, home)
    refused = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "reapply", "--yes")
    assert refused.returncode == 1
    assert f"--resume {listed['run_id']}" in one_line_error(refused)
    abandoned = runs_cli(emu, home, "--abandon", listed["run_id"])
    assert "abandoned" in abandoned.stdout
    again = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "reapply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = sorted(r["status"] for r in runs(emu, home))
    assert statuses == ["failed", "succeeded"]
