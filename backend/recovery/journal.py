"""The recovery journal: what every run did, step by step, kept on disk so a run
survives a crash, a kill -9 or a dropped SSH session.

One SQLite database under the user's data directory (file mode 0600, WAL so a
reader never blocks the runner). Every state change is its own committed
transaction: after a crash the journal says exactly which steps finished,
which one was in flight and which long-running operation it was waiting on.

Tables
- runs: one row per run (VM, scenario, non-secret parameters, status, the
  facts the plan was built from: the VM's full ARM model before any change).
- steps: one row per step of a run's plan, with its state and outputs.
- events: the step events, in order (what `--format json` prints).
- resources: the ledger of everything a run created (snapshots, disk copies,
  rescue VMs), written *before* the create is sent so nothing is forgotten.
- console_sessions: each serial console session opened on a VM (when, read-only
  or not, reconnects, the admin commands sent, when and how it closed). Never
  the keystrokes: they carry passwords.

Secrets never reach this file: the runner hands the journal the secret values
of the run, and every text written is checked against them (a second line of
defence behind "secrets are never put in outputs").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# Step states. A step moves pending -> running -> done -> verified, or is
# recognised as already done (skipped) and verified, or fails, or waits for
# the operator (manual steps).
PENDING, RUNNING, DONE, VERIFIED, SKIPPED, FAILED, WAITING, DISABLED = (
    "pending",
    "running",
    "done",
    "verified",
    "skipped",
    "failed",
    "waiting",
    "disabled",
)
STEP_STATES = (PENDING, RUNNING, DONE, VERIFIED, SKIPPED, FAILED, WAITING, DISABLED)
FINISHED_STEP_STATES = (VERIFIED, SKIPPED)

# Run statuses as stored. "interrupted" is never stored: it is a stored
# "running" run whose process is gone (its lock is free).
RUN_RUNNING, RUN_WAITING, RUN_SUCCEEDED, RUN_FAILED, RUN_INTERRUPTED = ("running", "waiting", "succeeded", "failed", "interrupted")
RUN_STATUSES = (RUN_RUNNING, RUN_INTERRUPTED, RUN_WAITING, RUN_SUCCEEDED, RUN_FAILED)

# Ledger states. A created resource is recorded "creating" before the create is
# sent, then "created"; "keep" marks one kept until the operator releases it
# (`aztriage runs --release`), "in-use" one handed over to the VM (never deleted
# by aztriage); "deleted" one the run's own cleanup removed, "released" one the
# operator released, "not-created" one whose create Azure refused, "failed" one
# that exists in a failed state after its create failed.
LEDGER_GONE = ("released", "deleted", "not-created")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    scenario TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    needs_secrets TEXT NOT NULL DEFAULT '[]',
    target TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    facts TEXT,
    facts_at TEXT,
    summary TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_vm ON runs (vm_id, status);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL DEFAULT '{}',
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    idx INTEGER,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);
CREATE TABLE IF NOT EXISTS resources (
    run_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step_key TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    released_at TEXT,
    PRIMARY KEY (run_id, resource_id)
);
CREATE TABLE IF NOT EXISTS console_sessions (
    session_id TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    read_only INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    reconnects INTEGER NOT NULL DEFAULT 0,
    admin TEXT NOT NULL DEFAULT '[]',
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS console_sessions_vm ON console_sessions (vm_id);
"""


class JournalError(Exception):
    """The journal cannot be used; one sentence for the operator."""


