"""The emulator's guest port map belongs to the demo alone.

The emulator acts out every demo VM's ports with stand-in listeners on the
VM's loopback address, moving one to a port the kernel picks when the real
port is taken, and publishes where in GET /_emulator/guest. Only the demo
(--demo) follows that map. With --arm-endpoint the product probes each VM's
own address and port, and an estate can turn the stand-ins off for one VM
("stand_ins": false), so a real server at that address is not shadowed by a
fake. Here the "real servers" are listeners this test starts itself on
127.x addresses of its own.
"""

from __future__ import annotations

import json
import random
import socket
import threading

import pytest

from backend import connectivity
from backend.azure.backend import AzureBackend
from backend.emulator.estates import EstateError, load_estate, validate_estate
from backend.emulator.server import EmulatorThread
from backend.probe import OPEN
from backend.recovery import steps
from backend.settings import ConnectionSettings
from tests.support import FIXED_NOW, demo_settings, emulator_control

REAL = "web-prod-01"  # its stand-ins are off: the real server at its address answers
SHADOWED = "web-prod-02"  # stand-ins on: the demo's fake moves aside from the real server's port
BANNER = b"SSH-2.0-RealServer_test\r\n"
QUICK = dict(timeout=0.5, attempts=1)


class RealServer:
    """A listener of our own that sends an SSH identification line and counts connections."""

    def __init__(self, address: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address, self.port = address, self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            try:
                conn.sendall(BANNER)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def _servers() -> tuple[RealServer, RealServer]:
    """Two real servers on one port, at two fresh 127.x addresses no other emulator uses."""
    rnd = random.Random()
    for _ in range(20):
        base = f"127.{rnd.randint(100, 250)}.{rnd.randint(0, 255)}."
        real = RealServer(base + "10", 0)
        try:
            return real, RealServer(base + "11", real.port)
        except OSError:
            real.close()
    raise RuntimeError("no free loopback address and port for the real servers")


def _estate(real: RealServer, shadowed: RealServer) -> dict:
    """The demo estate with the two VMs' public IPs moved to the real servers' addresses."""
    doc = load_estate("demo", now=FIXED_NOW)
    by_id = {r["id"].lower(): r for r in doc["resources"]}
    for name, server, stand_ins in ((REAL, real, False), (SHADOWED, shadowed, True)):
        vm = next(r for r in doc["resources"] if r["type"].lower() == "microsoft.compute/virtualmachines" and r["name"] == name)
        nic = by_id[vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].lower()]
        pip_id = nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"]
        by_id[pip_id.lower()]["properties"]["ipAddress"] = server.address
        key = next((k for k in doc["guest"] if k.lower() == vm["id"].lower()), vm["id"])
        facts = doc["guest"].setdefault(key, {})
        facts["ports"] = {"22": "ssh", str(server.port): "ssh"}
        facts.pop("previous_public_ip", None)
        if not stand_ins:
            facts["stand_ins"] = False
    return doc


@pytest.fixture(scope="module")
def rig():
    real, shadowed = _servers()
    emu = EmulatorThread(_estate(real, shadowed)).start()
    try:
        yield emu, real, shadowed
    finally:
        emu.stop()
        real.close()
        shadowed.close()


def _endpoints(emu) -> list[dict]:
    return emulator_control(emu, "GET", "/_emulator/guest")["endpoints"]


async def _probe(settings: ConnectionSettings, port: int):
    backend = AzureBackend(settings, retry_total=2)
    try:
        inventory = await backend.inventory()
        vms = connectivity.choose_vms(inventory, [REAL, SHADOWED])
        report = await connectivity.run(backend, inventory, vms, connectivity.Request(extra_ports=(port,), **QUICK))
    finally:
        await backend.close()
    return {(r.target.vm, r.target.port): r for r in report.results if r.target.kind == "public-ip"}


