"""The CLI as an operator or a script uses it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import assert_one_clear_line, succeeded

ROOT = Path(__file__).resolve().parent.parent


def aztriage(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True, text=True, input=input, timeout=timeout, env=os.environ.copy()
    )


def test_inventory_json_against_the_demo():
    out = json.loads(succeeded(aztriage("inventory", "--demo", "--format", "json")))
    assert set(out) == {"vms", "errors", "warnings", "stats"}
    assert out["errors"] == []
    assert out["stats"]["requests"] > 0
    required = {
        "id",
        "name",
        "subscription_id",
        "resource_group",
        "location",
        "size",
        "os_type",
        "power_state",
        "provisioning_state",
        "availability_state",
        "health_reason",
        "zones",
        "availability_set",
        "private_ips",
        "public_ips",
        "fqdn",
        "os_disk",
        "data_disks",
        "nics",
        "agent_status",
        "boot_diagnostics",
        "maintenance",
    }
    for vm in out["vms"]:
        assert required <= set(vm), required - set(vm)
        assert {"id", "name", "sku", "managed", "delete_option", "vhd_uri"} <= set(vm["os_disk"])
        for d in vm["data_disks"]:
            assert {"lun", "id", "name", "sku", "managed", "delete_option"} <= set(d)
        for n in vm["nics"]:
            assert {"id", "delete_option", "nsg_id"} <= set(n)
        assert vm["verdict"]["id"] and vm["verdict"]["next_step"] and vm["verdict"]["probed"] is False
    verdicts = {vm["name"]: vm["verdict"] for vm in out["vms"]}
    # Azure's view without a probe: the ERP VM is in an incident, nothing recommended; the stopped ones start.
    assert verdicts["erp-prod-eus-01"]["id"] == "platform-incident" and verdicts["erp-prod-eus-01"]["recommended_scenario"] is None
    assert (verdicts["qa-win-01"]["id"], verdicts["qa-win-01"]["recommended_scenario"]) == ("stopped", "start")
    assert verdicts["web-prod-01"]["id"] == "unknown"


def test_json_on_stdout_is_the_document_and_one_newline(capfdbinary):
    from tui.commands.common import print_json

    doc = {"vms": [{"name": "vm\u202e\x1b[31m é", "zones": ["1"]}], "errors": []}
    print_json(doc)
    assert capfdbinary.readouterr().out == json.dumps(doc, indent=2).encode("ascii") + b"\n"


def test_a_listing_that_fails_half_way_writes_nothing(capfdbinary):
    """The inventory's JSON is made a batch at a time; a failure in a later batch leaves
    stdout empty (one sentence and a non-zero exit come from the caller), never half a document."""
    from tui.commands.common import print_json_listing

    def items():
        for n in range(250):
            if n == 180:
                raise RuntimeError("a VM that cannot be described")
            yield {"name": f"vm{n}"}

    with pytest.raises(RuntimeError):
        print_json_listing({"vms": [], "errors": []}, items())
    assert capfdbinary.readouterr().out == b""
    print_json_listing({"vms": [], "errors": []}, ({"name": f"vm{n}"} for n in range(250)))
    assert capfdbinary.readouterr().out == json.dumps({"vms": [{"name": f"vm{n}"} for n in range(250)], "errors": []}, indent=2).encode("ascii") + b"\n"


def test_the_inventory_starts_no_collection_once_written():
    # The collector is paused through the inventory and its output. Resuming it must not start
    # a collection of everything the inventory built (10,000 VMs: about 0.1 s of CPU spent just
    # before the process ends), and must leave it as it was: on, nothing frozen.
    code = """
import gc, sys
import tui.commands.inventory as inventory
from tui.cli import main
started = []
write = inventory._write
def written(inv, fmt):
    write(inv, fmt)
    gc.callbacks.append(lambda phase, info: phase == "start" and started.append(info["generation"]))
inventory._write = written
code = main(["inventory", "--demo", "--format", "json"])
print(code, started, gc.isenabled(), gc.get_freeze_count(), file=sys.stderr)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout)["vms"]
    assert out.stderr.strip().splitlines()[-1] == "0 [] True 0"


def test_probe_json_carries_one_verdict_per_vm():
    proc = aztriage("probe", "--demo", "--vm", "jump-prod-01", "--vm", "mon-shared-eus-01", "--timeout", "0.5", "--attempts", "1", "--format", "json")
    assert proc.returncode == 3, proc.stderr  # jump-prod-01's RDP does not answer
    out = json.loads(proc.stdout)
    verdicts = {v["vm"]: v for v in out["verdicts"]}
    assert verdicts["jump-prod-01"]["id"] == "blocked-by-nsg" and verdicts["jump-prod-01"]["recommended_scenario"] == "fix-nsg"
    assert "Deny-RDP-Incident-4711 at priority 200 (NIC NSG nsg-jump-prod)" in verdicts["jump-prod-01"]["summary"]
    assert verdicts["mon-shared-eus-01"]["id"] == "agent-not-ready" and "Sign in over SSH" in verdicts["mon-shared-eus-01"]["next_step"]
    assert all(d["verdict_of_vm"] in ("blocked-by-nsg", "agent-not-ready") for d in out["diagnoses"])
    # What changed: the Deny rule the security on-call added 2 h 40 min before, with who and how.
    change = verdicts["jump-prod-01"]["recent_change"]
    assert change["changed_by"] == "sec.oncall@contoso.com" and "Deny-RDP-Incident-4711" in change["what"] and "via Azure Portal" in change["how"]
    assert any(line.startswith("changed 2h") and "sec.oncall@contoso.com" in line for line in verdicts["jump-prod-01"]["evidence"])
    assert verdicts["mon-shared-eus-01"]["recent_change"] is None


