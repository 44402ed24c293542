"""The `aztriage` command. Starting it imports neither the Azure SDK nor
Textual: each sub-command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from backend.settings import AUTH_MODES, CLOUDS, ENGINES, GRAPH_THRESHOLD
from tui.errors import CliError  # re-exported: the commands import it from here

log = logging.getLogger("aztriage")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        raise CliError(f"{message} (see '{self.prog} --help')")


def global_options() -> argparse.ArgumentParser:
    """Options every command takes; SUPPRESS keeps a sub-command from resetting the top level's values."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    S = argparse.SUPPRESS
    g.add_argument("--demo", action="store_true", default=S, help="run against the embedded demo estate (local emulator)")
    g.add_argument("--demo-estate", metavar="SPEC", default=S, help="estate for --demo: demo, hostile, scale:N or a JSON file")
    g.add_argument("--arm-endpoint", metavar="URL", default=S, help="an ARM-compatible endpoint (https)")
    g.add_argument("--ca-file", metavar="PATH", default=S, help="trust only this CA for --arm-endpoint")
    g.add_argument("--auth", choices=AUTH_MODES, default=S, help="how to sign in (default: DefaultAzureCredential)")
    g.add_argument("--cloud", choices=list(CLOUDS), default=S, help="national cloud")
    g.add_argument("--subscription", metavar="ID", action="append", default=S, help="limit to this subscription (repeatable)")
    g.add_argument("--read-only", action="store_true", default=S, help="never change anything in Azure")
    g.add_argument(
        "--engine",
        choices=ENGINES,
        default=S,
        help=f"inventory engine: ARM lists, Azure Resource Graph, or auto (ARG above {GRAPH_THRESHOLD} subscriptions; config: inventory_engine)",
    )
    g.add_argument("--format", choices=["table", "json", "md", "text"], default=S, help="output format")
    g.add_argument(
        "--width",
        metavar="N",
        type=_width,
        default=S,
        help="fit tables to N columns (default: the terminal's width; a pipe or a file gets every character; COLUMNS also sets it)",
    )
    return p


def _width(text: str) -> int:
    if not text.strip().isdigit() or not 40 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a width in columns (40 to 10000)")
    return int(text)


DEFAULTS = {
    "demo": False,
    "demo_estate": "demo",
    "arm_endpoint": None,
    "ca_file": None,
    "auth": None,
    "cloud": "AzureCloud",
    "subscription": None,
    "read_only": False,
    "engine": None,
    "format": None,
    "width": None,
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the command line, only the sub-command it names (or none,
    for the console): every command's module need not be imported to start one of them
    (about 55 ms of CPU at every console launch, `benchmarks/launch.py`)."""
    parents = [global_options()]
    parser = _Parser(prog="aztriage", description="Triage and recover Azure virtual machines.", parents=parents)
    parser.add_argument("--log-level", default="INFO", help=argparse.SUPPRESS)
    parser.add_argument(
        "--present", action="store_true", help="presenter mode: roomier layout, the why of each step shown large, a trail of what was done (P toggles)"
    )
    parser.add_argument(
        "--broken",
        action="store_true",
        help="open on what is broken across the tenant (Azure Resource Graph: VMs not Available, active events, pending maintenance) "
        "instead of loading every VM; the palette's 'view: load every VM' loads them (above graph_threshold subscriptions the console "
        "shows what is broken first by itself, then loads every VM)",
    )
    parser.add_argument(
        "--no-auto-probe", action="store_true", help="the console does not probe running VMs in the background after a load (config: auto_probe = false)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _commands_needed(parser, argv):
        importlib.import_module(f"tui.commands.{name}").add_parser(sub, parents)
    return parser


def _commands_needed(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> list[str]:
    """Which sub-commands' parsers `argv` needs: the one it names, none when it names none
    (the console), every one for help, an unknown word or anything this scan cannot tell
    (an abbreviated option taking a value): argparse then says what is wrong as before."""
    commands = _command_modules()
    if argv is None:
        return commands
    takes_value = {o for a in parser._actions if a.nargs != 0 for o in a.option_strings}
    tokens = iter(argv)
    for token in tokens:
        if token in ("-h", "--help") or (token.startswith("--h") and "--help".startswith(token)) or token == "--":
            return commands
        if not token.startswith("-"):
            return [token] if token in commands else commands
        if token in takes_value:
            next(tokens, None)
    return []


def _command_modules() -> list[str]:
    from tui.commands import MODULES

    return MODULES


def setup_logging(level: str = "INFO") -> str:
    """Tracebacks go to a private log file, never to the operator's screen."""
    from backend.paths import log_dir, private_file

    path = private_file(log_dir() / "aztriage.log")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    # The SDK's HTTP logging is noisy and may echo headers; keep it to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return str(path)


def one_line(text: str) -> str:
    """An error message that echoes operator input stays one line and cannot drive the
    terminal: control, format and line/paragraph-separator characters are shown escaped."""
    import unicodedata

    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") else ch for ch in text
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    log_path = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        for key, value in DEFAULTS.items():
            if not hasattr(args, key):
                setattr(args, key, value)
        log_path = setup_logging(args.log_level)
        if args.width:
            from tui import textfmt

            textfmt.set_width(args.width)
        func = getattr(args, "func", None)
        if func is None:
            return _run_console(args)
        return int(func(args) or 0)
    except CliError as exc:
        print(f"aztriage: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aztriage: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `aztriage inventory | head`: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: never a traceback on screen
        log.exception("unexpected error")
        where = f" (details in {log_path})" if log_path else ""
        print(f"aztriage: unexpected error: {exc}{where}", file=sys.stderr)
        return 1


def _run_console(args: argparse.Namespace) -> int:
    try:
        app_module = importlib.import_module("tui.app")
    except ModuleNotFoundError:
        raise CliError("the console is not available in this build; use a sub-command such as 'aztriage inventory'") from None
    return int(app_module.run(args) or 0)


def entry() -> NoReturn:
    """The `aztriage` program: ``main``, then the end of the process. Once main has
    returned and no other thread runs (none can be writing), the process ends without the
    interpreter's teardown, which frees every object one by one: about 0.1 s after a
    10,000-VM inventory, for nothing. Every file the commands write is closed by then
    (each is written inside a ``with``); the standard streams and the log are flushed here."""
    import threading

    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `aztriage inventory | head`: the reader left, as main handles it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.flush()
    logging.shutdown()
    if threading.active_count() == 1:
        os._exit(code & 0xFF)
    sys.exit(code)


if __name__ == "__main__":
    # Under `python -m tui.cli` this module is __main__; run the importable tui.cli so
    # CliError raised by sub-commands is the same class main() catches.
    from tui.cli import entry as _entry

    _entry()
