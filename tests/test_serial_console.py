"""The serial console end to end: the real adapter's preflight, connect and
websocket against the emulator's gateway, bytes both ways, admin commands,
refusals, a dropped socket and the scripted fstab and SAC stories."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.rest import HttpRequest

from backend.errors import BackendError, SerialConsoleClosed, SerialConsoleRefused
from tests.support import arm_call, emulator_control

pytestmark = pytest.mark.xdist_group("serialconsole")


@pytest.fixture
def backend(reset_backend):  # the adapter on this module's own, reset emulator (tests/rescue_fixtures.py)
    return reset_backend


def vm_id(emu, name: str) -> str:
    dump = emulator_control(emu, "GET", "/_emulator/resources?type=Microsoft.Compute/virtualMachines")
    docs = dump["resources"]
    for doc in docs:
        if isinstance(doc, dict) and doc.get("name") == name:
            return doc["id"]
    raise AssertionError(f"{name} not in {str(dump)[:300]}")


def guest_facts(emu, vid: str) -> dict:
    vms = emulator_control(emu, "GET", "/_emulator/guest")["vms"]
    return next(v for k, v in vms.items() if k.lower() == vid.lower())


async def read_until(stream, needle: str, timeout: float = 5.0) -> str:
    seen = b""

    async def loop() -> str:
        nonlocal seen
        while needle.encode() not in seen:
            seen += await stream.receive()
        return seen.decode()

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"{needle!r} not seen in {seen!r}") from None


async def type_line(stream, line: str, expect: str) -> str:
    await stream.send(line.encode() + b"\r")
    return await read_until(stream, expect)


async def test_login_prompt_and_bytes_both_ways(emu, backend):
    stream = await backend.serial_connect(vm_id(emu, "dev-ephemeral-01"))
    try:
        await read_until(stream, "login: ")
        await stream.send(b"azureuser")
        assert "azureuser" in await read_until(stream, "azureuser")  # the guest echoes
        await stream.send(b"\x7f")  # Backspace erases on the guest's screen
        assert "\b \b" in await read_until(stream, "\b \b")
        await stream.send(b"r\r")
        await read_until(stream, "Password: ")
        await stream.send(b"secret\r")
        text = await read_until(stream, "$ ")
        assert "secret" not in text  # a password is not echoed
        assert "remount" in await type_line(stream, "help", "$ ")  # the shell answers a command
    finally:
        await stream.close()
    assert stream.closed


async def test_fstab_story_from_the_serial_console(emu, backend):
    vid = vm_id(emu, "api-dev-01")
    assert guest_facts(emu, vid)["boot"] == "emergency-fstab"
    stream = await backend.serial_connect(vid)
    try:
        text = await read_until(stream, "Control-D to continue): ")
        assert "emergency mode" in text
        await stream.send(b"rootpw\r")
        await read_until(stream, "# ")
        assert "/datadrive ext4 defaults " in await type_line(stream, "cat /etc/fstab", "# ")
        assert "Read-only file system" in await type_line(stream, "sed -i 's|/datadrive ext4 defaults|/datadrive ext4 defaults,nofail|' /etc/fstab", "# ")
        await type_line(stream, "mount -o remount,rw /", "# ")
        await type_line(stream, "sed -i 's|/datadrive ext4 defaults|/datadrive ext4 defaults,nofail|' /etc/fstab", "# ")
        assert "defaults,nofail" in await type_line(stream, "cat /etc/fstab", "# ")
        assert "login: " in await type_line(stream, "systemctl reboot", "login: ")
    finally:
        await stream.close()
    facts = guest_facts(emu, vid)
    assert facts["boot"] == "ok" and facts["ports"]["22"] == "ssh"


async def test_a_reboot_with_fstab_unchanged_lands_in_emergency_mode_again(emu, backend):
    stream = await backend.serial_connect(vm_id(emu, "api-dev-01"))
    try:
        await read_until(stream, "continue): ")
        await stream.send(b"x\r")
        await read_until(stream, "# ")
        assert "emergency mode" in await type_line(stream, "reboot", "continue): ")
    finally:
        await stream.close()


async def test_sac_fixes_the_guest_firewall(emu, backend):
    vid = vm_id(emu, "files-shared-01")
    stream = await backend.serial_connect(vid)
    try:
        await read_until(stream, "SAC>")
        assert "Cmd0001" in await type_line(stream, "cmd", "SAC>")
        await type_line(stream, "ch -si 1", "Username: ")
        await type_line(stream, "azureuser", "Domain  : ")
        await type_line(stream, "", "Password: ")
        await type_line(stream, "pw", "system32>")
        assert "Ok." in await type_line(stream, 'netsh advfirewall firewall add rule name="RDP" dir=in action=allow protocol=TCP localport=3389', "system32>")
    finally:
        await stream.close()
    facts = guest_facts(emu, vid)
    assert facts["ports"]["3389"] == "rdp"


async def test_admin_commands_reach_the_gateway(emu, backend):
    stream = await backend.serial_connect(vm_id(emu, "dev-ephemeral-01"))
    try:
        await read_until(stream, "login: ")
        await stream.admin("sysrq", "b")
        await stream.admin("nmi")
        await stream.admin("reset")
        assert "login: " in await read_until(stream, "Reached target")
    finally:
        await stream.close()
    log = emulator_control(emu, "GET", "/_emulator/serialconsole/admin")
    assert [entry["command"] for entry in log][-3:] == ["sysrq", "nmi", "reset"]
    assert log[-3]["parameters"] == {"SysRqCommand": "b"}


async def test_nmi_and_sysrq_act_on_the_guest(emu, backend):
    """Linux logs an unknown NMI and carries on (the session is kept); SysRq prints the kernel's
    answer and b reboots it; Windows stops on NMI_HARDWARE_FAILURE and restarts (the CMD channel is gone)."""
    linux = await backend.serial_connect(vm_id(emu, "dev-ephemeral-01"))
    try:
        await read_until(linux, "login: ")
        await linux.admin("nmi")
        seen = await read_until(linux, "trying to continue")
        assert "NMI received for unknown reason" in seen and "Reached target" not in seen
        await linux.admin("sysrq", "h")
        assert "reboot(b)" in await read_until(linux, "sysrq: HELP")
        await linux.admin("sysrq", "s")
        await read_until(linux, "Emergency Sync complete")
        await linux.admin("sysrq", "b")
        assert "login: " in (await read_until(linux, "Reached target Multi-User System")).split("sysrq: Resetting", 1)[1]
    finally:
        await linux.close()
    windows = await backend.serial_connect(vm_id(emu, "files-shared-01"))
    try:
        await read_until(windows, "SAC>")
        await type_line(windows, "cmd", "SAC>")
        await windows.admin("nmi")
        after = await read_until(windows, "SAC started and initialized")
        assert "Stop code: NMI_HARDWARE_FAILURE" in after.split("SAC started", 1)[0]
        with pytest.raises(BackendError):
            await windows.admin("sysrq", "b")  # Linux only: refused before anything is sent
    finally:
        await windows.close()
    log = emulator_control(emu, "GET", "/_emulator/serialconsole/admin")
    assert [(e["command"], e["parameters"]) for e in log[-5:]] == [
        ("nmi", {}),
        ("sysrq", {"SysRqCommand": "h"}),
        ("sysrq", {"SysRqCommand": "s"}),
        ("sysrq", {"SysRqCommand": "b"}),
        ("nmi", {}),
    ]


async def test_a_dropped_socket_is_reported_and_a_reconnect_finds_the_same_console(emu, backend):
    vid = vm_id(emu, "dev-ephemeral-01")
    stream = await backend.serial_connect(vid)
    await read_until(stream, "login: ")
    await stream.send(b"ops\r")
    await read_until(stream, "Password: ")
    emulator_control(emu, "POST", "/_emulator/serialconsole/drop")
    with pytest.raises(SerialConsoleClosed):
        await asyncio.wait_for(stream.receive(), 5)
    again = await backend.serial_connect(vid)
    try:
        assert "Password: " in await read_until(again, "Password: ")  # the guest kept its state
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("dev-spot-01", "not-running", "deallocated"),
        ("win11-tl-dev-01", "no-sac", "Special Administration Console"),
    ],
)
async def test_refusals_name_the_one_failing_condition(emu, backend, name, reason, words):
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_connect(vm_id(emu, name))
    assert err.value.reason == reason and words in str(err.value)
    assert str(err.value).count(". ") == 0  # one sentence


async def test_disabled_subscription_and_forbidden(emu, backend):
    vid = vm_id(emu, "dev-ephemeral-01")
    sub = vid.split("/")[2]
    emulator_control(emu, "POST", "/_emulator/faults", {"match": "/serialPorts/0/connect", "method": "POST", "status": 403, "count": 1})
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_connect(vid)
    assert err.value.reason == "forbidden" and "403" in str(err.value)
    disable = HttpRequest(
        "POST", f"/subscriptions/{sub}/providers/Microsoft.SerialConsole/consoleServices/default/disableConsole", params={"api-version": "2018-05-01"}
    )
    await backend.raw_client().send_request(disable)
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_preflight(vid)
    assert err.value.reason == "disabled"


# --- a custom boot-diagnostics storage account behind a firewall ---------------------------

LEGACY_ACCOUNT = "contosolegacydiag"


def account_path(emu, vid: str) -> str:
    rg = vid.split("/")[4]
    return f"/subscriptions/{vid.split('/')[2]}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{LEGACY_ACCOUNT}?api-version=2023-01-01"


async def test_a_storage_firewall_that_keeps_the_serial_console_out_is_the_refusal(emu, backend):
    """legacy-app-01's boot diagnostics use a customer account whose firewall lets only the office in."""
    vid = vm_id(emu, "legacy-app-01")
    status, doc = arm_call(emu, "GET", account_path(emu, vid))
    assert status == 200 and doc["properties"]["networkAcls"]["defaultAction"] == "Deny"
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_connect(vid)
    message = str(err.value)
    assert err.value.reason == "storage-firewall"
    assert LEGACY_ACCOUNT in message and "Europe" in message and "52.146.139.220" in message and "managed storage" in message
    assert message.count(". ") == 0 and "\n" not in message  # one sentence