class SecretLeak(JournalError):
    """Something tried to write a secret into the journal (a bug, refused)."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    # Short enough to type after --resume, random enough never to collide on one machine.
    return uuid.uuid4().hex[:10]


def default_path(*, create: bool = True) -> Path:
    """The journal's path in the user's data directory; `create=False` makes no
    directory (for a caller that only reads a journal that may not exist yet)."""
    from backend import paths

    if not create:
        import platformdirs

        return Path(platformdirs.user_data_dir(paths.APP)) / "journal.sqlite3"
    return paths.data_dir() / "journal.sqlite3"


@dataclass
class StepRecord:
    run_id: str
    idx: int
    key: str
    title: str
    kind: str
    state: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.idx,
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "state": self.state,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "message": self.message,
        }


@dataclass
class ResourceRecord:
    run_id: str
    resource_id: str
    kind: str
    step_key: str
    state: str  # creating, created, released
    note: str
    created_at: str
    released_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_id": self.resource_id,
            "kind": self.kind,
            "step": self.step_key,
            "state": self.state,
            "note": self.note,
            "created_at": self.created_at,
            "released_at": self.released_at,
        }


@dataclass
class ConsoleSession:
    """One serial console session on a VM, as the journal keeps it (never what was typed)."""

    session_id: str
    vm_id: str
    vm_name: str
    read_only: bool
    opened_at: str
    closed_at: str | None
    reconnects: int
    admin: list[dict[str, Any]]
    end_reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "vm": self.vm_name,
            "vm_id": self.vm_id,
            "read_only": self.read_only,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "reconnects": self.reconnects,
            "admin_commands": list(self.admin),
            "end": self.end_reason,
        }


@dataclass
class RunRecord:
    run_id: str
    vm_id: str
    vm_name: str
    scenario: str
    params: dict[str, Any]
    needs_secrets: list[str]
    target: str
    status: str  # as shown: running / interrupted / waiting / succeeded / failed
    created_at: str
    updated_at: str
    finished_at: str | None
    summary: str
    steps: list[StepRecord] = field(default_factory=list)
    resources: list[ResourceRecord] = field(default_factory=list)

    @property
    def unfinished(self) -> bool:
        return self.status in (RUN_INTERRUPTED, RUN_WAITING, RUN_RUNNING)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "vm": self.vm_name,
            "vm_id": self.vm_id,
            "scenario": self.scenario,
            "status": self.status,
            "params": self.params,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "summary": self.summary,
            "steps": [s.to_json() for s in self.steps],
            "resources": [r.to_json() for r in self.resources],
        }


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite gives the
    -wal and -shm files the database file's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class RunLock:
    """An exclusive lock held by the process working on a run (or a VM).

    flock is released by the kernel when the process dies, even by kill -9:
    a stored "running" run whose lock is free was interrupted."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def is_held_elsewhere(self) -> bool:
        if self._fd is not None:
            return False
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)


