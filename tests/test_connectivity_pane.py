"""The Connectivity pane as an operator drives it: probe one VM, the marked
ones, the filtered ones or all; the table fills in as results arrive; the
panel shows the verdict with its evidence and a connection line; `o` opens
the recommended recovery; `w` writes an .rdp file. Snapshots at 80x24 and
160x50 (only VMs without latency figures, so the pictures are stable)."""

from __future__ import annotations

import pytest

from tests.support import emulator_control, start_emulator
from tests.tui_support import make_app, renderable_text, table_lines, wait_for, wait_loaded
from tui.messages import OpenRecovery
from tui.screens.connectivity import ConnectivityScreen

pytestmark = pytest.mark.xdist_group("connectivity")

SIZES = [(80, 24), (160, 50)]


@pytest.fixture(scope="module")
def pane_emulator():
    emu = start_emulator("demo")
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def quick_probes(monkeypatch, tmp_path, pane_emulator):
    monkeypatch.setattr(ConnectivityScreen, "probe_timeout", 0.3)
    monkeypatch.setattr(ConnectivityScreen, "probe_attempts", 1)
    # Each test starts from an empty last-known store and the initial estate.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield
    emulator_control(pane_emulator, "POST", "/_emulator/reset")


async def open_pane(pilot) -> ConnectivityScreen:
    await wait_loaded(pilot)
    await pilot.press("3")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConnectivityScreen) and pilot.app.screen.states, what="the connectivity pane")
    await pilot.pause()
    return pilot.app.screen


async def probed(pilot, screen, names) -> None:
    await wait_for(
        pilot,
        lambda: not screen.probing and all(screen.states[k].diagnosis for k in screen.states if screen.states[k].vm.name in names),
        what=f"diagnoses of {names}",
    )
    await pilot.pause(0.1)


async def probe_one(pilot, screen, name: str) -> None:
    """Filter the pane to one VM, probe it with p and wait for its diagnosis."""
    screen.set_filter(name)
    await pilot.pause()
    await pilot.press("p")
    await probed(pilot, screen, {name})


def detail(screen) -> str:
    return renderable_text(screen.query_one("#probe-detail").content, width=220)


async def test_every_vm_has_a_row_before_anything_is_probed(pane_emulator):
    async with make_app(pane_emulator).run_test(size=(120, 40)) as pilot:
        screen = await open_pane(pilot)
        table = screen.table
        assert table.total_count == 30  # one port per VM in the demo
        lines = table_lines(table)
        assert "NAME" in lines[0] and "STATUS" in lines[0] and "VERDICT" in lines[0] and "RECOVERY" in lines[0]
        assert all(s.diagnosis is None and not s.results for s in screen.states.values())
        assert "not probed yet" in detail(screen)


async def test_a_hidden_pane_makes_its_rows_when_shown_not_at_every_verdict(pane_emulator, monkeypatch):
    """A large estate's Connectivity pane (here: the threshold lowered to the demo's VMs), left for
    another pane, lets go of its rows; a verdict learned meanwhile (the background probe's, every
    refresh) does not make them all again while nobody looks (96 ms a time at 10,000 VMs); shown
    again, the pane has every row, with what was learned."""
    import tui.screens.base as base
    from tui.messages import VerdictsChanged

    monkeypatch.setattr(base, "HIDDEN_ROWS_KEPT", 10)
    app = make_app(pane_emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_pane(pilot)
        rows = screen.table.total_count
        assert rows == len(screen.states) > 10
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.table.total_count == 0, what="the hidden pane letting go of its rows")
        app.broadcast(VerdictsChanged())
        await pilot.pause(0.3)
        assert screen.table.total_count == 0  # not made again while hidden
        await pilot.press("3")
        await wait_for(pilot, lambda: screen.table.total_count == rows, what="the rows back")


async def test_probe_the_selected_vm_and_read_the_evidence(pane_emulator):
    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        await probe_one(pilot, screen, "jump-prod-01")
        line = next(line for line in table_lines(screen.table) if "jump-prod-01" in line)
        assert "TIMEOUT" in line and "NSG BLOCKS" in line and "fix-nsg" in line
        text = detail(screen)
        assert "blocked by NSG rule Deny-RDP-Incident-4711 at priority 200 (NIC NSG nsg-jump-prod)" in text
        assert "nic NSG nsg-jump-prod denies by rule Deny-RDP-Incident-4711" in text
        # Only that VM was probed.
        assert [s.vm.name for s in screen.states.values() if s.diagnosis] == ["jump-prod-01"]


