"""Security, as an operator (or an auditor) would check it: no secret in any file
aztriage writes or in anything it prints; private files and directories; TLS
verification that cannot be talked out of; `--auth none` for loopback only;
`--read-only` that really sends no write, from the CLI and from every pane of
the console; and no automatic resource-provider registration."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backend.azure.backend import AzureBackend
from backend.recovery import scenarios
from tests.recovery_support import cli_connection, cli_env, reset, writes
from tests.support import assert_one_clear_line, assert_secret_nowhere, demo_settings, emulator_control

REPO = Path(__file__).resolve().parents[1]
AZTRIAGE = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]
PASSWORD = "Sentinel-Pa55-SEC-7731!"
KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAISentinelKeySEC7731xyzzy"


def aztriage(emu, home: Path, *args: str, stdin: str | None = None, connect: bool = True) -> subprocess.CompletedProcess:
    env = cli_env(home, emu)
    env["AZTRIAGE_REACH_TIMEOUT"] = "2"
    return subprocess.run(
        [*AZTRIAGE, *args, *(cli_connection(emu) if connect else [])],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- secrets --------------------------------------------------------------------------------


def test_no_secret_in_any_file_or_output_across_recover_runs_report_and_logs(emu, tmp_path):
    reset(emu)
    home = tmp_path / "home"
    key = tmp_path / "id_ed25519.pub"
    key.write_text(f"ssh-ed25519 {KEY_BODY} operator@laptop\n")
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None, expect: int = 0) -> subprocess.CompletedProcess:
        proc = aztriage(emu, home, "--log-level", "DEBUG", *args, stdin=stdin)
        outputs.extend([proc.stdout, proc.stderr])
        assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    run("recover", "--vm", "files-shared-01", "--scenario", "reset-access", "--password-stdin", "--yes", stdin=PASSWORD + "\n")
    run("recover", "--vm", "legacy-ftp-01", "--scenario", "reset-access", "--ssh-key", str(key), "--username", "ops", "--reset-config", "--yes")
    run(
        "recover",
        "--vm",
        "legacy-ftp-01",
        "--scenario",
        "reset-access",
        "--ssh-key",
        str(key),
        "--username",
        "ops",
        "--reset-config",
        "--format",
        "json",
        "--yes",
    )
    listed = json.loads(run("runs", "--format", "json").stdout)
    rows = listed if isinstance(listed, list) else listed.get("runs", [])
    assert len(rows) >= 3
    for row in rows:
        run("runs", row["run_id"], "--format", "json")
    run("report", "--vm", "files-shared-01", "--vm", "legacy-ftp-01", "--no-probe", "--output", str(home / "report.md"))
    run("inventory", "--format", "json")
    run("health", "--format", "json")

    for secret in (PASSWORD, KEY_BODY):
        assert_secret_nowhere(secret, home, outputs)


async def test_no_secret_in_console_exports(emu, tmp_path, monkeypatch):
    """The console's exports (inventory and health JSON) land in the data dir, private."""
    from tests.tui_support import make_app, wait_loaded

    reset(emu)
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    app = make_app(emu)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_loaded(pilot)
        paths = [app.export_inventory(), app.export_health()]
    for path in paths:
        assert path is not None and path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert PASSWORD.encode() not in path.read_bytes()
        json.loads(path.read_text())


def test_journal_log_and_config_files_are_0600_in_0700_directories(emu, tmp_path, monkeypatch):
    reset(emu)
    home = tmp_path / "home"
    proc = aztriage(emu, home, "recover", "--vm", "web-prod-01", "--scenario", "restart", "--yes")
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    from backend.config_store import save_setting

    config = save_setting("theme", "textual-light")
    assert Path(config).is_relative_to(home / "config")
    private = [p for p in home.rglob("*") if p.is_file() and (p.name.startswith("journal") or p.name.endswith(".log") or p == Path(config))]
    assert any(p.name == "journal.sqlite3" for p in private) and any(p.name.endswith(".log") for p in private) and Path(config) in private
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        # aztriage's own directories, up to (not including) the XDG base directory.
        parent = path.parent
        while parent.parent != home:
            assert stat.S_IMODE(parent.stat().st_mode) == 0o700, parent
            parent = parent.parent


