"""`aztriage health`: the Health view for scripts, and the console's lazy start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import succeeded

ROOT = Path(__file__).resolve().parent.parent


# As the `aztriage` console script runs it (under `python -m tui.cli` the module is
# __main__ and CliError raised from tui.cli would be a different class).
ENTRY = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"


def aztriage(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env or os.environ.copy())


def test_health_json_has_the_documented_shape():
    doc = json.loads(succeeded(aztriage("health", "--demo", "--format", "json")))
    assert set(doc) == {"statuses", "events", "maintenance"}
    assert doc["statuses"], "the demo estate has VMs that are not Available"
    for s in doc["statuses"]:
        assert set(s) == {"vm_id", "vm", "availability_state", "reason_type", "summary", "since", "recommended_actions", "verdict"}
        assert s["availability_state"] != "Available"
        assert s["verdict"]["id"] and s["verdict"]["summary"] and s["verdict"]["next_step"]
    ranks = {"Unavailable": 0, "Degraded": 1, "Unknown": 2}
    assert [ranks[s["availability_state"]] for s in doc["statuses"]] == sorted(ranks[s["availability_state"]] for s in doc["statuses"])
    assert doc["events"]
    for e in doc["events"]:
        assert {"id", "type", "status", "level", "title", "regions", "services", "impacted_vms", "impacted", "updates"} <= set(e)
        assert isinstance(e["impacted_vms"], int)
        times = [u["time"] for u in e["updates"]]
        assert times == sorted(times, reverse=True) and len(set(zip(times, (u["summary"] for u in e["updates"])))) == len(times)
    by_id = {e["id"]: e for e in doc["events"]}
    # Reported by three subscriptions for two services: each of its three updates once.
    assert len(by_id["7T2K-LQ8"]["updates"]) == 3
    # Azure lists the ERP VM as impacted: only it counts, not every VM in East US.
    assert (by_id["7T2K-LQ8"]["impacted"], by_id["7T2K-LQ8"]["impacted_vm_names"]) == ("listed", ["erp-prod-eus-01"])
    assert by_id["4H1A-RV8"]["impacted"] == "in the region" and by_id["4H1A-RV8"]["impacted_vms"] > 1
    erp = next(s for s in doc["statuses"] if s["vm"] == "erp-prod-eus-01")
    assert erp["verdict"]["id"] == "platform-incident" and erp["verdict"]["incident"]["impacted"] == "listed"
    assert erp["verdict"]["recommended_scenario"] is None
    for m in doc["maintenance"]:
        assert set(m) == {"vm_id", "vm", "window_start", "window_end", "self_service_allowed"}


def test_health_table_is_readable_in_80_columns():
    stdout = succeeded(aztriage("health", "--demo", "--width", "80"))
    assert "Resource Health:" in stdout and "Service Health:" in stdout and "Planned maintenance:" in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80


def test_bad_config_is_one_line_naming_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("refresh_interval = 'often'\n")
    env = dict(os.environ, AZTRIAGE_CONFIG=str(config))
    runs = [
        aztriage("health", "--arm-endpoint", "https://127.0.0.1:9", "--auth", "none", env=env),
        # The console (no sub-command) reads it too, before the screen opens.
        aztriage("--demo", env=env),
    ]
    for proc in runs:
        assert proc.returncode == 2
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "refresh_interval" in lines[0] and str(config) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_theme_or_binding_id_is_one_line(tmp_path):
    config = tmp_path / "config.toml"
    for text, needle in (("theme = 'no-such-theme'\n", "theme"), ("[keys]\nrefreshh = 'f5'\n", "keys.refreshh")):
        config.write_text(text)
        env = dict(os.environ, AZTRIAGE_CONFIG=str(config))
        proc = aztriage("--demo", env=env)
        assert proc.returncode == 2
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_importing_the_console_does_not_import_the_azure_sdk():
    code = "import sys, tui.cli, tui.app, tui.screens.inventory, tui.screens.health; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_pipe_gets_every_character_unless_a_width_is_asked_for():
    # Standard output is a pipe here: no cell is cut, so `aztriage health | grep erp` finds whole names.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    whole = aztriage("health", "--demo", env=env)
    assert whole.returncode == 0, whole.stderr
    assert "erp-prod-eus-01" in whole.stdout and "…" not in whole.stdout
    assert max(len(line) for line in whole.stdout.splitlines()) > 80
    # COLUMNS (as a terminal or a script sets it) and --width fit the table again.
    for fitted in (aztriage("health", "--demo", env={**env, "COLUMNS": "80"}), aztriage("health", "--demo", "--width", "80", env=env)):
        assert fitted.returncode == 0, fitted.stderr
        assert max(len(line) for line in fitted.stdout.splitlines()) <= 80 and "…" in fitted.stdout
    bad = aztriage("health", "--demo", "--width", "wide", env=env)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "'wide' is not a width in columns" in lines[0]


def test_a_recent_change_is_evidence_in_the_verdict_of_a_vm_not_available():
    """The emulator records the operator's own write as a resourcechanges row; `aztriage health`
    reads the changes of the VMs not Available (one Resource Graph query) and puts the latest in
    their verdicts: who, what, when, in the JSON and in the table. (An emulator of its own: the
    shared one's clock runs ahead of the CLI's after other tests advance it.)"""
    from tests.support import start_emulator

    fresh_emulator = start_emulator("demo")
    try:
        _recent_change_in_health(fresh_emulator)
    finally:
        fresh_emulator.stop()


def _recent_change_in_health(fresh_emulator) -> None:
    from tests.support import arm_call, emulator_control

    docs = emulator_control(fresh_emulator, "GET", "/_emulator/resources?type=Microsoft.Compute/virtualMachines")["resources"]
    spot = next(d for d in docs if d["name"] == "dev-spot-01")
    status, _ = arm_call(fresh_emulator, "PATCH", f"{spot['id']}?api-version=2024-07-01", {"tags": {**(spot.get("tags") or {}), "owner": "nightly-shutdown"}})
    assert status == 200  # a deallocated VM's tags: no long-running operation, no clock to move
    connection = ["--arm-endpoint", fresh_emulator.endpoint, "--ca-file", fresh_emulator.ca_file, "--auth", "none"]
    doc = json.loads(aztriage("health", *connection, "--format", "json").stdout)
    by_vm = {s["vm"]: s["verdict"] for s in doc["statuses"]}
    change = by_vm["dev-spot-01"]["recent_change"]
    assert change["changed_by"] == "demo operator" and "tags.owner" in change["what"] and "nightly-shutdown" in change["what"]
    assert any(line.startswith("changed ") and "nightly-shutdown" in line for line in by_vm["dev-spot-01"]["evidence"])
    assert by_vm["legacy-app-02"]["recent_change"] is None  # nothing changed on it lately
    table = aztriage("health", *connection).stdout
    assert "Recent changes (evidence in the verdict):" in table
    assert "dev-spot-01: changed " in table and "by demo operator: Update dev-spot-01: tags.owner:" in table
