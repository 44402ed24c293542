"""`aztriage recover --scenario rescue|recreate` and `aztriage runs --release`
as an operator runs them: real processes, the manual wait (exit 3), real
kill -9 at a representative subset of boundaries and in the middle of a
long-running operation (every boundary is covered in-process by
test_recovery_rescue.py and test_recovery_recreate.py), then --resume."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.recovery_support import cli_connection, cli_env, json_lines, own_emulator, power, reset, vm_doc, writes
from tests.rescue_support import assert_store_clean, estate, guest, operation_counts
from tests.test_recovery_cli import AZTRIAGE, REPO, journal_path, one_line_error, runs


@pytest.fixture(scope="module")
def emu():
    e = own_emulator()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def before(emu):
    reset(emu)
    return estate(emu)


@pytest.fixture
def home(tmp_path, emu):
    reset(emu)
    return tmp_path / "home"


def aztriage(emu, home, *args: str, kill_at: str | None = None, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    env = cli_env(home, emu)
    if kill_at:
        env["AZTRIAGE_RECOVERY_KILL_AT"] = kill_at
    env["AZTRIAGE_REACH_TIMEOUT"] = "3"
    return subprocess.run([*AZTRIAGE, *args, *cli_connection(emu)], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def journal(home):
    from backend.recovery.journal import Journal

    return Journal(journal_path(home))


RESCUE = ["recover", "--vm", "api-dev-01", "--scenario", "rescue", "--run-fixes", "--yes", "--confirm", "api-dev-01"]
RECREATE = ["recover", "--vm", "dev-sandbox-01", "--scenario", "recreate", "--yes", "--confirm", "dev-sandbox-01"]


def test_rescue_waits_for_the_operator_with_exit_3_then_finishes_and_releases_the_snapshot(emu, home, before):
    first = aztriage(emu, home, *RESCUE)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "WAITING for the operator" in first.stdout and "fsck -yM /dev/disk/azure/scsi1/lun0-part1" in first.stdout
    (listed,) = runs(emu, home)
    run_id = listed["run_id"]
    assert listed["status"] == "waiting"
    assert f"resume with: aztriage recover --resume {run_id} --operator-done --confirm api-dev-01" in first.stdout
    # The rest is destructive (the VM is deallocated): the name is asked again.
    refused = aztriage(emu, home, "recover", "--resume", run_id, "--operator-done")
    assert refused.returncode == 1 and "confirm by typing the VM's name (api-dev-01)" in one_line_error(refused)
    done = aztriage(emu, home, "recover", "--resume", run_id, "--operator-done", "--confirm", "api-dev-01", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    events = json_lines(done.stdout)
    assert events[-1]["event"] == "run-finished" and events[-1]["state"] == "succeeded"
    assert any(e["event"] == "verified" and e["key"] == "reach-ssh" for e in events)
    vm_id = vm_doc(emu, "api-dev-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "ok" and power(emu, "api-dev-01") == "running"
    with journal(home) as j:
        assert_store_clean(emu, j, before)
    # Releasing: headless it needs --yes; then only the snapshot goes.
    ask = aztriage(emu, home, "runs", "--release", run_id, stdin="")
    assert ask.returncode == 2 and "add --yes" in one_line_error(ask)
    assert "DELETE snapshot" in ask.stdout and "keep   original-os-disk" in ask.stdout and "keep   disk-copy" in ask.stdout
    released = aztriage(emu, home, "runs", "--release", run_id, "--yes")
    assert released.returncode == 0, released.stdout + released.stderr
    assert "ok   snapshot" in released.stdout and "deleted" in released.stdout
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
    assert not any("/snapshots/" in i for i in changes["new"]) and changes["deleted_customer_disks"] == set()
    again = aztriage(emu, home, "runs", "--release", run_id, "--yes")
    assert again.returncode == 0 and "nothing to release" in again.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["recover", "--vm", "web-prod-01", "--scenario", "restart", "--rescue-vm", "x"], "--rescue-vm and --run-fixes only apply to --scenario rescue"),
        (["recover", "--resume", "abc", "--run-fixes"], "--resume continues a run as it was planned"),
        (["recover", "--vm", "api-dev-01", "--scenario", "rescue", "--rescue-vm", "nope-01", "--yes"], "no VM named nope-01"),
        (["runs", "--release", "nosuchrun", "--yes"], "there is no run nosuchrun"),
    ],
)
def test_bad_input_is_one_sentence_and_changes_nothing(emu, home, args, message):
    before_writes = writes(emu)
    proc = aztriage(emu, home, *args, stdin="")
    assert proc.returncode in (1, 2), proc.stderr
    assert message in one_line_error(proc)
    assert writes(emu) == before_writes


def test_recreate_dry_run_shows_the_risk_and_sends_no_write(emu, home):
    before_writes = writes(emu)
    proc = aztriage(emu, home, "recover", "--vm", "dev-sandbox-01", "--scenario", "recreate", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "[DESTRUCTIVE] Delete the VM resource dev-sandbox-01" in proc.stdout
    assert "deleteOption is Delete on OS disk" in proc.stdout
    assert writes(emu) == before_writes
    refused = aztriage(emu, home, "recover", "--vm", "dev-ephemeral-01", "--scenario", "recreate", "--yes", "--confirm", "dev-ephemeral-01")
    assert refused.returncode == 1 and "ephemeral OS disk" in one_line_error(refused)


def _kill_then_resume(emu, home, args, kill_at, resume_args=()) -> tuple[str, subprocess.CompletedProcess]:
    first = aztriage(emu, home, *args, kill_at=kill_at)
    if first.returncode == 3:  # the kill point is after the manual step
        (listed,) = runs(emu, home)
        first = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--operator-done", *resume_args, kill_at=kill_at)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stdout[-2000:], first.stderr[-2000:])
    (listed,) = runs(emu, home)
    assert listed["status"] == "interrupted"
    second = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--operator-done", *resume_args)
    if second.returncode == 3:  # killed before the manual step: the resumed run stops there first
        second = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--operator-done", *resume_args)
    return listed["run_id"], second


# Rescue: in the middle of creating the rescue VM (before the manual step) and of the OS-disk swap (after it).
@pytest.mark.parametrize("kill_at", ["operation:5", "operation:11"])
def test_rescue_killed_with_sigkill_resumes_to_the_same_end(emu, home, before, kill_at):
    run_id, second = _kill_then_resume(emu, home, RESCUE, kill_at, ("--confirm", "api-dev-01"))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    (listed,) = runs(emu, home)
    assert listed["status"] == "succeeded"
    vm_id = vm_doc(emu, "api-dev-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "ok"
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
        rescue_vm = [r.resource_id.lower() for r in j.resources(run_id) if r.kind == "rescue-vm"][0]
    assert len(changes["new"]) == 2 and not changes["new_groups"]
    counts = operation_counts(emu)
    assert counts[("create", rescue_vm)] == 1 and counts[("update", vm_id.lower())] == 1 and counts[("start", vm_id.lower())] == 1


# Recreate: after the create, before it was verified (the middle of the delete: the slow test below).
@pytest.mark.parametrize("kill_at", ["done:6"])
def test_recreate_killed_with_sigkill_resumes_to_the_same_end(emu, home, before, kill_at):
    run_id, second = _kill_then_resume(emu, home, RECREATE, kill_at, ("--confirm", "dev-sandbox-01"))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    vm_id = vm_doc(emu, "dev-sandbox-01")["doc"]["id"].lower()
    counts = operation_counts(emu)
    assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
    assert changes["new"] == set() and changes["deleted_customer_disks"] == set()


def test_kill_9_in_the_middle_of_the_delete_resumes_polling_the_same_delete(tmp_path):
    slow = own_emulator(acceleration=60)  # deleting a VM takes 1 s
    try:
        home = tmp_path / "home"
        start = estate(slow)
        proc = subprocess.Popen(
            [*AZTRIAGE, *RECREATE, *cli_connection(slow)], cwd=REPO, env=dict(cli_env(home, slow), AZTRIAGE_REACH_TIMEOUT="3"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with sqlite3.connect(journal_path(home), timeout=1) as db:
                    row = db.execute("SELECT outputs FROM steps WHERE key='delete'").fetchone()
            except sqlite3.Error:
                continue
            if row and json.loads(row[0]).get("operations", {}).get("delete"):
                token = json.loads(row[0])["operations"]["delete"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert token, "the delete was never journaled as accepted"
        vm_id = vm_doc(slow, "dev-sandbox-01")["doc"]["id"].lower()
        (op,) = [o for o in slow_ops(slow) if o["kind"] == "delete" and o["resource_id"].lower() == vm_id]
        assert op["status"] == "InProgress"
        (listed,) = runs(slow, home)
        second = aztriage(slow, home, "recover", "--resume", listed["run_id"], "--confirm", "dev-sandbox-01", timeout=120)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr
        assert "resuming the delete operation sent before the interruption" in second.stdout
        counts = operation_counts(slow)
        assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
        with journal(home) as j:
            assert_store_clean(slow, j, start)
    finally:
        slow.stop()


def slow_ops(emu) -> list[dict]:
    from tests.conftest import emulator_control

    return emulator_control(emu, "GET", "/_emulator/operations")
