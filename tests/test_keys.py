"""Keymaps: every binding of the console has an id, the config's [keys]
remaps it by that id, and `aztriage keys` prints the map as it will answer
(without importing the Azure SDK)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from textual.binding import Binding

from backend.config import Config
from tests.support import FIXED_NOW, demo_settings
from tests.tui_support import wait_loaded
from tui.cli import main
from tui.keymap import declared_bindings, effective_keymap


def test_every_binding_of_the_console_has_an_id_and_ids_are_unique():
    declared = declared_bindings()
    assert len(declared) > 50
    without = [f"{cls.__name__}: {b!r}" for cls, b in declared if not isinstance(b, Binding) or not b.id]
    assert without == []
    counts = Counter(b.id for _cls, b in declared)
    assert [binding_id for binding_id, n in counts.items() if n > 1] == []
    owners = {cls.__name__ for cls, _b in declared}
    # Screens and widgets added later are found without registering them anywhere.
    assert {"AztriageApp", "InventoryScreen", "RecoveryScreen", "FastTable", "ConfirmDialog", "HelpScreen"} <= owners


def test_the_effective_map_applies_overrides_by_id():
    entries = {e.binding_id: e for e in effective_keymap({"refresh": "f5,ctrl+r", "inventory.filter": "/"})}
    assert entries["refresh"].keys == ("f5", "ctrl+r") and entries["refresh"].source == "config"
    assert entries["inventory.filter"].keys == ("slash",) and entries["inventory.filter"].display == "/"
    assert entries["help"].keys == ("question_mark",) and entries["help"].source == "default"
    assert entries["present.toggle"].where == "everywhere" and entries["theme.pick"].keys == ("t",)
    assert entries["table.select"].display == "enter" and entries["table.select"].where == "tables"


def write_config(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_keys_prints_the_map_with_the_configs_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(write_config(tmp_path, '[keys]\nrefresh = "f5"\n"present.toggle" = "f9"\n')))
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["BINDING", "ID", "KEYS", "WHAT", "WHERE"]
    refresh = next(line for line in lines if line.startswith("refresh "))
    assert "f5 *" in refresh and "Refresh" in refresh and "everywhere" in refresh
    assert any(line.startswith("present.toggle ") and "f9 *" in line for line in lines)
    assert any(line.startswith("connectivity.probe ") and " p " in line for line in lines)
    assert "2 remapped from" in out and str(tmp_path) in out


def test_keys_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(write_config(tmp_path, '[keys]\n"table.sort" = "o"\n')))
    assert main(["keys", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sort = next(e for e in doc if e["binding_id"] == "table.sort")
    assert sort == {
        "binding_id": "table.sort",
        "keys": ["o"],
        "display": "o",
        "description": "Sort",
        "where": "tables",
        "source": "config",
        "class": "FastTable",
    }


def test_an_unknown_binding_id_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZTRIAGE_CONFIG", str(write_config(tmp_path, '[keys]\nrefrehs = "f5"\n')))
    assert main(["keys"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "keys.refrehs is not a binding id" in err and "Traceback" not in err


def test_keys_does_not_import_the_azure_sdk(tmp_path):
    code = (
        "import sys, io, contextlib\n"
        "from tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['keys'])\n"
        "sdk = sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.'))\n"
        "print(rc, sdk)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "0 []", result.stderr


@pytest.mark.parametrize("binding_id, key", [("present.toggle", "f9"), ("theme.pick", "f7")])
async def test_remapped_keys_work_in_the_console(emulator, binding_id, key):
    from textual.command import CommandPalette

    from tui.app import AztriageApp

    app = AztriageApp(demo_settings(emulator), config=Config(refresh_interval=0, keys={binding_id: key}, auto_probe=False), clock=lambda: FIXED_NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_loaded(pilot)
        await pilot.press(key)
        await pilot.pause()
        if binding_id == "present.toggle":
            assert app.has_class("-present")
        else:
            assert isinstance(app.screen, CommandPalette)