# --- TLS and sign-in ----------------------------------------------------------------------------


@pytest.mark.parametrize("ca", ["other", "system"])
def test_tls_verification_cannot_be_skipped(emu, tmp_path, ca):
    import trustme

    home = tmp_path / "home"
    args = ["inventory", "--arm-endpoint", emu.endpoint, "--auth", "none"]
    if ca == "other":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        args += ["--ca-file", str(other)]
    before = emulator_control(emu, "GET", "/_emulator/stats")["requests"]
    proc = aztriage(emu, home, *args, connect=False)
    line = assert_one_clear_line(proc)
    assert "certificate" in line.lower() or "ssl" in line.lower() or "tls" in line.lower()
    # The handshake failed: not a single request reached the emulator's ARM surface.
    assert emulator_control(emu, "GET", "/_emulator/stats")["requests"] == before


@pytest.fixture
def no_outside_traffic(monkeypatch):
    """Fail on any name lookup or connection beyond loopback."""
    import ipaddress

    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo
    attempts: list = []

    def loopback(host) -> bool:
        try:
            return ipaddress.ip_address(str(host).strip("[]")).is_loopback
        except ValueError:
            return host == "localhost"

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            attempts.append(address)
            raise OSError("blocked by the test: traffic beyond loopback")
        return real_connect(self, address)

    def getaddrinfo(host, *a, **kw):
        if host is not None and not loopback(host):
            attempts.append(host)
            raise socket.gaierror("blocked by the test: lookup of a real name")
        return real_getaddrinfo(host, *a, **kw)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://192.0.2.10",
        "https://10.0.0.4:8443",
        "https://management.azure.com",
        "https://localhost.example.test",
        "https://127.0.0.1.example.test",
        "https://[2001:db8::1]",
    ],
)
def test_auth_none_is_refused_for_a_non_loopback_endpoint(endpoint, capsys, no_outside_traffic):
    from tui.cli import main

    code = main(["inventory", "--arm-endpoint", endpoint, "--auth", "none"])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--auth none" in err and "loopback" in err
    assert no_outside_traffic == []


# --- read-only ------------------------------------------------------------------------------------

READ_ONLY_RUNS = {
    "restart": ("web-prod-01", []),
    "start": ("qa-win-01", []),
    "deallocate": ("dev-sandbox-01", ["--confirm", "dev-sandbox-01"]),
    "redeploy": ("web-prod-02", []),
    "resize": ("web-prod-03", ["--size", "Standard_D4s_v5"]),
    "reapply": ("web-prod-01", []),
    "reset-access": ("files-shared-01", ["--password-stdin"]),
    "run-fix": ("files-shared-01", []),
    "perform-maintenance": ("app-prod-ne-01", []),
    "snapshot-disks": ("web-prod-03", []),
    "backup-now": ("erp-prod-eus-01", []),
    "restore-point": ("sql-prod-01", []),
    "restore-disk": ("web-prod-03", ["--source", "web-prod-03-os-snap", "--confirm", "web-prod-03"]),
    "enable-boot-diagnostics": ("web-prod-01", []),
    "rescue": ("api-dev-01", ["--run-fixes", "--confirm", "api-dev-01"]),
    "recreate": ("dev-sandbox-01", ["--confirm", "dev-sandbox-01"]),
    "move-to-zone": ("app-prod-ne-02", ["--zone", "1", "--confirm", "app-prod-ne-02"]),
    "move-to-set": ("sql-prod-02", ["--availability-set", "avset-sql-prod-b", "--confirm", "sql-prod-02"]),
    "fix-nsg": ("jump-prod-01", []),
    "upgrade-public-ip": ("rdgw-shared-01", ["--confirm", "rdgw-shared-01"]),
    "reset-vpn": ("payroll-app-01", ["--gateway", "--confirm", "payroll-app-01"]),
    "disable-nla": ("rdgw-shared-01", []),
}