async def test_allowing_the_serial_consoles_addresses_lets_it_through(emu, backend):
    from backend.serialconsole import geography_of

    vid = vm_id(emu, "legacy-app-01")
    status, doc = arm_call(emu, "GET", account_path(emu, vid))
    europe = geography_of("westeurope")
    assert europe is not None
    # Half of them is not enough: the gateway may come from any address of the geography.
    doc["properties"]["networkAcls"]["ipRules"] += [{"value": a, "action": "Allow"} for a in europe.addresses[:4]]
    assert arm_call(emu, "PUT", account_path(emu, vid), doc)[0] in (200, 201)
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_preflight(vid)
    assert err.value.reason == "storage-firewall" and europe.addresses[4] in str(err.value) and "and 2 more" in str(err.value)
    doc["properties"]["networkAcls"]["ipRules"] += [{"value": a, "action": "Allow"} for a in europe.addresses[4:]]
    assert arm_call(emu, "PUT", account_path(emu, vid), doc)[0] in (200, 201)
    stream = await backend.serial_connect(vid)
    try:
        assert "SAC>" in await read_until(stream, "SAC>")
    finally:
        await stream.close()


async def test_public_network_access_disabled_and_an_unreadable_account(emu, backend):
    vid = vm_id(emu, "legacy-app-01")
    status, doc = arm_call(emu, "GET", account_path(emu, vid))
    doc["properties"]["publicNetworkAccess"] = "Disabled"
    arm_call(emu, "PUT", account_path(emu, vid), doc)
    with pytest.raises(SerialConsoleRefused) as err:
        await backend.serial_preflight(vid)
    assert err.value.reason == "storage-firewall" and "public network access disabled" in str(err.value)
    # An account aztriage may not read is not held against the VM (the gateway may still pass).
    emulator_control(emu, "POST", "/_emulator/faults", {"match": f"/storageAccounts/{LEGACY_ACCOUNT}", "method": "GET", "status": 403, "count": 5})
    target = await backend.serial_preflight(vid)
    assert target["vm_name"] == "legacy-app-01" and target["os_type"] == "Windows"


