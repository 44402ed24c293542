"""Console launch to a usable table, as the operator waits for it: scale:10000 over 20
subscriptions, 30 ms per request, the emulator in a process of its own.

The clock runs from spawning `aztriage --arm-endpoint ... --auth none` on a real
pseudo-terminal to the first frame whose status line counts every VM (" 10000 VMs"):
the whole table is there to filter, sort and open, while the instance views' facts may
still show "…". Whole process (Python start, imports, sign-in, the lists) included;
medians of --runs runs. Then, in a fresh console each run, --settle seconds after its
table (the background probe running): five cursor moves (down) and three filter
keystrokes, each timed from the key written to the pty to the bytes that show it, and
the console's peak RSS. Loopback only.

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

from benchmarks._emulator import ROOT, add_scale_options, compiled, emulator_process, scale_conditions, scale_estate, spread, status_mb


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PtyConsole:
    """`aztriage ARGS` on a pseudo-terminal of `size`, as an operator's terminal runs it:
    what it writes is watched for markers, keys are written to it as the terminal would."""

    def __init__(self, args: list[str], *, size=(80, 24)) -> None:
        compiled()  # as an installed aztriage starts (benchmarks/_emulator.py)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(size[0]), LINES=str(size[1]), PYTHONPATH=str(ROOT))
        env.setdefault("XDG_STATE_HOME", "/tmp/aztriage-bench/state")
        self.master = master
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)

    def wait_for(self, marker: bytes, timeout: float = 60.0) -> float | None:
        """perf_counter() when `marker` is among the bytes written from now on (None: not
        within `timeout`, or the process exited first)."""
        seen = b""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                if self.proc.poll() is not None:
                    return None
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return None
            seen = seen[-len(marker) :] + chunk
            if marker in seen:
                return time.perf_counter()
        return None

    def drain(self, quiet_s: float = 0.3) -> None:
        """Read until the console has written nothing for `quiet_s` (the screen is settled)."""
        while select.select([self.master], [], [], quiet_s)[0]:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def key_to_marker_s(self, key: bytes, marker: bytes, timeout: float = 30.0) -> float | None:
        """Seconds from writing `key` to the first bytes that contain `marker`."""
        sent = time.perf_counter()
        os.write(self.master, key)
        shown = self.wait_for(marker, timeout)
        return None if shown is None else shown - sent

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.drain(0)  # so the child is not blocked on a full pty
        os.close(self.master)


def seconds_until_shown(args: list[str], marker: bytes, *, size=(80, 24), timeout: float = 60.0, cpu: list[float] | None = None) -> float | None:
    """Spawn `aztriage ARGS` on a pseudo-terminal of `size`; seconds until `marker` is
    among the bytes it writes (None: not within `timeout`, or it exited first). With
    ``cpu``, the CPU time the process had used by then is appended to it: a figure the
    machine's load changes far less than the wall time."""
    console = PtyConsole(args, size=size)
    try:
        shown = console.wait_for(marker, timeout)
        if shown is not None and cpu is not None:
            cpu.append(cpu_seconds(console.proc.pid))
        return None if shown is None else shown - console.started
    finally:
        console.close()


def connect_args(info: dict) -> list[str]:
    return ["--arm-endpoint", info["endpoint"], "--ca-file", info["ca_file"], "--auth", "none"]


def launch_to_table_s(info: dict, vms: int, cpu: list[float] | None = None) -> float:
    elapsed = seconds_until_shown(connect_args(info), f" {vms} VMs".encode(), size=(160, 50), cpu=cpu)
    if elapsed is None:
        raise SystemExit(f"the console showed no table of {vms} VMs in time")
    return elapsed


FILTER_KEYS = (b"w", b"e", b"b")
CURSOR_MOVES = 5
DOWN = b"\x1b[B"


def keys_and_memory(info: dict, vms: int, settle_s: float) -> tuple[list[float], list[float], float]:
    """In one console, once its table of every VM is shown and `settle_s` has passed (the
    instance views, the background probe): seconds from each of CURSOR_MOVES down-arrow keys
    to the bytes of the status line's new row ("row 2/10000"), from each filter keystroke
    ("/", then w, e, b) to the bytes that show the new filter, and the console's peak RSS so
    far (MB)."""
    console = PtyConsole(connect_args(info), size=(160, 50))
    try:
        if console.wait_for(f" {vms} VMs".encode()) is None:
            raise SystemExit(f"the console showed no table of {vms} VMs in time")
        time.sleep(settle_s)
        console.drain()
        moves = []
        for row in range(2, 2 + CURSOR_MOVES):
            elapsed = console.key_to_marker_s(DOWN, f"row {row}/{vms}".encode())
            if elapsed is None:
                raise SystemExit(f"the console did not show row {row}")
            moves.append(elapsed)
            console.drain()
        os.write(console.master, b"/")
        # The filter box takes the focus before the first key is timed (on a loaded machine
        # a key typed at once could reach the table instead, and the filter never showed it).
        time.sleep(1.0)
        console.drain()
        typed, seconds = b"", []
        for key in FILTER_KEYS:
            typed += key
            elapsed = console.key_to_marker_s(key, b"/" + typed)
            if elapsed is None:
                raise SystemExit(f"the console did not show the filter /{typed.decode()}")
            seconds.append(elapsed)
            console.drain()
        return seconds, moves, status_mb(console.proc.pid, "VmHWM")
    finally:
        console.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_scale_options(ap)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after the table before the keys are typed")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with emulator_process(*scale_estate(args.vms, args.subscriptions, args.latency_ms)) as info:
        runs: list[float] = []
        cpu: list[float] = []
        for _ in range(args.runs):
            runs.append(launch_to_table_s(info, args.vms, cpu))
            print(f"  run: launch to {args.vms} rows {runs[-1]:.2f} s, {cpu[-1]:.2f} s CPU", flush=True)
        keys: list[float] = []
        cursor: list[float] = []
        rss: list[float] = []
        for _ in range(args.runs):
            seconds, moves, peak = keys_and_memory(info, args.vms, args.settle)
            keys += seconds
            cursor += moves
            rss.append(peak)
            print(
                f"  run: cursor moves {', '.join(f'{k * 1000:.0f}' for k in moves)} ms; filter keystrokes {', '.join(f'{k * 1000:.0f}' for k in seconds)} ms; peak RSS {peak:.0f} MB",
                flush=True,
            )
    print(scale_conditions(args, load))
    print(f"  launch to a table of every VM (whole process)  {spread(runs, 's', 2, counted='runs')}   target <= 2.0 s")
    print(f"  CPU the console had used by then                {spread(cpu, 's', 2)}")
    print(f"  filter keystroke to the bytes that show it      {spread(keys, 'ms', scale=1000, counted='keys')}   target <= 50 ms")
    print(f"  cursor move (down) to the bytes of its row      {spread(cursor, 'ms', scale=1000, counted='keys')}")
    print(f"  peak RSS of the console, {args.settle:g} s after the table  {spread(rss, 'MB')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
