"""Probe benchmark: the TCP probe engine on loopback only.

1. 10,000 endpoints, open and refused mixed (--endpoints, --open-ratio):
   ADDRESSES x PORTS on 127.77.0.x; the open ones are listening sockets in a
   helper process (the kernel completes the handshake, nobody accepts), the
   refused ones have nothing listening (the kernel answers RST).
   Target: <= 1.5 s for 10,000.
2. N silent endpoints (--silent, default 200): listeners whose backlog-0
   accept queue is full, so SYNs are dropped; they finish in about
   ceil(N / concurrency) x timeout.
3. Side by side: `nmap -sT` on the same addresses and ports, if nmap is
   installed; and a plain asyncio.open_connection loop for reference.
4. The whole process an operator waits for (--estate-vms, default 1,000; 0 skips it):
   `aztriage probe --all --format json --attempts 1 --timeout 1` from exec to exit,
   against `aztriage emulator serve --estate scale:N` in a process of its own, whose
   guests answer on real loopback listeners (open, refused, silent, wrong protocol):
   Python's start, the imports, the inventory, the probes, the boot logs of the VMs
   that do not answer and the output. Wall, CPU and peak RSS.

Every figure is the median of --runs runs. Nothing leaves 127.0.0.0/8.

    .venv/bin/python benchmarks/probe.py [--endpoints 10000] [--silent 200] [--concurrency 512] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.probe import OPEN, REFUSED, TIMEOUT, ProbeOptions, ProbeTarget, probe_many
from benchmarks._emulator import aztriage_command, emulator_process, median, scale_estate, timed_json, whole_process_medians

BASE_PORT = 20001
NET = "127.77"


def layout(endpoints: int) -> tuple[list[str], int]:
    """Addresses and ports per address: at most 1,000 ports on each of as many addresses as needed."""
    per_address = min(1000, endpoints)
    addresses = [f"{NET}.{(i // 250)}.{(i % 250) + 1}" for i in range(math.ceil(endpoints / per_address))]
    return addresses, per_address


def endpoint_list(endpoints: int, open_ratio: float) -> tuple[list[tuple[str, int]], set[tuple[str, int]]]:
    addresses, per_address = layout(endpoints)
    every = [(a, BASE_PORT + p) for a in addresses for p in range(per_address)][:endpoints]
    step = max(1, round(1 / open_ratio)) if open_ratio > 0 else 0
    opened = {ep for i, ep in enumerate(every) if step and i % step == 0}
    return every, opened


def serve(endpoints: int, open_ratio: float, silent: int) -> None:
    """Helper process: hold the listeners until stdin closes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _every, opened = endpoint_list(endpoints, open_ratio)
    keep = []
    for address, port in sorted(opened):
        s = socket.socket()
        s.bind((address, port))
        s.listen(4096)
        keep.append(s)
    silent_ports = []
    for i in range(silent):
        s = socket.socket()
        s.bind((f"{NET}.200.{(i % 250) + 1}", 0))
        s.listen(0)
        filler = socket.create_connection(s.getsockname(), timeout=2)
        keep += [s, filler]
        silent_ports.append(s.getsockname())
    print(" ".join(f"{a}:{p}" for a, p in silent_ports), flush=True)
    sys.stdin.read()


async def run_engine(targets: list[ProbeTarget], timeout: float, concurrency: int) -> tuple[float, dict[str, int]]:
    options = ProbeOptions(timeout=timeout, attempts=1, concurrency=concurrency, check_protocol=False)
    started = time.perf_counter()
    results = await probe_many(targets, options)
    wall = time.perf_counter() - started
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return wall, counts