def test_an_estate_turns_the_stand_ins_off_for_one_vm(rig):
    emu, real, shadowed = rig
    endpoints = _endpoints(emu)
    assert not [e for e in endpoints if e["vm"] == REAL]
    fake = next(e for e in endpoints if e["vm"] == SHADOWED and e["port"] == shadowed.port)
    # The real server holds the port, so the stand-in moved to one the kernel picked.
    assert fake["address"] == shadowed.address and fake["listen_port"] != shadowed.port
    guests = emulator_control(emu, "GET", "/_emulator/guest")["vms"]
    assert any(facts.get("stand_ins") is False for facts in guests.values())


def test_stand_ins_must_be_true_or_false():
    doc = load_estate("demo", now=FIXED_NOW)
    vm_id = next(iter(doc["guest"]))
    doc["guest"][vm_id]["stand_ins"] = "no"
    with pytest.raises(EstateError, match=r"stand_ins is 'no'; use true .* or false"):
        validate_estate(doc, "estate file e.json")


async def test_the_demo_reaches_the_real_server_where_the_stand_ins_are_off(rig):
    emu, real, shadowed = rig
    real.accepted = shadowed.accepted = 0
    results = await _probe(demo_settings(emu), real.port)
    mine = results[(REAL, real.port)]
    assert mine.status == OPEN and mine.address == real.address and mine.connect_port == real.port
    assert real.accepted >= 1
    # Where the stand-ins are on, the demo follows the map to its own fake, not to the real server.
    fake = next(e for e in _endpoints(emu) if e["vm"] == SHADOWED and e["port"] == shadowed.port)
    assert results[(SHADOWED, shadowed.port)].connect_port == fake["listen_port"] != shadowed.port
    assert shadowed.accepted == 0


async def test_arm_endpoint_probes_the_real_address_and_port_and_never_reads_the_map(rig, monkeypatch):
    emu, real, shadowed = rig
    reads = []
    fetch = connectivity.fetch_emulator_guests

    async def counted(settings):
        reads.append(settings.endpoint)
        return await fetch(settings)

    monkeypatch.setattr(connectivity, "fetch_emulator_guests", counted)
    settings = ConnectionSettings(arm_endpoint=emu.endpoint, ca_file=emu.ca_file, auth="none").validate()
    shadowed.accepted = 0
    results = await _probe(settings, shadowed.port)
    got = results[(SHADOWED, shadowed.port)]
    # The emulator's fake sits elsewhere; without the map the probe reaches the real server.
    assert got.status == OPEN and got.connect_port == shadowed.port and shadowed.accepted >= 1
    # SSH on 22: nothing real listens at the VM's own address (the fake is on 10022): not open.
    assert results[(SHADOWED, 22)].status != OPEN
    # The recovery's final RDP/SSH check probes the same way.
    options = await steps.probe_options(settings)
    assert options.port_map is None and options.loopback_only
    assert reads == []


def test_demo_attaches_to_a_running_emulator(rig, capsys):
    from tui.cli import main

    emu, real, shadowed = rig
    code = main(
        ["probe", "--demo", "--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--vm", SHADOWED, "--format", "json", "--timeout", "1", "--attempts", "1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    ssh = next(r for r in json.loads(out)["results"] if r["kind"] == "public-ip" and r["port"] == 22)
    # The demo's stand-in for SSH listens on 10022 (or wherever the map says): it answers.
    assert ssh["status"] == "open" and ssh["answered"] == "ssh" and ssh["connect_port"] != 22


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--arm-endpoint", "https://management.azure.com"], "attaches to a running emulator, which listens on loopback"),
        (["--demo-estate", "scale:5", "--arm-endpoint", "https://127.0.0.1:9"], "--demo-estate starts an emulator of its own"),
    ],
)
def test_demo_with_an_endpoint_that_is_no_local_emulator_is_refused(extra, words, capsys):
    from tui.cli import main

    assert main(["probe", "--demo", *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
