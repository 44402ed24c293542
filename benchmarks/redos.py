"""Serial-log analysis against a hostile guest: a 32 MiB adversarial log.

A guest writes its serial console log, so it can write whatever makes a regular
expression backtrack. The log built here (``--mib``, default 32) is one boot (the
worst case: every line is in the last boot, every signature reads all of it) made of
the shapes that made patterns quadratic before:

- "Kernel panic - not syncing:" lines of 48 KiB with long whitespace runs;
- lines of 48 KiB full of partial matches (``sshd[1]: ``, ``Failed to start ``,
  ``cloud-init: ``, ``fsck.ext4 ``, ``/dev/``, ``Command line: ``, ``ERROR ``,
  ``Failed to mount ``, ``winload.exe``) with the end the pattern waits for missing;
- whitespace runs of 1 MiB, ``[`` followed by long digit runs;
- one 4 MiB line without a newline at the end;
- terminal escapes without their end (OSC without BEL/ST, many ESC).

Measured: ``bootdiag.analyze(bytes)`` (clean_lines + boots + every signature), the
median of ``--runs`` runs in this process, and the whole process
(``python -c 'analyze(open(f).read())'``, interpreter start and imports included).
Target: <= 2 s.

Also measured: the console's event loop while the Boot pane analyses the same log the
way it does (``tui.screens.boot.analyze_log`` in a worker thread): a 5 ms ticker on the
loop records how late it wakes; the longest stall is the longest the console could not
answer a key. Target: <= 100 ms.

Also measured: the serial-log view scrolling that log (issue 14 item 9: each visible line
used to be padded to the longest line's width, 0.4 s per key with one 1 MiB line). The
view (``widgets.serial_log.SerialLogView``) in a headless console at 80x24 shows the
cleaned lines; each of ``SCROLL_KEYS`` is pressed and timed until the screen is drawn
again: the median per key in this process, and the whole process (start, imports, read
and clean the log, mount, every key) in a child. Target: <= 100 ms per key.

    .venv/bin/python benchmarks/redos.py [--mib 32] [--runs 5] [--view-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import bootdiag  # noqa: E402

KIB = 1024


def adversarial_log(mib: int) -> bytes:
    partials = [
        "sshd[1]: ",
        "Failed to start ",
        "cloud-init: ",
        "cloud-init[1]: ",
        "fsck.ext4 ",
        "/dev/",
        "Command line: ",
        "ERROR ",
        "Failed to mount ",
        "winload.exe",
        "Timed out waiting for device /dev/",
        "mount: /",
        "/etc/ssh/sshd_config.d/",
        "Kernel panic - not syncing: ",
        "root=",
        "[ ",
        "[1",
        "\x1b]0;",
        "\x1b[",
        "\x1b",
        "\u009b",
        "\u009b\u2713",  # C1 between characters beyond Latin-1: the slower way of removing C1
    ]
    chunk_lines = [
        "[    0.000000] Linux version 5.15.0-1073-azure (buildd@lcy02) #82-Ubuntu SMP",
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro " + "root= " * 8000,
        "Kernel panic - not syncing: " + "x " * 100 + " " * (48 * KIB) + "y]",
        "Kernel panic - not syncing: " + (" \t" * (24 * KIB)) + "]x",
    ]
    for p in partials:
        chunk_lines.append((p * (48 * KIB // len(p) + 1))[: 48 * KIB])
    chunk_lines.append(" " * KIB * KIB)
    chunk_lines.append("[" + "1" * (256 * KIB))
    chunk_lines.append("/dev/" + "a" * (48 * KIB) + ": UNEXPECTED INCONSISTENCY; RUN fsck MANUALL")
    chunk = ("\n".join(chunk_lines) + "\n").encode()
    body = bytearray()
    target = mib * KIB * KIB - 4 * KIB * KIB
    while len(body) < target:
        body += chunk
    del body[target:]
    body += b"\n" + (b"Failed to start sshd[1]: " * (4 * KIB * KIB // 25 + 1))[: 4 * KIB * KIB]  # no newline at the end
    return bytes(body)


async def loop_stalls(log: bytes, idle: float = 0.0) -> tuple[float, float, float]:
    """(longest stall, 99th percentile, analysis wall time) of the event loop while the
    console's analysis runs in its worker thread."""
    import asyncio

    from tui.screens.boot import analyze_log

    stalls: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - t0 - 0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    if log:
        await asyncio.to_thread(analyze_log, log, None)
    else:  # the baseline: the same time with nothing to analyse (what the machine's load alone costs)
        await asyncio.sleep(idle)
    took = time.perf_counter() - t0
    running = False
    await task
    stalls.sort()
    return stalls[-1], stalls[int(len(stalls) * 0.99)], took


# Down and up through the long lines, page by page, right along them, to both ends.
SCROLL_KEYS = ["down"] * 5 + ["pagedown"] * 3 + ["right"] * 10 + ["end", "pageup", "up", "home", "left"]


