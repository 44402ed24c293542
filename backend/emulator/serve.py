"""Run the ARM emulator in the foreground until SIGINT/SIGTERM.

When ready it prints exactly one JSON line to stdout::

    {"endpoint": "https://127.0.0.1:PORT", "ca_file": "PATH"}

and nothing else on stdout afterwards (logs go to stderr).

    python -m backend.emulator.serve --estate estate.json [--port 0] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from typing import Any

from .server import Emulator

log = logging.getLogger("aztriage.emulator")


def serve_foreground(estate: dict, **kwargs: Any) -> int:
    """Serve ``estate`` until SIGINT/SIGTERM; returns the process exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> int:
        # The store is millions of small acyclic containers at scale:100000: the cyclic collector
        # would walk them again and again while they are made (most of the time of a load), and
        # after that they live as long as the process, so later collections skip them (freeze).
        gc.disable()
        try:
            emu = Emulator(estate, **kwargs)
        finally:
            gc.enable()
        gc.freeze()
        try:
            await emu.start()
        except Exception as exc:
            print(f"aztriage emulator: cannot start: {exc}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        sys.stdout.write(json.dumps({"endpoint": emu.endpoint, "ca_file": emu.ca_file}) + "\n")
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            await emu.stop()
        return 0

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.emulator.serve", description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--estate", help="path of an estate JSON file")
    src.add_argument("--spec", help="estate spec passed to backend.emulator.estates.load_estate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--acceleration", type=float, default=300)
    ap.add_argument("--latency-ms", type=float, default=0)
    args = ap.parse_args(argv)
    if args.estate:
        with open(args.estate, encoding="utf-8") as fh:
            estate = json.load(fh)
    elif args.spec:
        from .estates import load_estate  # written separately

        estate = load_estate(args.spec, seed=args.seed)
    else:
        estate = {"subscriptions": [], "resources": []}
    return serve_foreground(
        estate,
        host=args.host,
        port=args.port,
        page_size=args.page_size,
        acceleration=args.acceleration,
        latency_ms=args.latency_ms,
    )


if __name__ == "__main__":
    sys.exit(main())