async def run_plain_asyncio(targets: list[tuple[str, int]], timeout: float, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(address: str, port: int) -> None:
        async with semaphore:
            try:
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
                writer.close()
            except (TimeoutError, OSError):
                pass

    started = time.perf_counter()
    await asyncio.gather(*(one(a, p) for a, p in targets))
    return time.perf_counter() - started


def run_nmap(addresses: list[str], per_address: int) -> float | None:
    nmap = shutil.which("nmap")
    if not nmap:
        return None
    ports = f"{BASE_PORT}-{BASE_PORT + per_address - 1}"
    cmd = [nmap, "-sT", "-Pn", "-n", "--max-retries", "0", "-T5", "-p", ports, *addresses, "-oG", "-"]
    started = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, timeout=600)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=10_000)
    ap.add_argument("--open-ratio", type=float, default=0.5)
    ap.add_argument("--silent", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=512)
    ap.add_argument("--silent-concurrency", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=0.5, help="per attempt, for the silent endpoints")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--estate-vms", type=int, default=1000, help="VMs of the whole-process run (0: skip it)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.endpoints, args.open_ratio, args.silent)
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    helper = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--endpoints", str(args.endpoints), "--open-ratio", str(args.open_ratio), "--silent", str(args.silent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = helper.stdout.readline()
        silent = [(a, int(p)) for a, p in (item.rsplit(":", 1) for item in line.split())]
        every, opened = endpoint_list(args.endpoints, args.open_ratio)
        targets = [ProbeTarget(a, p) for a, p in every]
        addresses, per_address = layout(args.endpoints)

        walls, counts = [], {}
        for _ in range(args.runs):
            wall, counts = asyncio.run(run_engine(targets, 1.0, args.concurrency))
            walls.append(wall)
        expected_open = len(opened)
        print(f"mixed: {args.endpoints} endpoints ({expected_open} open, {args.endpoints - expected_open} refused), concurrency {args.concurrency}")
        print(
            f"  aztriage probe engine   median {median(walls):.3f} s  ({args.endpoints / median(walls):,.0f} probes/s)  runs: {', '.join(f'{w:.3f}' for w in walls)}"
        )
        print(
            f"  classified: {counts.get(OPEN, 0)} open, {counts.get(REFUSED, 0)} refused, {sum(v for k, v in counts.items() if k not in (OPEN, REFUSED))} other"
        )
        if counts.get(OPEN, 0) != expected_open or counts.get(REFUSED, 0) != args.endpoints - expected_open:
            print("  WARNING: the classification does not match the listeners")
        plain = [asyncio.run(run_plain_asyncio(every, 1.0, args.concurrency)) for _ in range(args.runs)]
        print(f"  plain asyncio.open_connection  median {median(plain):.3f} s  ({args.endpoints / median(plain):,.0f} connects/s)")
        nmap = [run_nmap(addresses, per_address) for _ in range(args.runs)]
        if nmap[0] is None:
            print("  nmap -sT: not installed here (side-by-side skipped)")
        else:
            print(f"  nmap -sT -T5 --max-retries 0  median {median(nmap):.3f} s  ({args.endpoints / median(nmap):,.0f} ports/s)")

        if silent:
            waves = math.ceil(len(silent) / args.silent_concurrency)
            expected = waves * args.timeout
            swalls = []
            for _ in range(args.runs):
                wall, scounts = asyncio.run(run_engine([ProbeTarget(a, p) for a, p in silent], args.timeout, args.silent_concurrency))
                swalls.append(wall)
            print(f"silent: {len(silent)} endpoints, concurrency {args.silent_concurrency}, timeout {args.timeout} s")
            print(
                f"  aztriage probe engine   median {median(swalls):.3f} s  (expected ceil(N/concurrency) x timeout = {expected:.3f} s)  {scounts.get(TIMEOUT, 0)} timeouts"
            )
    finally:
        helper.stdin.close()
        helper.wait(timeout=30)
    if args.estate_vms:
        whole_process(args.estate_vms, args.runs)


def whole_process(vms: int, runs: int) -> None:
    """`aztriage probe` from exec to exit against an emulator in a process of its own."""
    with emulator_process(*scale_estate(vms, 2, 30)) as info:
        cmd = aztriage_command(info, "probe", "--all", "--format", "json", "--attempts", "1", "--timeout", "1")
        figures, probes, elapsed = [], 0, 0.0
        for _ in range(runs):
            # exit 3: some VMs do not answer, as the estate means them to
            figure, doc = timed_json(cmd, ok=(0, 3))
            figures.append(figure)
            stats = doc.get("stats", {})
            probes, elapsed = stats.get("probes", 0), elapsed + stats.get("elapsed_s", 0.0)
    print(f"whole process: aztriage probe --all --format json --attempts 1 --timeout 1, scale:{vms} over 2 subscriptions, 30 ms per request")
    print(f"  {whole_process_medians(figures)}; {probes} probes, of which the probing itself (in-process) {elapsed / runs:.2f} s on average")


if __name__ == "__main__":
    main()