async def scroll_key_times(log: bytes) -> tuple[list[float], list[float]]:
    """Per key of SCROLL_KEYS, in a headless console: seconds from the key to the view drawn
    again (Pilot's own pauses included), and seconds spent drawing the view's lines."""
    from textual.app import App, ComposeResult

    from tui.screens.boot import analyze_log
    from widgets.serial_log import SerialLogView

    lines, verdict = analyze_log(log, "Linux")
    drawn = [0]
    drawing = [0.0]

    class Counted(SerialLogView):
        def render_line(self, y: int):
            drawn[0] += 1
            t0 = time.perf_counter()
            try:
                return super().render_line(y)
            finally:
                drawing[0] += time.perf_counter() - t0

    class LogApp(App):
        def compose(self) -> ComposeResult:
            yield Counted()

    times: list[float] = []
    draw_times: list[float] = []
    app = LogApp()
    app.animation_level = "none"  # a key scrolls at once: one redraw per key
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(Counted)
        last = verdict.last_boot
        view.set_log(lines, last.start, last.end, {f.line_number - 1 for f in verdict.findings}, follow=False)
        view.focus()
        await pilot.pause()
        for key in SCROLL_KEYS:
            before, offset = drawn[0], view.scroll_offset
            drawing[0] = 0.0
            t0 = time.perf_counter()
            await pilot.press(key)
            # Until the view is drawn again (a key that moves nothing, at an end, draws nothing).
            while drawn[0] == before and view.scroll_offset != offset and time.perf_counter() - t0 < 30:
                await pilot.pause()
            times.append(time.perf_counter() - t0)
            await pilot.pause()
            draw_times.append(drawing[0])
    return times, draw_times


def view_main(path: str) -> None:
    """The child of the whole-process measurement: read the log from a file, scroll it."""
    import asyncio

    asyncio.run(scroll_key_times(Path(path).read_bytes()))


def measure_view(log: bytes, runs: int) -> None:
    import asyncio

    short = "\n".join(f"[   {i}.000000] a short line {i} " + "x" * 60 for i in range(300)).encode()
    for name, text in (("a 300-line log of short lines (Pilot's own cost)", short), (f"the {len(log) / KIB / KIB:.0f} MiB log", log)):
        medians, worst, draw = [], [], []
        for _ in range(runs):
            times, draw_times = asyncio.run(scroll_key_times(text))
            medians.append(statistics.median(times))
            worst.append(max(times))
            draw.append(statistics.median(draw_times))
        print(
            f"serial-log view, in process, {name}: key to redraw median {statistics.median(medians) * 1000:.0f} ms "
            f"(runs {min(medians) * 1000:.0f}-{max(medians) * 1000:.0f} ms), slowest key median {statistics.median(worst) * 1000:.0f} ms, "
            f"drawing the view's lines median {statistics.median(draw) * 1000:.1f} ms per key over {len(SCROLL_KEYS)} keys; target <= 100 ms"
        )
    with tempfile.NamedTemporaryFile(suffix=".log") as f:
        f.write(log)
        f.flush()
        whole = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--view-child", f.name], cwd=ROOT, check=True)
            whole.append(time.perf_counter() - t0)
    print(
        f"serial-log view, whole process (start, imports, read and clean the log, mount, {len(SCROLL_KEYS)} keys): "
        f"median {statistics.median(whole):.2f} s (runs {min(whole):.2f}-{max(whole):.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--view-only", action="store_true", help="measure only the serial-log view")
    parser.add_argument("--view-child", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.view_child:
        view_main(args.view_child)
        return
    log = adversarial_log(args.mib)
    if args.view_only:
        measure_view(log, args.runs)
        return
    rows = log.split(b"\n")
    print(f"adversarial log: {len(log) / KIB / KIB:.1f} MiB, {len(rows)} lines, longest {max(map(len, rows)) / KIB:.0f} KiB")
    del rows
    for os_type in (None, "Linux"):
        times, cpu = [], []
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            verdict = bootdiag.analyze(log, os_type)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(
            f"in process, os_type={os_type}: analyze() median {statistics.median(times):.2f} s wall (runs {min(times):.2f}-{max(times):.2f} s), "
            f"{statistics.median(cpu):.2f} s CPU; verdict: {verdict.summary}"
        )
    import asyncio

    worst, p99, took = [], [], []
    for _ in range(args.runs):
        w, p, t = asyncio.run(loop_stalls(log))
        worst.append(w)
        p99.append(p)
        took.append(t)
    base_worst, base_p99 = [], []
    for _ in range(args.runs):
        w, p, _t = asyncio.run(loop_stalls(b"", statistics.median(took)))
        base_worst.append(w)
        base_p99.append(p)
    print(
        f"console loop with nothing to analyse for as long (the machine's load alone): longest stall median "
        f"{statistics.median(base_worst) * 1000:.0f} ms, 99th percentile {statistics.median(base_p99) * 1000:.0f} ms"
    )
    print(
        f"console loop while the Boot pane analyses it in its worker thread ({statistics.median(took):.2f} s): "
        f"longest stall median {statistics.median(worst) * 1000:.0f} ms (runs {min(worst) * 1000:.0f}-{max(worst) * 1000:.0f} ms), "
        f"99th percentile {statistics.median(p99) * 1000:.0f} ms; target <= 100 ms"
    )
    with tempfile.NamedTemporaryFile(suffix=".log") as f:
        f.write(log)
        f.flush()
        code = f"from backend import bootdiag; bootdiag.analyze(open({f.name!r}, 'rb').read())"
        whole, whole_cpu = [], []
        for _ in range(args.runs):
            t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            whole.append(time.perf_counter() - t0)
            whole_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(
        f"whole process (start, imports, read, analyze): median {statistics.median(whole):.2f} s wall (runs {min(whole):.2f}-{max(whole):.2f} s), {statistics.median(whole_cpu):.2f} s CPU"
    )
    measure_view(log, args.runs)
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time is only meaningful on an idle machine)")
    print(
        f"target <= 2 s: {'met' if statistics.median(whole) <= 2.0 else 'NOT met'} on wall time; {'met' if statistics.median(whole_cpu) <= 2.0 else 'NOT met'} on CPU time"
    )


if __name__ == "__main__":
    main()
