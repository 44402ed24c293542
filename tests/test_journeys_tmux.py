"""Operator journeys under tmux at 80x24 (TERM=xterm-256color), by keys only, asserting
that the text that decides is on screen or reachable by keys:

- NSG block -> fix: Connectivity names the blocking rule, `z` puts Network Watcher's
  answer on screen, `o` opens fix-nsg in the Recovery pane.
- IP changed -> .rdp: the new address and the advice to make the IP Static are reachable
  in the evidence panel (tab, then scroll), and `x` exports the .rdp file.
- no-boot -> rescue: the Boot pane's sweep (`a`) finds the VM that does not boot, `o` opens
  the rescue plan starred; the
  operator gives the rescue VM their SSH key, types the VM's name, and when the run waits,
  `d` puts the repair commands and where the rescue VM is (its private IP, ssh, the serial
  console) on screen.
- outage -> track: the Health pane's active incident opens on its tracking id, status,
  latest update and the VM Azure lists; that VM's detail opens on its verdict and its
  recovery list says no recovery is recommended while Azure mitigates, with the latest update.
- maintenance -> perform: the pending maintenance is in the Health pane; the VM whose
  self-service window is open gets perform-maintenance recommended; its plan is confirmed by
  the VM's name (Enter before it runs nothing), Azure's operation is watched to its end and
  the run's result line is on screen; the Health pane then lists only the other VM."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.tmux_support import Tmux, start_console


def start(term: Tmux, tmp_path: Path) -> None:
    start_console(term, tmp_path)
    term.wait_for("erp-prod-eus-01", "row 1/30", timeout=60)


def filter_inventory(term: Tmux, name: str) -> None:
    type_filter(term, name, f"1 match /{name}")
    term.keys("Enter")  # keeps the filter, back to the table
    term.wait_for(f"1 match /{name}", "o Recover", timeout=30)  # the footer of the table, not of the box


def keys_until(term: Tmux, needle: str, seen: str, *keys: str, tries: int = 12) -> str:
    """Press the keys (a scroll) until the needle is on screen; the screen last seen."""
    for _ in range(tries):
        if needle in seen:
            break
        term.keys(*keys)
        time.sleep(0.4)
        seen = term.screen()
    return seen


def whole(screen: str) -> None:
    lines = screen.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80


def type_filter(term: Tmux, name: str, shown: str) -> None:
    """/ then the name, once the box has the focus (its footer: esc clears, none of the table's keys):
    a name typed earlier would reach the pane's own keys (1 switches pane, p probes)."""
    term.keys("/")
    term.wait_for("esc Clear", absent=("o Recover", "p Probe"), timeout=30)
    term.type(name)
    term.wait_for(shown, timeout=30)


def filter_connectivity(term: Tmux, name: str) -> None:
    term.keys("3")
    term.wait_for("PORT STATUS")
    type_filter(term, name, f"/{name}")
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
    term.keys("x")  # export: the pane's .rdp file, from the evidence panel too
    term.wait_for("Wrote", ".rdp", timeout=20)
    rdp = next((tmp_path / "data" / "aztriage" / "exports").glob("rdgw-shared-01*.rdp"))
    assert rdp.read_text().startswith("full address:s:rdgw-shared-01")  # by name: the new address is what it resolves to
    term.keys("q")
    assert term.wait_exit() == 0


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJourneyKey0001 operator@laptop"


def test_no_boot_to_rescue_at_80x24(term, tmp_path):
    start(term, tmp_path)
    term.keys("6")  # Boot: which VMs did not boot?
    term.wait_for("LAST BOOT", timeout=30)
    term.keys("a")  # read every serial log
    term.wait_for("emergency mode (fstab)", timeout=120)
    type_filter(term, "api-dev-01", "/api-dev-01")
    term.keys("Enter")
    term.wait_for("o Recover", timeout=30)
    term.keys("o")  # recover: the verdict's recovery
    screen = term.wait_for("Recovery › api-dev-01", "★ Repair the OS disk on a rescue VM", timeout=60)
    assert "did not boot: emergency mode (fstab)" in screen
    term.keys("Enter")
    term.wait_for("New rescue VM", timeout=30)
    term.keys("Enter")  # a new rescue VM, the common fixes run first
    screen = term.wait_for("Sign in to the rescue VM as rescueadmin with your SSH public key", timeout=30)
    assert "no public IP" in screen
    term.keys("Enter")
    term.wait_for("Paste the public key", timeout=30)
    term.type(KEY)
    term.keys("Enter")
    screen = term.wait_for("› plan", "Create the rescue VM rescue-api-dev-01", timeout=60)
    assert "AAAAC3Nza" not in screen  # typed masked, never shown back
    # The plan says how the operator signs in: reachable in its detail panel.
    seen = keys_until(term, "sign-in", screen, "Tab", "PageDown", tries=10)
    assert "rescueadmin with your SSH public key" in " ".join(seen.split()), seen
    term.keys("o")  # run the plan shown
    term.wait_for("Type the VM's name (api-dev-01)", timeout=30)
    term.type("api-dev-01")
    term.keys("Enter")
    screen = term.wait_for("WAITING", "d: the repair is done", timeout=180)
    whole(screen)
    term.keys("d")
    screen = term.wait_for("waits for you", timeout=30)
    # Where the rescue VM is, at the top of the dialog (the run's result toast may cover its right side for 10 s):
    # the ssh line whole on a line of its own, as it is pasted.
    wanted = ("private IP", "ssh rescueadmin@10.")
    deadline = time.monotonic() + 20
    while not all(w in " ".join(screen.split()) for w in wanted) and time.monotonic() < deadline:
        time.sleep(0.5)
        screen = term.screen()
    assert all(w in " ".join(screen.split()) for w in wanted), screen
    assert re.search(r"█ +ssh rescueadmin@10\.\d+\.\d+\.\d+ +█", screen), screen
    whole(screen)
    # Its serial console just below, and the repair commands in the same dialog, a few pages down,
    # once the run's toast ("run ID: waiting", 10 s) no longer covers the dialog's right side.
    waiting = re.search(r"Run (\w+) waits for you", screen)
    assert waiting, screen
    run_id = waiting.group(1)
    screen = term.wait_for(f"Run {run_id} waits for you", absent=(f"run {run_id}: waiting",), timeout=20)
    seen = keys_until(term, "aztriage console --vm rescue-api-dev-01", screen, "Down")
    assert "aztriage console --vm rescue-api-dev-01" in seen, seen
    seen = keys_until(term, "lsblk", screen, "PageDown")
    assert "lsblk" in seen, seen
    # Its buttons (the run's result toast may sit over Cancel for its 10 s).
    term.wait_for("lsblk", "It is done", "Cancel", timeout=20)
    term.keys("Escape")
    term.wait_for("d: the repair is done", timeout=30)
    term.keys("q")
    assert term.wait_exit() == 0


def test_outage_to_track_at_80x24(term, tmp_path):
    start(term, tmp_path)
    term.keys("2")
    term.wait_for("Service Health events", "ACTIVE", timeout=30)
    term.keys("Tab")  # the events table; the active incident is first
    time.sleep(0.5)
    term.keys("Enter")
    screen = term.wait_for("Tracking id", "7T2K-LQ8", timeout=30)
    whole(screen)
    assert "ACTIVE" in screen and "Last update" in screen and "1 listed by Azure as impacted" in screen
    assert "1 impacted VM ·" in screen, screen  # (was '1 impacted VMs')
    assert "erp-prod-eus-01" in screen and "INCIDENT" in screen
    term.keys("Enter")  # the VM Azure lists: its detail opens on its verdict
    screen = term.wait_for("erp-prod-eus-01", "Verdict", "esc Back", timeout=30)
    whole(screen)
    flat = " ".join(screen.split())
    assert "platform incident 7T2K-LQ8" in flat and "no recovery is recommended while Azure is mitigating" in flat
    term.keys("o")  # recover? Azure is on it
    screen = term.wait_for("Recovery › erp-prod-eus-01", "platform incident 7T2K-LQ8", timeout=60)
    whole(screen)
    flat = " ".join(screen.split())
    assert "no recovery is recommended" in flat and "★" not in screen
    assert "latest update" in flat and "Power has been restored" in flat
    term.keys("q")
    assert term.wait_exit() == 0


def test_maintenance_to_perform_at_80x24(term, tmp_path):
    start(term, tmp_path)
    term.keys("2")
    # All three on one frame: under load a capture came while the pane was still being drawn.
    term.wait_for("Planned maintenance", "app-prod-ne-01", "2 VMs with maintenance pending", timeout=30)
    term.keys("1")
    filter_inventory(term, "app-prod-ne-01")
    term.keys("o")
    # Its self-service window is open: the scenario that performs it is recommended, first.
    screen = term.wait_for("Recovery › app-prod-ne-01", "★ Planned maintenance now", "planned maintenance pending", timeout=60)
    flat = " ".join(screen.split())
    assert "the self-service window is open until" in flat and "scheduled window" in flat, screen
    whole(screen)
    term.keys("Enter")  # the starred scenario's plan
    screen = term.wait_for("Planned maintenance now › plan", "Start the planned maintenance of app-prod-ne-01 now", timeout=60)
    assert "Interrupts service" in screen, screen
    term.keys("o")  # run the plan shown: the confirm dialog, its buttons in the frame
    screen = term.wait_for("THIS INTERRUPTS SERVICE", "Type the VM's name (app-prod-ne-01)", "Run", "Cancel", timeout=30)
    whole(screen)
    # Enter out of habit, before the name is typed, runs nothing and says what to do.
    term.keys("Enter")
    # (Those words were on screen before the key: wait for the buttons drawn whole again, the
    # hint's new lines laid out; under load a capture came between the two.)
    screen = term.wait_for("Escape to cancel.", "Run", "Cancel", "▁▁▁▁▁▁▁▁▁▁  ▁▁▁▁▁▁▁▁▁▁", timeout=30)
    assert "Type the VM's name (app-prod-ne-01)" in screen and "succeeded" not in screen
    assert "▁▁▁▁▁▁▁▁▁▁  ▁▁▁▁▁▁▁▁▁▁" in screen.splitlines()[-2], screen  # the buttons whole: their lower edge above the frame's
    term.type("app-prod-ne-01")
    term.keys("Enter")
    # Azure's long-running operation, watched to its end: the result line the operator reads.
    screen = term.wait_for("Planned maintenance now on app-prod-ne-01: all 3 steps verified", timeout=180)
    flat = " ".join(screen.split())
    assert "Azure finished the perform maintenance" in flat and "no maintenance is pending any more" in flat, screen
    assert "RDP answers on 127.10.1.17:3389" in flat, screen
    whole(screen)
    # Done once, the Health pane no longer lists it.
    term.keys("2")
    screen = term.wait_for("1 VM with maintenance pending", "app-prod-ne-02", timeout=60)
    rows = screen.split("1 VM with maintenance pending")[-1].splitlines()  # (the run's toast may still be at their right)
    assert any(r.lstrip().startswith("app-prod-ne-02") for r in rows) and not any(r.lstrip().startswith("app-prod-ne-01") for r in rows), screen
    term.keys("q")
    assert term.wait_exit() == 0
