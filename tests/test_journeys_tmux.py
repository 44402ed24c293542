"""Operator journeys under tmux at 80x24 (TERM=xterm-256color), by keys only, asserting
that the text that decides is on screen or reachable by keys:

- NSG block -> fix: Connectivity names the blocking rule, `z` puts Network Watcher's
  answer on screen, `o` opens fix-nsg in the Recovery pane.
- IP changed -> .rdp: the new address and the advice to make the IP Static are reachable
  in the evidence panel (tab, then scroll), and `w` writes the .rdp file."""

from __future__ import annotations

import time
from pathlib import Path

from tests.tmux_support import Tmux, start_console


def start(term: Tmux, tmp_path: Path) -> None:
    start_console(term, tmp_path)
    term.wait_for("erp-prod-eus-01", "row 1/30", timeout=60)


def filter_connectivity(term: Tmux, name: str) -> None:
    term.keys("3")
    term.wait_for("PORT STATUS")
    term.keys("/")
    time.sleep(0.5)  # the box takes focus on the frame after it is shown
    term.type(name)
    term.keys("Enter")
    time.sleep(0.5)


def test_nsg_block_to_fix_at_80x24(term, tmp_path):
    start(term, tmp_path)
    filter_connectivity(term, "jump-prod-01")
    term.keys("p")
    term.wait_for("NSG BLOCKS", "Deny-RDP-Incident-4711", timeout=60)
    term.keys("z")  # Network Watcher, from inside Azure
    screen = term.wait_for("Network Watcher from", timeout=60)
    assert "Deny-RDP-Incident-4711" in screen
    lines = screen.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert "o Recover" in lines[-1] and "? Keys" in lines[-1]  # the footer is whole
    term.keys("o")
    term.wait_for("Recovery › jump-prod-01", timeout=30)
    screen = term.wait_for("★", timeout=30)
    assert "recommended" in screen
    term.keys("q")
    assert term.wait_exit() == 0


def test_ip_changed_to_rdp_file_at_80x24(term, tmp_path):
    start(term, tmp_path)
    filter_connectivity(term, "rdgw-shared-01")
    term.keys("p")
    term.wait_for("IP changed", "127.10.2.11", timeout=60)
    # The address change and the advice to make the IP Static are in the evidence: reachable by keys.
    seen = term.screen()
    for _ in range(12):
        if "Static" in seen:
            break
        term.keys("Tab")
        time.sleep(0.3)
        term.keys("PageDown")
        time.sleep(0.3)
        seen = term.screen()
    assert "Static" in seen or "static" in seen, seen
    term.keys("w")  # the pane's key, from the evidence panel too
    term.wait_for("Wrote", ".rdp", timeout=20)
    rdp = next((tmp_path / "data" / "aztriage" / "exports").glob("rdgw-shared-01*.rdp"))
    assert rdp.read_text().startswith("full address:s:rdgw-shared-01")  # by name: the new address is what it resolves to
    term.keys("q")
    assert term.wait_exit() == 0