async def test_probe_all_fills_the_table_live_and_marks_what_needs_work(pane_emulator):
    async with make_app(pane_emulator).run_test(size=(160, 50)) as pilot:
        screen = await open_pane(pilot)
        seen_partial = []

        original = screen._flush

        refresh: list[int] = []  # diagnoses before and after a refresh that lands mid-probe

        def diagnosed() -> int:
            return sum(1 for s in screen.states.values() if s.diagnosis)

        def spy():
            original()
            done = sum(1 for s in screen.states.values() if s.diagnosis or s.results)
            seen_partial.append(done)

        on_diagnosis = screen._on_diagnosis

        def refresh_meanwhile(diagnosis):
            on_diagnosis(diagnosis)
            if not refresh:
                refresh.append(diagnosed())
                screen.show_inventory(pilot.app.inventory)  # what an automatic refresh does
                refresh.append(diagnosed())

        screen._flush = spy
        screen._on_diagnosis = refresh_meanwhile
        await pilot.press("a")
        await probed(pilot, screen, {s.vm.name for s in screen.states.values()})
        # The table was drawn while results were still arriving, not only at the end.
        assert any(0 < n < len(screen.states) for n in seen_partial)
        # A refresh meanwhile kept what the probe had found so far.
        assert refresh and refresh[1] == refresh[0]
        verdicts = {s.vm.name: s.diagnosis.verdict for s in screen.states.values()}
        assert verdicts["web-prod-01"] == "reachable" and verdicts["legacy-ftp-01"] == "guest-not-answering"
        assert verdicts["rdgw-shared-01"] == "ip-changed"  # the demo's story, replayed in every session
        summary = str(screen.query_one("#summary").content)
        assert "30 diagnosed:" in summary and "NOT" in summary
        # Rows stay in inventory order while results arrive; sorting by the first column puts the rows that need work on top.
        screen.table.sort_by("marker")
        await pilot.pause()
        top = table_lines(screen.table)[1]
        assert "GUEST" in top or "NSG BLOCKS" in top


async def test_mark_probes_only_the_marked_vms_and_filter_probes_the_shown_ones(pane_emulator):
    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        screen.set_filter("web-prod")
        await pilot.pause()
        await pilot.press("F")
        await probed(pilot, screen, {"web-prod-01", "web-prod-02", "web-prod-03"})
        assert sorted(s.vm.name for s in screen.states.values() if s.diagnosis) == ["web-prod-01", "web-prod-02", "web-prod-03"]
        assert "ssh -p " in detail(screen) and "@web-prod-01.westeurope.cloudapp.azure.test" in detail(screen)  # by name, not address

        screen.set_filter("legacy")
        await pilot.pause()
        await pilot.press("space")  # marks the first legacy VM and moves down
        marked = [s.vm.name for s in screen.states.values() if s.marked]
        assert len(marked) == 1
        await pilot.press("p")
        await probed(pilot, screen, set(marked))
        diagnosed = sorted(s.vm.name for s in screen.states.values() if s.diagnosis)
        assert diagnosed == sorted(["web-prod-01", "web-prod-02", "web-prod-03", *marked])


async def test_open_recovery_lands_in_the_recovery_pane_with_the_scenario(pane_emulator):
    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        await probe_one(pilot, screen, "legacy-ftp-01")
        assert screen.check_action("open_recovery", ()) is True
        await pilot.press("o")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "recommended", None) is not None, what="the Recovery pane")
        message = pilot.app.screen.recommended
        assert isinstance(message, OpenRecovery)
        assert pilot.app.current_mode == "recovery"
        assert message.scenario == "reset-access"
        assert message.vm_id.endswith("/legacy-ftp-01")
        assert message.reason == "guest not answering though Azure allows it: SSH refused"
        assert any("refused" in line for line in message.evidence)


async def test_without_a_recovery_pane_o_says_what_to_run(pane_emulator, monkeypatch):
    import tui.app  # first: imported under the patch, its own PANES would lack Recovery for every later test in this process
    import tui.panes

    monkeypatch.setattr(tui.panes, "PANES", tuple(p for p in tui.panes.PANES if p.id != "recovery"))
    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        await probe_one(pilot, screen, "qa-win-01")
        await pilot.press("o")
        await pilot.pause()
        assert any("aztriage recover start --vm qa-win-01" in str(n.message) for n in pilot.app._notifications)