class Journal:
    """The recovery journal. One connection per Journal; use from one thread."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_path()
        self._secrets: tuple[str, ...] = ()
        try:
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_DDL)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise JournalError(f"the journal {self.path} was written by a newer aztriage (schema {row[0]}); upgrade aztriage")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"the journal {self.path} cannot be opened: {exc}") from None
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                os.chmod(extra, 0o600)

    @classmethod
    def open_existing(cls, path: Path | str | None = None) -> Journal | None:
        """The journal when its file exists, else None: nothing is created (a refusal,
        or a listing before the first run, writes nothing)."""
        target = Path(path) if path else default_path(create=False)
        return cls(target) if target.is_file() else None

    # --- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def guard_secrets(self, secrets: list[str] | tuple[str, ...]) -> None:
        """Refuse, from now on, any write that contains one of these values."""
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                raise SecretLeak("refused to write a secret into the journal")
        return text

    def _json(self, value: Any) -> str:
        return self._clean(json.dumps(value, default=str, sort_keys=True))

    def lock_path(self, name: str) -> Path:
        return self.path.parent / "locks" / f"{name}.lock"

    def run_lock(self, run_id: str) -> RunLock:
        return RunLock(self.lock_path(f"run-{run_id}"))

    def vm_lock(self, vm_id: str) -> RunLock:
        import hashlib

        return RunLock(self.lock_path("vm-" + hashlib.sha256(vm_id.lower().encode()).hexdigest()[:16]))

    # --- runs ---------------------------------------------------------------

    def create_run(
        self,
        *,
        vm_id: str,
        vm_name: str,
        scenario: str,
        params: dict[str, Any],
        needs_secrets: list[str],
        target: str,
        facts: dict[str, Any],
        steps: list[tuple[str, str, str]],
        run_id: str | None = None,
    ) -> str:
        """Record a new run with its plan (key, title, kind per step) and the facts it was built from."""
        run_id = run_id or new_run_id()
        now = utcnow()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, vm_id, vm_name, scenario, params, needs_secrets, target, status, created_at, updated_at, facts, facts_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, vm_id, vm_name, scenario, self._json(params), json.dumps(needs_secrets), target, RUN_RUNNING, now, now, self._json(facts), now),
            )
            db.executemany(
                "INSERT INTO steps (run_id, idx, key, title, kind, state) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, i, key, self._clean(title), kind, PENDING) for i, (key, title, kind) in enumerate(steps)],
            )
        return run_id

    def set_run_status(self, run_id: str, status: str, summary: str | None = None) -> None:
        now = utcnow()
        finished = now if status in (RUN_SUCCEEDED, RUN_FAILED) else None
        with self._tx() as db:
            if summary is None:
                db.execute("UPDATE runs SET status=?, updated_at=?, finished_at=? WHERE run_id=?", (status, now, finished, run_id))
            else:
                db.execute(
                    "UPDATE runs SET status=?, updated_at=?, finished_at=?, summary=? WHERE run_id=?",
                    (status, now, finished, self._clean(summary), run_id),
                )

    def facts(self, run_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT facts FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def _run_row_to_record(self, row: tuple) -> RunRecord:
        (run_id, vm_id, vm_name, scenario, params, needs, target, status, created, updated, finished, summary) = row
        if status == RUN_RUNNING and not self.run_lock(run_id).is_held_elsewhere():
            status = RUN_INTERRUPTED
        return RunRecord(
            run_id=run_id,
            vm_id=vm_id,
            vm_name=vm_name,
            scenario=scenario,
            params=json.loads(params or "{}"),
            needs_secrets=json.loads(needs or "[]"),
            target=target,
            status=status,
            created_at=created,
            updated_at=updated,
            finished_at=finished,
            summary=summary,
        )

    _RUN_COLUMNS = "run_id, vm_id, vm_name, scenario, params, needs_secrets, target, status, created_at, updated_at, finished_at, summary"

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        run = self._run_row_to_record(row)
        run.steps = self.steps(run_id)
        run.resources = self.resources(run_id)
        return run

    def ended_run(self, run_id: str, refuse: Callable[[str], Exception]) -> RunRecord:
        """The run, which must have ended (undo and release act only on those): otherwise
        ``refuse`` is raised with the sentence for the operator, naming what to do first."""
        run = self.get_run(run_id)
        if run is None:
            raise refuse(f"there is no run {run_id} in the journal")
        if run.unfinished:
            raise refuse(f"run {run_id} is {run.status}: resume it (aztriage recover --resume {run_id}) or abandon it (aztriage runs --abandon {run_id}) first")
        return run

    def list_runs(self, limit: int = 200) -> list[RunRecord]:
        rows = self._db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for row in rows:
            run = self._run_row_to_record(row)
            run.steps = self.steps(run.run_id)
            run.resources = self.resources(run.run_id)
            out.append(run)
        return out

    def unfinished_runs(self, vm_id: str | None = None) -> list[RunRecord]:
        runs = [r for r in self.list_runs(limit=10_000) if r.unfinished]
        if vm_id is not None:
            runs = [r for r in runs if r.vm_id.lower() == vm_id.lower()]
        return runs

    # --- steps --------------------------------------------------------------

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._db.execute(
            "SELECT run_id, idx, key, title, kind, state, started_at, finished_at, attempts, outputs, message FROM steps WHERE run_id=? ORDER BY idx",
            (run_id,),
        ).fetchall()
        return [StepRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9] or "{}"), r[10]) for r in rows]

    def step(self, run_id: str, idx: int) -> StepRecord:
        for s in self.steps(run_id):
            if s.idx == idx:
                return s
        raise KeyError(idx)

    def set_step(
        self,
        run_id: str,
        idx: int,
        state: str,
        *,
        message: str | None = None,
        outputs: dict[str, Any] | None = None,
        started: bool = False,
    ) -> None:
        """Change a step's state; `outputs` are merged into what is stored."""
        if state not in STEP_STATES:
            raise ValueError(state)
        now = utcnow()
        with self._tx() as db:
            row = db.execute("SELECT outputs FROM steps WHERE run_id=? AND idx=?", (run_id, idx)).fetchone()
            if row is None:
                raise KeyError(idx)
            merged = json.loads(row[0] or "{}")
            if outputs:
                merged.update(outputs)
            sets = ["state=?", "outputs=?"]
            values: list[Any] = [state, self._json(merged)]
            if message is not None:
                sets.append("message=?")
                values.append(self._clean(message))
            if started:
                sets.append("started_at=COALESCE(started_at, ?)")
                sets.append("attempts=attempts+1")
                values.append(now)
            if state in (VERIFIED, SKIPPED, FAILED, DONE, WAITING):
                sets.append("finished_at=?")
                values.append(now)
            db.execute(f"UPDATE steps SET {', '.join(sets)} WHERE run_id=? AND idx=?", (*values, run_id, idx))
            db.execute("UPDATE runs SET updated_at=? WHERE run_id=?", (now, run_id))

    def save_outputs(self, run_id: str, idx: int, outputs: dict[str, Any]) -> None:
        """Merge outputs into a step without changing its state (e.g. an operation's continuation token)."""
        with self._tx() as db:
            row = db.execute("SELECT outputs FROM steps WHERE run_id=? AND idx=?", (run_id, idx)).fetchone()
            if row is None:
                raise KeyError(idx)
            merged = json.loads(row[0] or "{}")
            merged.update(outputs)
            db.execute("UPDATE steps SET outputs=? WHERE run_id=? AND idx=?", (self._json(merged), run_id, idx))

    # --- events -------------------------------------------------------------

    def add_event(self, run_id: str, idx: int | None, event: str, message: str = "", data: dict[str, Any] | None = None) -> str:
        at = utcnow()
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (run_id, idx, at, event, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, idx, at, event, self._clean(message), self._json(data or {})),
            )
        return at

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT seq, idx, at, event, message, data FROM events WHERE run_id=? ORDER BY seq", (run_id,)).fetchall()
        return [{"seq": r[0], "step": r[1], "at": r[2], "event": r[3], "message": r[4], "data": json.loads(r[5])} for r in rows]

    # --- the ledger of created resources -------------------------------------

    def record_resource(self, run_id: str, resource_id: str, *, kind: str, step_key: str, state: str = "creating", note: str = "") -> None:
        now = utcnow()
        with self._tx() as db:
            db.execute(
                "INSERT INTO resources (run_id, resource_id, kind, step_key, state, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, resource_id) DO UPDATE SET state=excluded.state, note=CASE WHEN excluded.note='' THEN resources.note ELSE excluded.note END",
                (run_id, resource_id, kind, step_key, state, self._clean(note), now),
            )

    def release_resource(self, run_id: str, resource_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET state='released', released_at=? WHERE run_id=? AND lower(resource_id)=lower(?)",
                (utcnow(), run_id, resource_id),
            )

    def resources(self, run_id: str | None = None) -> list[ResourceRecord]:
        if run_id is None:
            rows = self._db.execute(
                "SELECT run_id, resource_id, kind, step_key, state, note, created_at, released_at FROM resources ORDER BY created_at"
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT run_id, resource_id, kind, step_key, state, note, created_at, released_at FROM resources WHERE run_id=? ORDER BY created_at",
                (run_id,),
            ).fetchall()
        return [ResourceRecord(*r) for r in rows]

    # --- serial console sessions (never their keystrokes) ---------------------

    def open_console_session(self, vm_id: str, vm_name: str, *, read_only: bool) -> str:
        session_id = new_run_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO console_sessions (session_id, vm_id, vm_name, read_only, opened_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, vm_id, self._clean(vm_name), int(read_only), utcnow()),
            )
        return session_id

    def console_reconnected(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE console_sessions SET reconnects=reconnects+1 WHERE session_id=?", (session_id,))

    def console_admin(self, session_id: str, command: str, key: str | None = None) -> None:
        """An admin command (nmi, reset, sysrq with its key) sent from the session."""
        with self._tx() as db:
            row = db.execute("SELECT admin FROM console_sessions WHERE session_id=?", (session_id,)).fetchone()
            if row is None:
                return
            admin = json.loads(row[0] or "[]")
            entry: dict[str, Any] = {"command": command, "at": utcnow()}
            if key:
                entry["key"] = key
            admin.append(entry)
            db.execute("UPDATE console_sessions SET admin=? WHERE session_id=?", (self._json(admin), session_id))

    def close_console_session(self, session_id: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE console_sessions SET closed_at=?, end_reason=? WHERE session_id=? AND closed_at IS NULL",
                (utcnow(), self._clean(reason), session_id),
            )

    def console_sessions(self, vm_id: str | None = None) -> list[ConsoleSession]:
        query = "SELECT session_id, vm_id, vm_name, read_only, opened_at, closed_at, reconnects, admin, end_reason FROM console_sessions"
        if vm_id is None:
            rows = self._db.execute(query + " ORDER BY opened_at, rowid").fetchall()
        else:
            rows = self._db.execute(query + " WHERE lower(vm_id)=lower(?) ORDER BY opened_at, rowid", (vm_id,)).fetchall()
        return [ConsoleSession(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], json.loads(r[7] or "[]"), r[8]) for r in rows]
