"""`aztriage emulator serve`: the local ARM emulator in the foreground."""

from __future__ import annotations

import argparse
import json

from tui.cli import CliError


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("emulator", help="run the local ARM emulator")
    emu = p.add_subparsers(dest="emulator_command", metavar="ACTION", required=True, parser_class=type(p))
    s = emu.add_parser("serve", help="serve an estate over HTTPS on loopback; prints one JSON line when ready")
    s.add_argument("--estate", default="demo", help="demo, scale:N or a JSON file (default: demo)")
    s.add_argument("--subscriptions", type=int, default=None, help="subscriptions for scale:N")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--latency-ms", type=float, default=0.0, help="added to every ARM request")
    s.add_argument("--faults", metavar="FILE", help="a JSON list of fault rules to start with")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--page-size", type=int, default=1000)
    s.add_argument(
        "--graph-quota", metavar="N/SECONDS", type=_quota, default=None, help="Resource Graph queries per window (default 15/5, Microsoft's documented example)"
    )
    s.set_defaults(func=serve)
    r = emu.add_parser("reset-demo", help="forget the demo's saved state: the next --demo command starts from the built demo estate")
    r.set_defaults(func=reset_demo)


def reset_demo(args: argparse.Namespace) -> int:
    from backend.demo import demo_state_path, reset_demo_state

    if reset_demo_state():
        print(f"The demo's saved state ({demo_state_path()}) is forgotten: the next --demo command starts afresh.")
    else:
        print("The demo has no saved state: the next --demo command starts afresh.")
    return 0


def _quota(text: str) -> tuple[int, float]:
    count, sep, window = text.partition("/")
    try:
        parsed = (int(count), float(window))
    except ValueError:
        parsed = (0, 0.0)
    if not sep or parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a quota: use queries/seconds, e.g. 15/5")
    return parsed


def serve(args: argparse.Namespace) -> int:
    from backend.emulator.estates import EstateError, load_estate
    from backend.settings import is_loopback_url

    if not is_loopback_url(f"https://{args.host}"):
        raise CliError(f"--host {args.host} is not a loopback address: the emulator only listens on 127.0.0.0/8")
    if args.subscriptions is not None and args.subscriptions < 1:
        raise CliError("--subscriptions must be at least 1")
    faults = None
    if args.faults:
        try:
            with open(args.faults, encoding="utf-8") as fh:
                faults = json.load(fh)
        except OSError as exc:
            raise CliError(f"faults file {args.faults} cannot be read: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CliError(f"faults file {args.faults} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(faults, list):
            raise CliError(f"faults file {args.faults} must hold a JSON list of fault rules")
    try:
        estate = load_estate(args.estate, subscriptions=args.subscriptions, seed=args.seed)
    except EstateError as exc:
        raise CliError(str(exc)) from None
    from backend.emulator.serve import serve_foreground

    return serve_foreground(
        estate,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        page_size=args.page_size,
        faults=faults,
        graph_quota=args.graph_quota,
    )
