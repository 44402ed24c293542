"""Console launch to a usable table, as the operator waits for it: scale:10000 over 20
subscriptions, 30 ms per request, the emulator in a process of its own.

The clock runs from spawning `aztriage --arm-endpoint ... --auth none` on a real
pseudo-terminal to the first frame whose status line counts every VM (" 10000 VMs"):
the whole table is there to filter, sort and open, while the instance views' facts may
still show "…". Whole process (Python start, imports, sign-in, the lists) included;
medians of --runs runs. Loopback only.

    .venv/bin/python benchmarks/launch.py [--vms 10000] [--subscriptions 20] [--latency-ms 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._emulator import ROOT, emulator_process, median


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_until_shown(args: list[str], marker: bytes, *, size=(80, 24), timeout: float = 60.0, cpu: list[float] | None = None) -> float | None:
    """Spawn `aztriage ARGS` on a pseudo-terminal of `size`; seconds until `marker` is
    among the bytes it writes (None: not within `timeout`, or it exited first). With
    ``cpu``, the CPU time the process had used by then is appended to it: a figure the
    machine's load changes far less than the wall time."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(size[0]), LINES=str(size[1]), PYTHONPATH=str(ROOT))
    env.setdefault("XDG_STATE_HOME", "/tmp/aztriage-bench/state")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    elapsed = None
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            seen = seen[-len(marker) :] + chunk
            if marker in seen:
                elapsed = time.perf_counter() - started
                if cpu is not None:
                    cpu.append(cpu_seconds(proc.pid))
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Drain so the child is not blocked on a full pty.
        while select.select([master], [], [], 0)[0]:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        os.close(master)
    return elapsed


def launch_to_table_s(info: dict, vms: int, cpu: list[float] | None = None) -> float:
    args = ["--arm-endpoint", info["endpoint"], "--ca-file", info["ca_file"], "--auth", "none"]
    elapsed = seconds_until_shown(args, f" {vms} VMs".encode(), size=(160, 50), cpu=cpu)
    if elapsed is None:
        raise SystemExit(f"the console showed no table of {vms} VMs in time")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--subscriptions", type=int, default=20)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with emulator_process("--estate", f"scale:{args.vms}", "--subscriptions", str(args.subscriptions), "--latency-ms", str(args.latency_ms)) as info:
        runs: list[float] = []
        cpu: list[float] = []
        for _ in range(args.runs):
            runs.append(launch_to_table_s(info, args.vms, cpu))
            print(f"  run: launch to {args.vms} rows {runs[-1]:.2f} s, {cpu[-1]:.2f} s CPU", flush=True)
    print(f"scale:{args.vms} over {args.subscriptions} subscriptions, {args.latency_ms:g} ms per request; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")
    print(f"  launch to a table of every VM (whole process)  {median(runs):.2f} s median ({min(runs):.2f}-{max(runs):.2f}, {len(runs)} runs)   target <= 2.0 s")
    print(f"  CPU the console had used by then                {median(cpu):.2f} s median ({min(cpu):.2f}-{max(cpu):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
