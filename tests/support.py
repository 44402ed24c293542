"""Plain helpers the tests share: the fixed clock, starting an emulator, its
control routes, and connection settings for it. Fixtures live in conftest.py
and the plugin modules it names, never here; this module does nothing when
imported."""

from __future__ import annotations

from datetime import UTC, datetime

FIXED_NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def start_emulator(spec: str = "demo", **kwargs):
    from backend.emulator.estates import load_estate
    from backend.emulator.server import EmulatorThread

    estate = load_estate(spec, now=kwargs.pop("now", FIXED_NOW), subscriptions=kwargs.pop("subscriptions", None), seed=kwargs.pop("seed", 0))
    return EmulatorThread(estate, **kwargs).start()


def emulator_control(emu, method: str, path: str, body=None):
    """Call an /_emulator/ control route (plain urllib, trusting the emulator's CA only)."""
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=emu.ca_file)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(emu.endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def record_run(journal, vm_id: str, vm_name: str, scenario: str, steps: list, *, target: str | None = None, facts: dict | None = None, **more) -> str:
    """Record a run of SCENARIO on a VM in the recovery journal, as the runner would
    before its first step (no parameters, no secrets; target: the VM's name unless given)."""
    return journal.create_run(
        vm_id=vm_id, vm_name=vm_name, scenario=scenario, params={}, needs_secrets=[], target=target or vm_name, facts=facts or {}, steps=steps, **more
    )


def succeeded(proc) -> str:
    """The stdout of a finished command, which must have exited 0 (its stderr says why not)."""
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def service_event(tracking_id: str, title: str, *, sub: str, level: str | None = "Warning", status: str = "Active", etype: str = "ServiceIssue", **fields):
    """A Service Health event of subscription SUB as the inventory holds it (an active service issue unless told otherwise)."""
    from backend.models import ServiceEvent

    return ServiceEvent(id=tracking_id, subscription_id=sub, type=etype, status=status, level=level, title=title, **fields)


def assert_secret_nowhere(secret: str, home, outputs: list[str]) -> None:
    """Neither the secret nor its base64, UTF-16 or JSON forms is in any file aztriage wrote
    under HOME (which holds the journal, the log and a report), nor in any of the outputs."""
    import base64
    import json

    raw = secret.encode()
    variants = [raw, base64.b64encode(raw), secret.encode("utf-16-le"), json.dumps(secret).encode()]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert {"journal.sqlite3", "aztriage.log", "report.md"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for variant in variants:
            assert variant not in data, f"{secret[:12]}… found in {path}"
    for text in outputs:
        assert secret not in text


def inbound_rule(priority: int, port: str, access: str = "Deny", **properties) -> dict:
    """An NSG security rule as a PUT sends it: inbound TCP to PORT from any address and source port
    (``properties`` change any of that)."""
    return {
        "properties": {
            "priority": priority,
            "direction": "Inbound",
            "access": access,
            "protocol": "Tcp",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": port,
        }
        | properties
    }


def arm_call(emu, method: str, path: str, body=None) -> tuple[int, dict]:
    """(status, JSON body) of an ARM call to the emulator, error bodies included."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=emu.ca_file)
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(
        emu.endpoint + path, data=data if method != "GET" else None, method=method, headers={"Content-Type": "application/json", "Authorization": "Bearer test"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, (json.loads(raw) if raw else {})


def demo_settings(emu, **overrides):
    from backend.demo import settings_for
    from backend.settings import ConnectionSettings

    return settings_for(emu, ConnectionSettings(**overrides))


def assert_one_clear_line(proc, *needles: str) -> str:
    """A refusal as an operator must see it: a non-zero exit and one line on stderr that
    says each of `needles`, never a traceback. Returns the line."""
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# A VM built in memory (no emulator) for the pure-function tests: one NIC, a public IP or FQDN when given.
SUB = "/subscriptions/s/resourceGroups/rg/providers"
VM_IP = "10.1.0.4"


def make_vm(name="web1", os_type="Linux", pip=None, fqdn=None, nat_ids=(), nsg_id=None, subnet_nsg_id=None):
    from backend.models import Disk, NetworkInterface, PublicIp, Vm

    nic_id = f"{SUB}/Microsoft.Network/networkInterfaces/{name}-nic"
    public = (PublicIp(id=f"{SUB}/Microsoft.Network/publicIPAddresses/{name}-pip", name=f"{name}-pip", ip_address=pip, fqdn=fqdn),) if pip or fqdn else ()
    nic = NetworkInterface(
        id=nic_id,
        name=f"{name}-nic",
        delete_option="Detach",
        nsg_id=nsg_id,
        subnet_nsg_id=subnet_nsg_id,
        private_ips=(VM_IP,),
        public_ips=public,
        ip_configuration_ids=(f"{nic_id}/ipConfigurations/ipconfig1",),
        load_balancer_inbound_nat_rule_ids=tuple(nat_ids),
    )
    return Vm(
        id=f"{SUB}/Microsoft.Compute/virtualMachines/{name}",
        name=name,
        subscription_id="s",
        resource_group="rg",
        location="westeurope",
        size="Standard_B2s",
        os_type=os_type,
        power_state="running",
        provisioning_state="Succeeded",
        os_disk=Disk(name=f"{name}-os", id=None, sku="Premium_LRS", managed=True, delete_option="Detach"),
        nics=(nic,),
    )
