"""`aztriage keys`: every key of the console as it will answer, after the
config's [keys] overrides: binding id, key(s), what it does, where it works.

    aztriage keys                 # a table (ids to use under [keys] in config.toml)
    aztriage keys --format json   # [{"binding_id", "keys", "display", "description", "where", "source", "class"}]

It reads the config but starts no backend and never imports the Azure SDK.
"""

from __future__ import annotations

import argparse

from tui.cli import CliError
from tui.commands.common import output_format, print_json
from tui.textfmt import table


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "keys",
        parents=parents,
        help="print the console's key map (binding id, keys, what, where) with the config's overrides",
        description="Print every key of the console with the overrides from [keys] in config.toml applied. "
        'Remap a key by its binding id, e.g. [keys] refresh = "f5" (several keys: "f5,ctrl+r").',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args, ("table", "json"))
    from backend.config import ConfigError
    from tui.runtime import load_settings_config

    config = load_settings_config()
    from tui.app import check_config
    from tui.keymap import effective_keymap

    try:
        check_config(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    entries = effective_keymap(config.keys)
    if fmt == "json":
        print_json([e.to_json() for e in entries])
        return 0
    rows = [(e.binding_id, e.display + (" *" if e.source == "config" else ""), e.description, e.where) for e in entries]
    print(table(("BINDING ID", "KEYS", "WHAT", "WHERE"), rows, shrink=(2, 3)))
    where = f" from {config.path}" if config.path else ""
    overridden = sum(1 for e in entries if e.source == "config")
    note = f"{overridden} remapped{where} (marked *)" if overridden else "no keys remapped"
    from tui.screens.help import VERBS

    print(f"\nEverywhere a VM is selected: {VERBS}.")
    print(f'{len(entries)} bindings; {note}. Remap under [keys] in config.toml: binding_id = "key[,key]".')
    return 0