async def test_write_rdp_file_with_the_current_address(pane_emulator, tmp_path):
    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        await probe_one(pilot, screen, "dc-shared-01")
        await pilot.press("x")
        await pilot.pause()
        path = pilot.app.export_dir() / "dc-shared-01.rdp"
        assert path.exists()
        first = path.read_text().splitlines()[0]
        assert first.startswith("full address:s:dc-shared-01.westeurope.cloudapp.azure.test")  # its DNS name outlives an address change
        assert path.stat().st_mode & 0o777 == 0o600


def probed_then_cursor_on(names, cursor):
    async def run_before(pilot) -> None:
        from widgets.connectivity_table import row_key

        screen = await open_pane(pilot)
        for state in screen.states.values():
            state.marked = state.vm.name in names
        await pilot.press("p")
        await probed(pilot, screen, set(names))
        for state in screen.states.values():
            state.marked = False
        screen._flush()
        target = next(s for s in screen.states.values() if s.vm.name == cursor)
        screen.table.move_cursor_to_key(row_key(target.vm.id, target.port))
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_connectivity_pane_snapshot(snap_compare, pane_emulator, size, monkeypatch, tmp_path):
    monkeypatch.setattr(ConnectivityScreen, "probe_timeout", 0.3)
    monkeypatch.setattr(ConnectivityScreen, "probe_attempts", 1)
    app = make_app(pane_emulator, start_pane="connectivity")
    assert snap_compare(app, terminal_size=size, run_before=probed_then_cursor_on({"payroll-app-01", "legacy-app-02"}, "payroll-app-01"))


async def test_z_at_80x24_shows_network_watchers_answer_on_screen(pane_emulator):
    """Network Watcher's answer is the last of the evidence: at 80x24 the panel is scrolled to it
    and it is said in a notification; the panel's border says how to scroll back up."""
    from tests.tui_support import screen_text

    async with make_app(pane_emulator).run_test(size=(80, 24)) as pilot:
        screen = await open_pane(pilot)
        screen.set_filter("jump-prod-01")
        await pilot.pause()
        await pilot.press("z")
        await probed(pilot, screen, {"jump-prod-01"})
        await pilot.pause(0.2)
        assert "Network Watcher from" in detail(screen)
        assert any(str(n.message).startswith("Network Watcher from") for n in pilot.app._notifications)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)
        shown = screen_text(pilot.app)
        assert "Network Watcher from" in shown, shown
        assert "above" in shown and "tab: scroll" in shown, shown
        # The panel takes the focus with tab and scrolls back to the verdict by keys.
        panel = screen.query_one("#probe-detail-box")
        for _ in range(4):  # the table, the filter box (shown), the panel
            if panel.has_focus:
                break
            await pilot.press("tab")
        assert panel.has_focus
        await pilot.press("home")
        await pilot.pause(0.1)
        shown = screen_text(pilot.app)
        assert "VERDICT NSG" in shown and "more line" in shown, shown


async def test_the_private_path_and_the_source_address_are_reachable_from_the_pane(pane_emulator):
    """The CLI's --private and --source-ip: v probes the VMs' private IPs too, u sets the NSGs' source."""
    from widgets.text_prompt import TextPrompt

    async with make_app(pane_emulator).run_test(size=(140, 45)) as pilot:
        screen = await open_pane(pilot)
        await probe_one(pilot, screen, "payroll-app-01")
        assert "probe again with --private" in detail(screen)
        await pilot.press("v")
        await pilot.pause()
        assert screen.private and "private IPs too" in renderable_text(screen.query_one("#summary").content, width=220)
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TextPrompt), what="the source prompt")
        prompt = pilot.app.screen
        prompt.query_one("#prompt-input").value = "not-an-address"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TextPrompt)
        assert "neither an IP address nor one of Internet" in renderable_text(prompt.query_one("#prompt-error").content, width=200)
        prompt.query_one("#prompt-input").value = "203.0.113.7"
        await pilot.press("enter")
        await wait_for(pilot, lambda: pilot.app.screen is screen, what="back to the pane")
        assert screen.source_ip == "203.0.113.7"
        await pilot.press("p")
        await probed(pilot, screen, {"payroll-app-01"})
        text = detail(screen)
        # The private address was probed this time, and the NSGs were evaluated for the address typed.
        assert "probe again with --private" not in text and "10.0.1.4" in text
        assert "from 203.0.113.7" in text
        assert "source 203.0.113.7" in renderable_text(screen.query_one("#summary").content, width=220)
