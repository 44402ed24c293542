"""The recovery journal: private files, step states, the ledger, secrets refused,
and interrupted runs told apart from running ones."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from backend.recovery import journal as J
from backend.recovery.journal import Journal, SecretLeak


def make_run(journal: Journal, run_id: str = "run0000001") -> str:
    return journal.create_run(
        run_id=run_id,
        vm_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        vm_name="vm1",
        scenario="restart",
        params={"size": None},
        needs_secrets=[],
        target="demo",
        facts={"model": {"id": "x", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}},
        steps=[("preflight", "Pre-flight checks", "check"), ("restart", "Restart vm1", "change")],
    )


def test_the_journal_and_its_wal_files_are_private(tmp_path):
    path = tmp_path / "data" / "journal.sqlite3"
    with Journal(path) as journal:
        make_run(journal)
        journal.set_step("run0000001", 0, J.RUNNING, started=True)
        for suffix in ("", "-wal", "-shm"):
            p = path.parent / (path.name + suffix)
            assert p.exists(), suffix
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, suffix
        mode = journal._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_steps_move_through_their_states_and_keep_outputs(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        run_id = make_run(journal)
        journal.set_step(run_id, 1, J.RUNNING, started=True)
        journal.save_outputs(run_id, 1, {"operations": {"restart": "token-1"}})
        journal.set_step(run_id, 1, J.DONE, message="restarted", outputs={"elapsed": 3})
        step = journal.step(run_id, 1)
        assert step.state == J.DONE
        assert step.outputs == {"operations": {"restart": "token-1"}, "elapsed": 3}
        assert step.attempts == 1 and step.started_at and step.finished_at
        assert journal.facts(run_id)["model"]["id"] == "x"


def test_the_ledger_records_a_resource_before_it_exists_and_never_forgets_it(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        run_id = make_run(journal)
        snap = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/snapshots/vm1-os-snap-20261130030000"
        journal.record_resource(run_id, snap, kind="snapshot", step_key="snapshot-os", note="snapshot of os disk")
        assert [r.state for r in journal.resources(run_id)] == ["creating"]
        journal.record_resource(run_id, snap, kind="snapshot", step_key="snapshot-os", state="created")
        journal.release_resource(run_id, snap.upper())
        (res,) = journal.resources(run_id)
        assert res.state == "released" and res.note == "snapshot of os disk" and res.released_at


def test_a_secret_is_refused_anywhere_in_the_journal(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as journal:
        run_id = make_run(journal)
        journal.guard_secrets(["Sentinel-Secret-4711"])
        with pytest.raises(SecretLeak):
            journal.set_step(run_id, 0, J.FAILED, message="the password Sentinel-Secret-4711 was wrong")
        with pytest.raises(SecretLeak):
            journal.save_outputs(run_id, 0, {"body": {"protectedSettings": {"password": "Sentinel-Secret-4711"}}})
        with pytest.raises(SecretLeak):
            journal.add_event(run_id, 0, "log", "x", {"p": "Sentinel-Secret-4711"})
    assert b"Sentinel-Secret-4711" not in (tmp_path / "j.sqlite3").read_bytes()


HOLD_LOCK = """
import sys, time
from backend.recovery.journal import Journal
lock = Journal(sys.argv[1]).run_lock("run0000001")
assert lock.acquire()
print("ready", flush=True)
time.sleep(30)
"""


def test_a_running_run_whose_process_died_is_listed_as_interrupted(tmp_path):
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal:
        make_run(journal)
        assert journal.get_run("run0000001").status == "interrupted"  # nobody works on it
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], cwd=repo, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            assert journal.get_run("run0000001").status == "running"
            assert [r.run_id for r in journal.unfinished_runs()] == ["run0000001"]
        finally:
            proc.send_signal(signal.SIGKILL)  # the lock goes with the process, as with kill -9
            proc.wait(10)
        assert journal.get_run("run0000001").status == "interrupted"
        journal.set_run_status("run0000001", J.RUN_SUCCEEDED, "done")
        assert journal.unfinished_runs() == []
        assert journal.get_run("run0000001").finished_at


def test_a_journal_from_a_newer_aztriage_is_refused(tmp_path):
    path = tmp_path / "j.sqlite3"
    with Journal(path) as journal:
        journal._db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(J.JournalError, match="newer aztriage"):
        Journal(path)