def test_the_storage_firewall_rule_on_its_own():
    from backend.models import StorageAccount
    from backend.serialconsole import geography_of, missing_addresses, storage_firewall_refusal

    open_account = StorageAccount(id="/x/sa", name="sa", location="westeurope")
    assert storage_firewall_refusal(open_account, "westeurope") is None
    europe = geography_of("West Europe")
    assert europe is not None and europe.name == "Europe" and geography_of("North Europe") is europe
    ranges = StorageAccount(
        id="/x/sa", name="sa", location="westeurope", default_action="Deny", ip_rules=("52.146.0.0/16", "not an address", *europe.addresses[1:2])
    )
    # A range covers what it contains; what is not an address lets nothing in.
    assert set(missing_addresses(ranges, "westeurope")) == set(europe.addresses) - {"52.146.139.220", "52.146.137.65", "52.146.139.221", europe.addresses[1]}
    everything = StorageAccount(id="/x/sa", name="sa", location="westeurope", default_action="Deny", ip_rules=europe.addresses)
    assert storage_firewall_refusal(everything, "northeurope") is None
    # The same rules say nothing for another geography, and a one-region geography cannot pass at all.
    assert "United States" in (storage_firewall_refusal(everything, "eastus") or "")
    assert "italynorth (a geography with one region)" in (storage_firewall_refusal(everything, "italynorth") or "")
