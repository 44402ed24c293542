"""The emulator's side of the recoveries: sizes a VM can take, management locks
and their enforcement, run-command and VMAccess effects on the demo guests,
and ARM's rule that protected settings never come back."""

from __future__ import annotations

import pytest

from backend.adapter import BackendError
from tests.recovery_support import arm_request, guest_ports, power, put_lock, resources, vm_doc

API = "api-version=2026-04-01"


@pytest.fixture
def backend(reset_backend):  # the adapter on this module's own, reset emulator (tests/rescue_fixtures.py)
    return reset_backend


def vm_id(emu, name: str) -> str:
    return vm_doc(emu, name)["doc"]["id"]


async def test_a_running_vm_is_offered_its_family_and_a_deallocated_one_the_region(emu, backend):
    running = {s["name"] for s in await backend.list_available_sizes(vm_id(emu, "web-prod-01"))}
    assert {"Standard_D2s_v5", "Standard_D4s_v5", "Standard_D2ds_v5"} <= running
    assert "Standard_B2ms" not in running and "Standard_E4s_v5" not in running
    deallocated = {s["name"] for s in await backend.list_available_sizes(vm_id(emu, "legacy-app-02"))}
    assert {"Standard_B2ms", "Standard_E4s_v5", "Standard_A1_v2"} <= deallocated
    size = next(s for s in await backend.list_available_sizes(vm_id(emu, "web-prod-01")) if s["name"] == "Standard_D4s_v5")
    assert size == {
        "name": "Standard_D4s_v5",
        "numberOfCores": 4,
        "osDiskSizeInMB": 1047552,
        "resourceDiskSizeInMB": 0,
        "memoryInMB": 16384,
        "maxDataDiskCount": 8,
    }


async def test_locks_are_listed_with_those_inherited_from_the_group(emu, backend):
    vm = vm_id(emu, "dc-shared-01")
    own = await backend.list_locks(vm)
    assert [(lock["name"], lock["properties"]["level"]) for lock in own] == [("do-not-delete-dc", "CanNotDelete")]
    group = vm.rsplit("/providers/", 1)[0]
    put_lock(emu, group, "freeze", "ReadOnly")
    names = sorted(lock["name"] for lock in await backend.list_locks(vm))
    assert names == ["do-not-delete-dc", "freeze"]
    other = vm_id(emu, "web-prod-01")
    assert await backend.list_locks(other) == []
    status, body = arm_request(emu, "GET", f"{group}/providers/Microsoft.Authorization/locks/freeze")
    assert status == 200 and body["properties"]["level"] == "ReadOnly"
    status, _ = arm_request(emu, "PUT", f"{group}/providers/Microsoft.Authorization/locks/bad", {"properties": {"level": "Sometimes"}})
    assert status == 400


async def test_a_read_only_lock_refuses_every_write_under_it_until_removed(emu, backend):
    vm = vm_id(emu, "web-prod-01")
    group = vm.rsplit("/providers/", 1)[0]
    put_lock(emu, group, "freeze", "ReadOnly")
    with pytest.raises(BackendError) as info:
        await backend.vm_action(vm, "restart")
    assert info.value.code == "ScopeLocked" and "rg-web-prod" in str(info.value) and "locked" in str(info.value)
    with pytest.raises(BackendError):
        await backend.update_vm(vm, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}})
    # Reads still work; deleting the lock lifts it.
    assert (await backend.get_vm_document(vm))["name"] == "web-prod-01"
    status, _ = arm_request(emu, "DELETE", f"{group}/providers/Microsoft.Authorization/locks/freeze")
    assert status == 200
    await backend.vm_action(vm, "restart")
    assert power(emu, "web-prod-01") == "running"


async def test_run_command_fixes_change_the_guest_and_say_so(emu, backend):
    files = vm_id(emu, "files-shared-01")
    assert guest_ports(emu, files)["3389"] == "silent"
    result = await backend.run_command(files, "RunPowerShellScript", script=["Enable-NetFirewallRule -DisplayGroup 'Remote Desktop'"])
    stdout = next(s["message"] for s in result["value"] if "StdOut" in s["code"])
    assert "firewall rule group Remote Desktop enabled" in stdout
    assert guest_ports(emu, files)["3389"] == "rdp"
    ftp = vm_id(emu, "legacy-ftp-01")
    await backend.run_command(ftp, "RunShellScript", script=["systemctl restart sshd"])
    assert guest_ports(emu, ftp)["22"] == "ssh"
    # An unrelated command changes nothing.
    web = vm_id(emu, "web-prod-01")
    await backend.run_command(web, "RunShellScript", script=["uptime"])
    assert guest_ports(emu, web)["22"] == "ssh"


async def test_run_command_on_a_guest_that_did_not_boot_fails_like_azure(emu, backend):
    pg = vm_id(emu, "pg-dev-01")
    with pytest.raises(BackendError) as info:
        await backend.run_command(pg, "RunShellScript", script=["ufw allow 22/tcp"])
    assert info.value.code == "VMAgentStatusCommunicationError"
    assert guest_ports(emu, pg)["22"] == "silent"


async def test_vmaccess_resets_access_and_protected_settings_never_come_back(emu, backend):
    secret = "Sentinel-Pa55-EMU-5150"
    files = vm_id(emu, "files-shared-01")
    body = {
        "location": "westeurope",
        "properties": {
            "publisher": "Microsoft.Compute",
            "type": "VMAccessAgent",
            "typeHandlerVersion": "2.0",
            "settings": {"UserName": "contosoadmin"},
            "protectedSettings": {"Password": secret},
        },
    }
    doc = await backend.put_extension(files, "enablevmaccess", body)
    assert doc["properties"]["provisioningState"] == "Succeeded"
    assert guest_ports(emu, files)["3389"] == "rdp"
    # Neither the PUT's answer, nor a GET, nor the VM's resources, nor the emulator's store keep it.
    status, raw = arm_request(emu, "GET", f"{files}/extensions/enablevmaccess?{API}")
    assert status == 200 and secret not in repr(raw) and "protectedSettings" not in raw["properties"]
    status, vm = arm_request(emu, "GET", f"{files}?{API}")
    assert secret not in repr(vm)
    assert secret not in repr(resources(emu, "Microsoft.Compute/virtualMachines/extensions"))
    # Linux: reset_ssh brings a refused sshd back.
    ftp = vm_id(emu, "legacy-ftp-01")
    await backend.put_extension(
        ftp,
        "enablevmaccess",
        {
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.OSTCExtensions",
                "type": "VMAccessForLinux",
                "typeHandlerVersion": "1.4",
                "settings": {},
                "protectedSettings": {"reset_ssh": True},
            },
        },
    )
    assert guest_ports(emu, ftp)["22"] == "ssh"
