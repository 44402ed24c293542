"""`aztriage` as separate processes without paying the interpreter start-up
(about 2 s, most of it importing the Azure SDK) for each one: a fork server
(multiprocessing's "forkserver": a clean process started once per test
worker, not a fork of the threaded test process) imports the CLI and the SDK
once, and forks a child for each command. The child runs ``tui.cli.main``
with the command's arguments, environment and working directory, its stdout
and stderr in files, and exits with main's return code, so a child that
kills itself with SIGKILL (the runner's AZTRIAGE_RECOVERY_KILL_AT hook) ends
exactly like `kill -9` of the command: exit code -9, no cleanup, the journal
as the kernel left it."""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PRELOAD = [
    "tui.cli",
    "tui.commands.recover",
    "tui.commands.runs",
    "backend.azure.backend",
    "backend.recovery.runner",
    "backend.recovery.scenarios.rescue",
    "backend.recovery.scenarios.recreate",
    "backend.recovery.scenarios.fix_nsg",
    "azure.mgmt.compute.aio",
    "azure.mgmt.network.aio",
    "azure.mgmt.resource.resources.aio",
]

_context = None


def _ctx():
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([m for m in PRELOAD if _importable(m)])
        _context = ctx
    return _context


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _child(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
    sys.argv = ["aztriage", *argv]
    code = 1
    try:
        from tui.cli import main

        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code or 0) & 0xFF)


@dataclass(frozen=True)
class Result:
    returncode: int  # -9 when the process was killed with SIGKILL
    stdout: str
    stderr: str


def run(argv: list[str], env: dict[str, str], cwd: Path | str, timeout: float = 120) -> Result:
    """Run `aztriage ARGV` in a forked child and wait for it."""
    with tempfile.TemporaryDirectory(prefix="aztriage-fork-") as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        proc = _ctx().Process(target=_child, args=(list(argv), dict(env), str(cwd), out, err), daemon=True)
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(10)
            raise TimeoutError(f"aztriage {' '.join(argv[:4])} did not end in {timeout:.0f} s")
        with open(out, encoding="utf-8", errors="replace") as f_out, open(err, encoding="utf-8", errors="replace") as f_err:
            return Result(proc.exitcode if proc.exitcode is not None else -1, f_out.read(), f_err.read())