def test_inventory_table_fits_80_columns():
    stdout = succeeded(aztriage("inventory", "--demo", "--width", "80"))
    lines = stdout.splitlines()
    assert lines[0].startswith("NAME")
    assert max(len(line) for line in lines) <= 80
    assert "VMs in 3 subscriptions" in stdout


def test_unknown_subscription_is_one_clear_line():
    proc = aztriage("inventory", "--demo", "--subscription", "00000000-0000-0000-0000-00000000dead")
    assert_one_clear_line(proc, "unknown subscription", "00000000-0000-0000-0000-00000000dead")
    assert proc.stdout == ""


def test_malformed_estate_file_names_the_file(tmp_path):
    bad = tmp_path / "estate.json"
    bad.write_text('{"subscriptions": [')
    proc = aztriage("inventory", "--demo", "--demo-estate", str(bad))
    assert_one_clear_line(proc, str(bad), "JSON")
    proc = aztriage("emulator", "serve", "--estate", str(bad))
    assert_one_clear_line(proc, str(bad))


def test_auth_none_refused_for_a_non_loopback_endpoint():
    proc = aztriage("inventory", "--arm-endpoint", "https://management.azure.com", "--auth", "none")
    assert_one_clear_line(proc, "--auth none", "loopback")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("inventory", "--format", "yaml"), "invalid choice"),
        (("inventory", "--arm-endpoint", "http://127.0.0.1:1", "--auth", "none"), "https://"),
        (("nonsense",), "invalid choice"),
        (("inventory", "--demo", "--format", "md"), "--format md"),
    ],
)
def test_bad_arguments_are_one_clear_line(args, needle):
    assert_one_clear_line(aztriage(*args), needle)


def test_emulator_serve_prints_exactly_one_json_line():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "emulator", "serve", "--estate", "scale:50"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"endpoint", "ca_file"}
        assert info["endpoint"].startswith("https://127.0.0.1:")
        out = aztriage("inventory", "--arm-endpoint", info["endpoint"], "--ca-file", info["ca_file"], "--auth", "none", "--format", "json")
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)["vms"]) == 50
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stdout.read() == ""


def test_starting_the_cli_does_not_import_the_sdk():
    code = "import sys, tui.cli; tui.cli.build_parser(); print(any(m.startswith(('azure', 'textual')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_inventory_command_does_not_import_what_it_does_not_use():
    # What `aztriage inventory` imports (its command, the Azure adapter, the verdicts, the JSON
    # writer, the config without a file): probing's statistics, NSG evaluation, the last-known
    # IPs, backups, the serial console's storage check, the table formatter and the TOML parser
    # are imported where they are used.
    code = (
        "import sys, tui.commands.inventory, tui.runtime, backend.azure.backend, backend.verdict, backend.jsonout, backend.config\n"
        "backend.config.load_config('/nonexistent/aztriage.toml', {})\n"
        "unused = ('statistics', 'backend.network', 'backend.lastknown', 'backend.backup', 'backend.serialconsole', 'tui.textfmt', 'tomllib')\n"
        "print(sorted(m for m in unused if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "imported"),
    [
        ([], []),  # the console: no sub-command's module
        (["--demo", "--subscription", "probe"], []),  # 'probe' is the subscription's id here
        (["--format", "json", "inventory", "--instance-views", "0"], ["inventory"]),
        (["recover", "--help"], ["recover"]),
        (["--help"], "every"),
        (["inventroy"], "every"),  # the error lists every command
    ],
)
def test_a_command_line_imports_only_the_sub_command_it_names(argv, imported):
    """Starting the console or one command does not import every command's module (the
    recover command's alone imports every scenario)."""
    from tui.commands import MODULES

    code = (
        "import sys, tui.cli\n"
        f"p = tui.cli.build_parser({argv!r})\n"
        "print(sorted(m.rpartition('.')[2] for m in sys.modules if m.startswith('tui.commands.') and m != 'tui.commands.common'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(sorted(MODULES if imported == "every" else imported))


def buffered_env() -> dict[str, str]:
    """The environment without PYTHONUNBUFFERED (this one sets it): stdout buffered, as in an operator's shell."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_reader_that_leaves_early_gets_no_traceback(fmt):
    # `aztriage inventory | head -3`: the output is larger than a pipe holds, and the
    # reader closes its end after three lines; the command ends quietly with status 0.
    cmd = [sys.executable, "-m", "tui.cli", "inventory", "--demo", "--demo-estate", "scale:400", "--format", fmt]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=buffered_env())
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert all(head), head
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err, err


def test_a_table_written_to_a_pipe_is_whole():
    # The table goes through print(), buffered when stdout is a pipe: it reaches the
    # reader whole, its summary line last, before the process ends.
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "inventory", "--demo", "--demo-estate", "scale:400", "--format", "table"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=buffered_env(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("400 VMs in "), lines[-1]
    assert len(lines) > 400
