"""CLI sub-commands. Each module has ``add_parser(subparsers, parents)`` and
sets ``func`` on its parser: ``func(args) -> int`` (the exit code)."""

MODULES = [
    "inventory",
    "find",
    "broken",
    "emulator",
    "health",
    "check",
    "report",
    "timeline",
    "probe",
    "recover",
    "runs",
    "bootlog",
    "console",
    "keys",
    "serve",
]