def test_every_scenario_is_listed_for_the_read_only_check():
    assert set(READ_ONLY_RUNS) == set(scenarios.IDS)


@pytest.mark.parametrize("scenario", list(READ_ONLY_RUNS))
def test_read_only_recover_sends_zero_writes(emu, tmp_path, scenario):
    vm, extra = READ_ONLY_RUNS[scenario]
    home = tmp_path / "home"
    before = writes(emu)
    proc = aztriage(
        emu, home, "--read-only", "recover", "--vm", vm, "--scenario", scenario, "--yes", *extra, stdin=PASSWORD + "\n" if "--password-stdin" in extra else None
    )
    assert writes(emu) == before, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode != 0 or "read-only" in (proc.stdout + proc.stderr).lower()
    assert PASSWORD not in proc.stdout + proc.stderr


async def test_read_only_console_sends_zero_writes_through_every_pane_and_a_recovery_attempt(emu, tmp_path, monkeypatch):
    from tests.tui_support import make_app, wait_for, wait_loaded
    from tui.panes import PANES
    from tui.screens.recovery import RecoveryScreen

    reset(emu)
    monkeypatch.setattr(RecoveryScreen, "journal_path", tmp_path / "journal.sqlite3")
    before = writes(emu)
    app = make_app(emu, read_only=True, refresh_interval=0)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_loaded(pilot)
        for pane in PANES:
            await pilot.press(pane.key)
            await pilot.pause(0.3)
            await pilot.press("enter")  # open whatever the pane has first (a VM, a check, a target)
            await pilot.pause(0.5)
            await pilot.press("escape")
            await pilot.pause(0.1)
        await pilot.press("r")  # a refresh
        await wait_loaded(pilot, 2)
        # A recovery attempt: choose a VM and a scenario, try to run the plan.
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, RecoveryScreen), what="the recovery pane")
        screen = app.screen
        await pilot.press("slash", *"web-prod-01")
        await pilot.press("enter")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.facts is not None and screen.stage == "scenarios", what="the scenarios")
        options = screen.query_one("#scenarios")
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("restart")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        await pilot.press("o")
        await pilot.pause()
        screen.action_run_plan()
        await pilot.pause(0.3)
        assert screen.run_id is None
    assert writes(emu) == before


# --- provider registration -------------------------------------------------------------------------


async def test_provider_auto_registration_never_fires_on_a_read_or_an_action(emu):
    reset(emu)
    backend = AzureBackend(demo_settings(emu), retry_total=1)
    try:
        inv0 = await backend.inventory(instance_views=0)
        victim = inv0.subscriptions[0].subscription_id
        vm = next(v for v in inv0.vms if v.name == "web-prod-01")
        emulator_control(
            emu,
            "POST",
            "/_emulator/faults",
            {
                "match": f"/subscriptions/{victim}/providers/Microsoft.Compute/disks",
                "method": "GET",
                "status": 409,
                "code": "MissingSubscriptionRegistration",
                "message": "The subscription is not registered to use namespace 'Microsoft.Compute'.",
                "count": -1,
            },
        )
        emulator_control(
            emu,
            "POST",
            "/_emulator/faults",
            {
                "match": "/restart",
                "method": "POST",
                "status": 409,
                "code": "MissingSubscriptionRegistration",
                "message": "The subscription is not registered to use namespace 'Microsoft.Compute'.",
                "count": -1,
            },
        )
        inv = await backend.inventory(instance_views=0)
        assert [e.subscription_id for e in inv.errors] == [victim]
        assert "not registered" in inv.errors[0].message
        from backend.adapter import BackendError

        with pytest.raises(BackendError) as info:
            await backend.vm_action(vm.id, "restart")
        assert "not registered" in str(info.value)
    finally:
        emulator_control(emu, "DELETE", "/_emulator/faults")
        await backend.close()
    log = emulator_control(emu, "GET", "/_emulator/requests")
    assert not any(r["path"].lower().rstrip("/").endswith("/register") for r in log)
    assert not any("/providers/microsoft.compute/register" in r["path"].lower() for r in log)
