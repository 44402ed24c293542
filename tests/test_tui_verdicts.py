"""The console opens on what is broken: the Inventory's VERDICT column fills in from
the background probe, every pane gives the same answer for a VM, and a recovery run's
result replaces the verdict from before it (against the emulator's real guests)."""

from __future__ import annotations

import re

import pytest
from textual.worker import WorkerState

from tests.support import emulator_control, start_emulator
from tests.tui_support import make_app, renderable_text, table_lines, wait_for, wait_loaded
from widgets.vm_table import VmTable

pytestmark = pytest.mark.xdist_group("tui-verdicts")


@pytest.fixture(scope="module")
def emu():
    e = start_emulator("demo")
    yield e
    e.stop()


def verdicts(app) -> dict[str, str]:
    return {vm.name: app.verdict_for(vm).id for vm in app.inventory.vms}


async def test_the_background_probe_fills_the_verdicts_attention_first(emu):
    app = make_app(emu, auto_probe=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        # While it runs: the header and the Inventory's status line say so.
        await wait_for(pilot, lambda: bool(app.probe_status), what="the background probe to start")
        assert "probing" in app.header_state.status and "X stops" in str(app.screen.query_one("#status-line").render())
        await wait_for(pilot, lambda: not app.probe_status and verdicts(app)["jump-prod-01"] != "unknown", timeout=60, what="the probe to finish")
        found = verdicts(app)
        assert found["jump-prod-01"] == "blocked-by-nsg" and found["tools-lnx-shared-01"] == "blocked-by-nsg"
        assert found["files-shared-01"] == "guest-firewall" and found["legacy-ftp-01"] == "guest-service-down"
        assert found["api-dev-01"] == "not-booting" and found["pg-dev-01"] == "not-booting"  # boot logs read for those that fail
        assert found["mon-shared-eus-01"] == "agent-not-ready" and found["web-prod-01"] == "reachable"
        await pilot.pause(0.2)
        table = app.screen.query_one(VmTable)
        lines = table_lines(table)
        jump = next(line for line in lines if "jump-prod-01" in line)
        assert "NSG" in jump
        # Attention first: nothing that needs attention sits below a reachable VM.
        ranks = [app.verdict_for(row.item).rank for row in table.visible_rows()]
        assert ranks == sorted(ranks)
        assert names_before(table, "web-prod-01") >= {"jump-prod-01", "files-shared-01", "api-dev-01", "erp-prod-eus-01"}
        # The Connectivity pane, opened after the probe, says the same of each port.
        await pilot.press("3")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConnectivityScreen", what="the Connectivity pane")
        await pilot.pause(0.3)
        rows = table_lines(app.screen.table)
        jump = next(line for line in rows if "jump-prod-01" in line)
        web = next(line for line in rows if "web-prod-01" in line)
        assert "NSG BLOCKS" in jump and "reachable" in web
        # ... and what the probe saw of it: where it knocked, what came back, how fast.
        assert "127.10.1.20:" in jump and "TIMEOUT" in jump, jump
        assert re.search(r" open +\d+\.\d +ssh ", web), web
        # It only read: nothing was written to Azure.
        assert emulator_control(emu, "GET", "/_emulator/stats")["writes"] == 0


def sweeps(app) -> list:
    return [w for w in app.workers if w.group == "auto-probe" and not w.is_finished]


async def test_a_refresh_lets_the_running_background_probe_finish(emu):
    """On a large estate the probe outlasts a refresh (10,000 VMs: about a minute). Started
    afresh by every load, it never finished and no verdict came of it."""
    app = make_app(emu, auto_probe=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: bool(app.probe_status), what="the background probe to start")
        (sweep,) = sweeps(app)
        loads = app.loads
        app.refresh_inventory()  # jump-prod-01's port answers nothing for 2 s: the refresh lands first
        await wait_for(pilot, lambda: app.loads > loads, what="the refresh to land")
        assert sweeps(app) == [sweep] and bool(app.probe_status)
        await wait_for(pilot, lambda: sweep.is_finished, timeout=60, what="the probe to finish")
        assert sweep.state == WorkerState.SUCCESS and not sweeps(app)
        assert verdicts(app)["jump-prod-01"] == "blocked-by-nsg" and verdicts(app)["web-prod-01"] == "reachable"


async def test_a_vm_a_load_finds_while_the_probe_runs_is_probed_once_it_has_finished(emu):
    app = make_app(emu, auto_probe=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        await wait_for(pilot, lambda: not app.probe_status and verdicts(app)["web-prod-01"] == "reachable", timeout=60, what="the first probe")
        jump = next(vm for vm in app.inventory.vms if vm.name == "jump-prod-01")
        web = next(vm for vm in app.inventory.vms if vm.name == "web-prod-01")
        app.recheck(jump.id)  # a probe of jump-prod-01 alone, which takes 2 s to time out
        await wait_for(pilot, lambda: bool(sweeps(app)), what="the recheck's probe")
        (sweep,) = sweeps(app)
        app.verdicts.forget(web.id)  # now web-prod-01 needs a probe too, and the probe running does not cover it
        assert verdicts(app)["web-prod-01"] != "reachable"
        loads = app.loads
        app.refresh_inventory()
        await wait_for(pilot, lambda: app.loads > loads, what="the refresh to land")
        assert sweeps(app) == [sweep]  # not started again for it
        await wait_for(pilot, lambda: verdicts(app)["web-prod-01"] == "reachable" and not sweeps(app), timeout=60, what="web-prod-01 to be probed")
        assert sweep.state == WorkerState.SUCCESS and verdicts(app)["jump-prod-01"] == "blocked-by-nsg"


def names_before(table, name: str) -> set[str]:
    rows = [row.item.name for row in table.visible_rows()]
    return set(rows[: rows.index(name)])


async def test_no_background_probe_when_it_is_turned_off(emu):
    app = make_app(emu, auto_probe=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_loaded(pilot)
        await pilot.pause(0.5)
        assert not app.probe_status and not any(w.group == "auto-probe" for w in app.workers)
        assert verdicts(app)["jump-prod-01"] == "unknown"


async def test_the_tab_bar_names_every_pane_at_80_columns(emu):
    from widgets.app_header import AppHeader

    for read_only in (False, True):
        app = make_app(emu, read_only=read_only)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_loaded(pilot)
            header = str(app.screen.query_one(AppHeader).render())
            for name in ("Inv", "Health", "Conn", "Recov", "Check", "Boot"):
                assert name in header, (name, header)
            assert "DEMO" in header and ("READ-ONLY" in header) is read_only


async def test_connectivity_boot_and_recovery_give_one_answer(emu):
    """mon-shared-eus-01: SSH answers, the agent is Not Ready: sign in and restart waagent, everywhere."""
    app = make_app(emu, start_pane="connectivity")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_loaded(pilot)
        screen = app.screen
        vm = app.inventory.vm_by_name("mon-shared-eus-01")[0]
        screen.table.move_cursor_to_key(f"{vm.id.lower()}:22")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.verdict_for(vm).probed, timeout=30, what="the probe")
        await pilot.pause(0.2)
        conn = renderable_text(screen.query_one("#probe-detail").content, width=220)
        assert "VERDICT AGENT" in conn and "Sign in over SSH" in conn and "walinuxagent" in conn
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_mode == "boot", what="the Boot pane")
        boot = app.screen
        boot.table.move_cursor_to_key(vm.id.lower())
        await pilot.pause(0.2)
        text = renderable_text(boot.query_one("#boot-detail").content, width=220)
        assert "VERDICT AGENT" in text and "Sign in over SSH" in text
        row = next(line for line in table_lines(boot.table) if "mon-shared-eus-01" in line)
        assert row.rstrip().endswith(" -"), row  # RECOVERY: none (the log alone said "restart"; the verdict has none)
        # o recovers from every pane: with no recovery recommended, the Recovery pane opens on the VM's
        # scenarios with none starred (the log alone said "restart"; the verdict has none).
        await pilot.press("o")
        await wait_for(pilot, lambda: app.current_mode == "recovery" and app.screen.facts is not None and app.screen.stage == "scenarios", what="the scenarios")
        options = app.screen.query_one("#scenarios")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert prompts and not any("recommended" in p for p in prompts), prompts


async def test_a_recovery_run_replaces_the_verdict_from_before_it(emu):
    """legacy-ftp-01: sshd is down (guest-service-down); reset-access fixes it; the verdict follows."""
    from tui.screens.recovery import RecoveryScreen

    app = make_app(emu, start_pane="connectivity")
    try:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_loaded(pilot)
            vm = app.inventory.vm_by_name("legacy-ftp-01")[0]
            app.screen.table.move_cursor_to_key(f"{vm.id.lower()}:22")
            await pilot.press("p")
            await wait_for(pilot, lambda: app.verdict_for(vm).probed, timeout=30, what="the probe")
            assert app.verdict_for(vm).id == "guest-service-down" and app.verdict_for(vm).scenario == "reset-access"
            await pilot.press("o")
            await wait_for(pilot, lambda: app.current_mode == "recovery", what="the Recovery pane")
            recovery: RecoveryScreen = app.screen
            await wait_for(pilot, lambda: recovery.facts is not None, what="the VM's facts")
            await wait_for(pilot, lambda: recovery.query_one("#scenarios").highlighted is not None, what="the scenarios")
            options = recovery.query_one("#scenarios")
            assert options.get_option_at_index(0).id == "reset-access"
            await pilot.press("enter")
            await wait_for(pilot, lambda: recovery.stage in ("options", "plan"), what="the options or the plan")
            while recovery.stage == "options":
                await pilot.press("enter")
                await pilot.pause(0.3)
            await wait_for(pilot, lambda: recovery.plan is not None and recovery.stage == "plan", what="the plan")
            await pilot.press("o")
            from widgets.confirm_dialog import ConfirmDialog

            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press("enter")
            await wait_for(pilot, lambda: recovery.run_id and not recovery.running, timeout=90, what="the run")
            # The run's result replaces the verdict: read again and probed again, now reachable.
            await wait_for(pilot, lambda: app.verdict_for(app.inventory.vm_by_name("legacy-ftp-01")[0]).id == "reachable", timeout=60, what="the new verdict")
    finally:
        emulator_control(emu, "POST", "/_emulator/reset")


async def test_what_changed_is_in_the_verdict_of_a_vm_that_does_not_answer(emu):
    """jump-prod-01's RDP is blocked: after the probe, the console reads its recent changes (one
    Resource Graph query, not in the inventory load) and the NSG rule sec.oncall added 2 h 40 min
    before is in its verdict: in the Connectivity evidence and in the VM detail's Verdict section."""
    from tui.screens.vm_detail import VmDetailScreen

    app = make_app(emu, start_pane="connectivity")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_loaded(pilot)
        vm = app.inventory.vm_by_name("jump-prod-01")[0]
        assert not app.verdicts.changes_known(vm.id)  # nothing read with the inventory
        screen = app.screen
        screen.table.move_cursor_to_key(f"{vm.id.lower()}:3389")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.verdict_for(vm).change is not None, timeout=40, what="the recent change")
        await pilot.pause(0.3)
        conn = renderable_text(screen.query_one("#probe-detail").content, width=300)
        assert re.search(
            r"\n  changed 2h \d+m ago \(2026-11-30 00:20 UTC\) by sec\.oncall@contoso\.com: Update nsg-jump-prod: .*Deny-RDP-Incident-4711", conn
        ), conn
        web = app.inventory.vm_by_name("web-prod-01")[0]
        assert not app.verdicts.changes_known(web.id)  # only the VMs that need it are read
        await app.push_screen(VmDetailScreen(vm.id))
        await pilot.pause(0.3)
        detail = renderable_text(app.screen.query_one("#vm-detail-body").content, width=300)
        assert "Verdict" in detail and "NSG  blocked by NSG rule Deny-RDP-Incident-4711" in detail
        assert re.search(r"• changed 2h \d+m ago \(2026-11-30 00:20 UTC\) by sec\.oncall@contoso\.com", detail), detail
        app.pop_screen()
        await pilot.press("6")  # the Boot pane's verdict block says it too
        await wait_for(pilot, lambda: app.current_mode == "boot", what="the Boot pane")
        app.screen.table.move_cursor_to_key(vm.id.lower())
        await pilot.pause(0.3)
        boot = renderable_text(app.screen.query_one("#boot-detail").content, width=300)
        assert re.search(r"VERDICT NSG: .*\n  next: .*\n  changed 2h \d+m ago .* by sec\.oncall@contoso\.com", boot, re.S), boot
