"""Start `aztriage emulator serve` in a subprocess for a benchmark (so the
emulator's CPU does not count against the client's)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def compiled() -> None:
    """The project's modules compiled to bytecode, as an installed aztriage has them (pip and
    pipx compile what they install). Python reads a module's bytecode from __pycache__ when it
    is there and writes it when it is not, unless PYTHONDONTWRITEBYTECODE is set, as it is on
    the development machines: every process the benchmarks started then compiled every module
    of the project again, about 0.1 s of the headless inventory's CPU. Compiling writes the
    bytecode whatever that variable says; a module compiled already is left as it is."""
    import compileall

    for package in ("backend", "tui", "widgets"):
        compileall.compile_dir(ROOT / package, quiet=2)


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[dict]:
    compiled()  # for every aztriage these benchmarks start against it
    cmd = [sys.executable, "-m", "tui.cli", "emulator", "serve", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the emulator did not start: {' '.join(cmd)}")
        yield {**json.loads(line), "pid": proc.pid}  # the pid: a benchmark may read the emulator's CPU time
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def add_scale_options(ap: argparse.ArgumentParser, *, vms: int = 10000, subscriptions: int = 20, runs: int = 5) -> None:
    """The options of a benchmark on a scale:N estate: its size, the emulator's latency, the runs."""
    ap.add_argument("--vms", type=int, default=vms)
    ap.add_argument("--subscriptions", type=int, default=subscriptions)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--runs", type=int, default=runs)


def conditions(estate: str, load_at_start: float) -> str:
    """The line a benchmark's figures stand under: the estate and the machine's load as it ran."""
    return f"{estate}; load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)"


def scale_conditions(args: argparse.Namespace, load_at_start: float, *more: str) -> str:
    """``conditions`` for the scale:N estate of ``add_scale_options`` (and ``more``, e.g. the ARG quota)."""
    return conditions(", ".join((f"scale:{args.vms} over {args.subscriptions} subscriptions", f"{args.latency_ms:g} ms per request", *more)), load_at_start)


def status_mb(pid: int | str, field: str) -> float:
    """A memory figure of a process (``"self"``: this one) from /proc/PID/status, in MB:
    VmRSS, what it holds now, or VmHWM, its peak so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def scale_estate(vms: int, subscriptions: int, latency_ms: float | None = None) -> tuple[str, ...]:
    """`emulator serve`'s options for the synthetic estate scale:VMS over SUBSCRIPTIONS,
    each request answered after LATENCY_MS (none: at once)."""
    latency = ("--latency-ms", str(latency_ms)) if latency_ms is not None else ()
    return ("--estate", f"scale:{vms}", "--subscriptions", str(subscriptions), *latency)


def aztriage_command(info: dict, command: str, *options: str) -> list[str]:
    """`aztriage COMMAND OPTIONS` against the emulator ``info`` describes (no sign-in)."""
    return [sys.executable, "-m", "tui.cli", command, "--arm-endpoint", info["endpoint"], "--ca-file", info["ca_file"], "--auth", "none", *options]


def timed_process(cmd: list[str], *, stdout: Any = subprocess.DEVNULL, env: dict | None = None, cwd: Path = ROOT, ok: tuple[int, ...] = (0,)) -> dict:
    """Run a command to its exit: the whole-process figures the user waits for, exec to
    exit (wall_s), and the ones that do not depend on the machine's load: its CPU time
    (user + system, cpu_s) and peak RSS, from wait4. The command imports this checkout
    (PYTHONPATH), with ``env``'s variables besides, from bytecode (``compiled``). An exit status
    not in ``ok`` stops the benchmark."""
    compiled()
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=stdout, stderr=stderr, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {stderr.read().decode(errors='replace').strip()[-500:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def timed_json(cmd: list[str], **options: Any) -> tuple[dict, Any]:
    """``timed_process`` of a command that prints one JSON document: its figures and the document."""
    with tempfile.TemporaryFile() as out:
        figures = timed_process(cmd, stdout=out, **options)
        out.seek(0)
        return figures, json.loads(out.read())


def whole_process_medians(figures: list[dict]) -> str:
    """The medians of ``timed_process`` figures, as the benchmarks print them."""
    wall = [f["wall_s"] for f in figures]
    return (
        f"median {median(wall):.2f} s exec to exit (runs {min(wall):.2f}-{max(wall):.2f}), {median([f['cpu_s'] for f in figures]):.2f} s CPU, "
        f"peak RSS {median([f['peak_rss_mb'] for f in figures]):.0f} MB"
    )


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def spread(values: list[float], unit: str, digits: int = 0, *, scale: float = 1, counted: str = "") -> str:
    """VALUES (times SCALE) as the figure lines give them, "MEDIAN UNIT median (LOW-HIGH, N COUNTED)",
    with DIGITS decimals; the count only where COUNTED (e.g. "runs") names what it counts."""
    low, middle, high = (f"{v * scale:.{digits}f}" for v in (min(values), median(values), max(values)))
    count = f", {len(values)} {counted}" if counted else ""
    return f"{middle} {unit} median ({low}-{high}{count})"
