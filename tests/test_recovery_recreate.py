"""The recreate scenario end to end through the real adapter: a VM deleted
and created again from its own disks loses nothing, even when every disk,
its NIC and its public IP start with deleteOption Delete; killed at any step
boundary or in the middle of any long-running operation it resumes to the
same end without a duplicate; a failure injected at any step leaves an
honest journal; after every run no customer disk is deleted and nothing is
in the store that the ledger does not list."""

from __future__ import annotations

import time

import pytest

from backend.recovery import scenarios
from backend.recovery.runner import Runner, RunRefused
from backend.recovery.scenarios.recreate import PROTECTED_HANDLERS, captured_extensions, create_body
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import arm_request, power, put_lock, vm_doc, writes
from tests.rescue_support import (  # the fixtures emu, before and rig: tests/rescue_fixtures.py
    assert_ledger_matches,
    assert_store_clean,
    fault,
    killed_at,
    operation_counts,
    states,
)
from tests.support import emulator_control

VM = "dev-sandbox-01"


def kept_ids(doc: dict) -> dict[str, str]:
    """Every disk, NIC and public IP of a VM document: what must survive."""
    props = doc["properties"]
    storage = props["storageProfile"]
    out = {"os": storage["osDisk"]["managedDisk"]["id"].lower()}
    for ref in storage.get("dataDisks") or ():
        out[f"lun{ref['lun']}"] = ref["managedDisk"]["id"].lower()
    for i, ref in enumerate(props["networkProfile"]["networkInterfaces"]):
        out[f"nic{i}"] = ref["id"].lower()
    return out


def extensions_and_user_data(emu, vm_name: str) -> tuple[dict[str, dict], str | None]:
    """What GET ?$expand=userData shows of a VM: its extensions (name -> properties) and its userData."""
    status, doc = arm_request(emu, "GET", f"{vm_doc(emu, vm_name)['doc']['id']}?$expand=userData")
    assert status == 200
    return {e["name"]: e["properties"] for e in doc.get("resources") or ()}, doc["properties"].get("userData")


def end_state_ok(rig, vm_name: str, original: dict, result, before, had: tuple[dict, str | None] | None = None) -> dict:
    """`had`: the extensions and userData from before the run, when the test read them."""
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    doc = vm_doc(rig.emu, vm_name)["doc"]
    assert kept_ids(doc) == kept_ids(original)  # same OS disk, same data disks at the same LUNs, same NICs
    props, was = doc["properties"], original["properties"]
    assert props["hardwareProfile"] == was["hardwareProfile"]
    assert doc.get("zones") == original.get("zones") and doc.get("tags") == original.get("tags") and doc["location"] == original["location"]
    assert props.get("diagnosticsProfile") == was.get("diagnosticsProfile")
    assert props.get("securityProfile") == was.get("securityProfile")
    assert props.get("availabilitySet") == was.get("availabilitySet")
    assert props["storageProfile"]["osDisk"]["createOption"] == "Attach" and "osProfile" not in props
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Detach"
    assert all(d["deleteOption"] == "Detach" for d in props["storageProfile"]["dataDisks"])
    assert power(rig.emu, vm_name) == "running"
    changes = assert_store_clean(rig.emu, rig.journal, before)
    assert changes["new"] == set() and changes["new_groups"] == set()
    # Only the VM's extensions went with the VM resource (they are not on its disks).
    assert all("/extensions/" in g for g in changes["gone"]), changes["gone"]
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)
    if had is not None:
        extensions, user_data = had
        now, carried = extensions_and_user_data(rig.emu, vm_name)
        assert carried == user_data
        reinstalled = {n for n, p in extensions.items() if f"{p['publisher']}.{p['type']}".lower() not in PROTECTED_HANDLERS}
        assert set(now) == reinstalled
        for name in reinstalled:
            for key in ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion", "enableAutomaticUpgrade", "settings"):
                assert now[name].get(key) == extensions[name].get(key), (name, key)
    return doc


async def test_the_plan_refuses_what_cannot_be_recreated_and_sends_no_writes(rig):
    before_writes = writes(rig.emu)
    plan, _ = await rig.plan(VM, "recreate")
    assert plan.keys == [
        "preflight",
        "capture",
        "detach-disks-nics",
        "detach-public-ips",
        "check-kept",
        "delete",
        "create",
        "running",
        "extension-AzureMonitorLinuxAgent",
        "extension-DependencyAgentLinux",
        "reach-ssh",
        "report",
    ]
    assert plan.destructive and not plan.blockers
    assert any("deleteOption is Delete on OS disk" in w and "public IP dev-sandbox-01-ip" in w for w in plan.warnings)
    assert any("installs AzureMonitorLinuxAgent (Microsoft.Azure.Monitor.AzureMonitorLinuxAgent 1.33), DependencyAgentLinux" in w for w in plan.warnings)
    assert any(
        "sandbox-bootstrap (Microsoft.Azure.Extensions.CustomScript 2.1) keeps its command line" in w and "install it yourself" in w for w in plan.warnings
    )
    assert any("userData (" in w and "a copy is kept with the captured model" in w for w in plan.warnings)
    for vm_name, reason in [
        ("dev-ephemeral-01", "ephemeral OS disk"),
        ("vmss-build-dev_3f9a1c2e", "member of scale set"),
        ("legacy-app-01", "unmanaged (VHD) disks"),
        ("dc-shared-01", "CanNotDelete lock"),
    ]:
        refused, facts = await rig.plan(vm_name, "recreate")
        assert refused.blockers and any(reason in b for b in refused.blockers), (vm_name, refused.blockers)
        with pytest.raises(RunRefused):
            await Runner(rig.backend, rig.journal, confirm_name=vm_name).start(refused, lambda f, p: scenarios.build_plan("recreate", f, p), facts)
    assert writes(rig.emu) == before_writes
    # The delete is destructive: nothing runs without the VM's name typed.
    plan, facts = await rig.plan(VM, "recreate")
    with pytest.raises(RunRefused, match="typing the VM's name"):
        await Runner(rig.backend, rig.journal).start(plan, lambda f, p: scenarios.build_plan("recreate", f, p), facts)
    assert writes(rig.emu) == before_writes


def test_the_create_request_attaches_the_disks_and_carries_the_settings():
    model = {
        "location": "westeurope",
        "zones": ["2"],
        "tags": {"env": "prod"},
        "identity": {
            "type": "SystemAssigned, UserAssigned",
            "principalId": "p",
            "tenantId": "t",
            "userAssignedIdentities": {"/subscriptions/s/x/id1": {"principalId": "q"}},
        },
        "properties": {
            "vmId": "old",
            "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "securityProfile": {"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True}},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            "storageProfile": {
                "imageReference": {"publisher": "Canonical"},
                "osDisk": {
                    "osType": "Linux",
                    "name": "os",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {"id": "/d/os", "storageAccountType": "Premium_LRS"},
                    "deleteOption": "Delete",
                },
                "dataDisks": [
                    {"lun": 3, "name": "data", "createOption": "Empty", "managedDisk": {"id": "/d/data"}, "deleteOption": "Delete", "diskSizeGB": 64}
                ],
            },
            "osProfile": {"computerName": "x", "adminUsername": "azureuser"},
            "networkProfile": {"networkInterfaces": [{"id": "/n/nic", "properties": {"primary": True, "deleteOption": "Delete"}}]},
        },
    }
    body = create_body(model)
    props = body["properties"]
    assert body["zones"] == ["2"] and body["tags"] == {"env": "prod"} and body["location"] == "westeurope"
    assert body["identity"] == {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/subscriptions/s/x/id1": {}}}
    assert "osProfile" not in props and "imageReference" not in props["storageProfile"] and "vmId" not in props
    assert props["storageProfile"]["osDisk"] == {
        "osType": "Linux",
        "name": "os",
        "createOption": "Attach",
        "managedDisk": {"id": "/d/os"},
        "deleteOption": "Detach",
        "caching": "ReadWrite",
    }
    assert props["storageProfile"]["dataDisks"] == [
        {"lun": 3, "name": "data", "createOption": "Attach", "managedDisk": {"id": "/d/data"}, "deleteOption": "Detach"}
    ]
    assert props["networkProfile"]["networkInterfaces"] == [{"id": "/n/nic", "properties": {"primary": True, "deleteOption": "Detach"}}]
    assert props["securityProfile"]["securityType"] == "TrustedLaunch" and props["diagnosticsProfile"]["bootDiagnostics"]["enabled"]


async def test_a_vm_whose_disks_nic_and_ip_say_delete_is_recreated_and_every_original_disk_still_exists(rig, before):
    original = vm_doc(rig.emu, VM)["doc"]
    had = extensions_and_user_data(rig.emu, VM)
    assert had[1] and {"AzureMonitorLinuxAgent", "DependencyAgentLinux", "sandbox-bootstrap"} <= set(had[0])
    plan, result = await rig.run(VM, "recreate")
    doc = end_state_ok(rig, VM, original, result, before, had)
    assert doc["properties"]["vmId"] != original["properties"]["vmId"]  # a new VM resource, on the same disks
    nic = next(
        n
        for n in emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Network/networkInterfaces")["resources"]
        if n["name"] == "dev-sandbox-01-nic"
    )
    pip_ref = nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]
    assert pip_ref["properties"]["deleteOption"] == "Detach"
    pips = {p["name"] for p in emulator_control(rig.emu, "GET", "/_emulator/resources?type=Microsoft.Network/publicIPAddresses")["resources"]}
    assert "dev-sandbox-01-ip" in pips
    assert "SSH answers" in result.record.steps[plan.keys.index("reach-ssh")].message
    # The model captured before the first change is in the journal, as ARM returned it.
    captured = rig.journal.facts(result.run_id)["model"]
    assert captured["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert rig.journal.step(result.run_id, 1).outputs["create_body"]["properties"]["storageProfile"]["osDisk"]["createOption"] == "Attach"
    counts = operation_counts(rig.emu)
    vm_id = plan.vm.id.lower()
    assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1 and counts[("update", vm_id)] == 1
    report = result.record.steps[-1].message
    assert "it was Delete on" in report
    assert "extensions installed again with their public settings: AzureMonitorLinuxAgent" in report
    assert "to do: install extension sandbox-bootstrap (Microsoft.Azure.Extensions.CustomScript 2.1) again with its protected settings" in report
    assert "userData carried over (" in report
    assert "extensions on dev-sandbox-01 now: AzureMonitorLinuxAgent, DependencyAgentLinux;" in report
    for key in ("extension-AzureMonitorLinuxAgent", "extension-DependencyAgentLinux"):
        assert counts[("create", f"{vm_id}/extensions/{key.split('-', 1)[1].lower()}")] == 1
    # userData is carried in the journal (the only copy while the VM does not exist), never shown.
    import base64
    import json

    assert captured["properties"]["userData"] == had[1]
    assert rig.journal.step(result.run_id, 1).outputs["create_body"]["properties"]["userData"] == had[1]
    script = base64.b64decode(had[1]).decode()
    shown = json.dumps(plan.to_json()) + json.dumps([ev.to_json() for ev in rig.events]) + result.summary
    assert had[1] not in shown and "sandbox-role" in script and "sandbox-role" not in shown


def test_extensions_are_captured_with_their_public_settings_in_install_order():
    vm = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1"

    def ext(name, publisher, handler, **props):
        return {
            "name": name,
            "id": f"{vm}/extensions/{name}",
            "type": "Microsoft.Compute/virtualMachines/extensions",
            "location": "westeurope",
            "properties": dict({"publisher": publisher, "type": handler, "typeHandlerVersion": "1.0", "provisioningState": "Succeeded"}, **props),
        }

    model = {
        "location": "westeurope",
        "resources": [
            ext("app", "Contoso.Tools", "AppAgent", settings={"port": 8080}, provisionAfterExtensions=["monitor"], autoUpgradeMinorVersion=True),
            ext("monitor", "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", enableAutomaticUpgrade=True, settings={}),
            ext("enablevmaccess", "Microsoft.OSTCExtensions", "VMAccessForLinux", settings={}),
            ext("oms", "Microsoft.EnterpriseCloud.Monitoring", "OmsAgentForLinux", settings={"workspaceId": "w"}, protectedSettings={"workspaceKey": "k"}),
        ],
    }
    captured = captured_extensions(model)
    assert [e.name for e in captured] == ["monitor", "app", "enablevmaccess", "oms"]  # app asks to come after monitor
    by_name = {e.name: e for e in captured}
    assert by_name["app"].body == {
        "location": "westeurope",
        "properties": {
            "publisher": "Contoso.Tools",
            "type": "AppAgent",
            "typeHandlerVersion": "1.0",
            "autoUpgradeMinorVersion": True,
            "settings": {"port": 8080},
        },
    }
    assert by_name["monitor"].protected is None and by_name["monitor"].body["properties"]["enableAutomaticUpgrade"] is True
    assert by_name["enablevmaccess"].protected == "a password or an SSH key" and by_name["oms"].protected == "the workspace key"
    assert all("protectedSettings" not in e.body["properties"] and "provisioningState" not in e.body["properties"] for e in captured)


async def test_a_stopped_windows_vm_is_recreated_and_answers_rdp(rig, before):
    original = vm_doc(rig.emu, "qa-win-01")["doc"]
    had = extensions_and_user_data(rig.emu, "qa-win-01")
    plan, result = await rig.run("qa-win-01", "recreate")
    assert "detach-public-ips" in plan.keys and any("created again running" in w for w in plan.warnings)
    end_state_ok(rig, "qa-win-01", original, result, before, had)
    assert extensions_and_user_data(rig.emu, "qa-win-01")[0]["AzureMonitorWindowsAgent"]["typeHandlerVersion"] == "1.30"
    assert "RDP answers" in result.record.steps[plan.keys.index("reach-rdp")].message
    assert [s.state for s in result.record.steps][2:4] == ["skipped", "skipped"]  # already Detach: nothing sent


@pytest.mark.parametrize("vm_name", ["web-prod-03", "sql-prod-01"])
async def test_a_vm_keeps_its_zone_or_availability_set(rig, before, vm_name):
    original = vm_doc(rig.emu, vm_name)["doc"]
    had = extensions_and_user_data(rig.emu, vm_name)
    plan, result = await rig.run(vm_name, "recreate")
    doc = end_state_ok(rig, vm_name, original, result, before, had)
    assert doc.get("zones") or doc["properties"].get("availabilitySet")


async def test_a_delete_option_changed_back_before_the_delete_stops_the_run(rig, before):
    plan, facts = await rig.plan(VM, "recreate")
    delete = plan.keys.index("delete")
    vm_id = plan.vm.id

    def sabotage(where: str, index: int) -> None:
        if (where, index) == ("before", delete):
            # Someone sets a data disk back to Delete between the check and the delete.
            doc = vm_doc(rig.emu, VM)["doc"]
            disks = [dict(d, deleteOption="Delete") for d in doc["properties"]["storageProfile"]["dataDisks"]]
            from tests.recovery_support import arm_request

            status, _ = arm_request(rig.emu, "PATCH", vm_id, {"properties": {"storageProfile": {"dataDisks": disks}}})
            assert status in (200, 202)
            time.sleep(0.1)  # its update ends (90 s in Azure, 30 ms here)

    result = await rig.runner(VM, sabotage).start(plan, lambda f, p: scenarios.build_plan("recreate", f, p), facts)
    assert result.status == "failed" and states(result)[delete] == "failed"
    assert "would delete data disk (LUN 0)" in result.summary and "nothing was deleted" in result.summary
    assert vm_doc(rig.emu, VM)  # still there
    assert operation_counts(rig.emu).get(("delete", vm_id.lower()), 0) == 0
    assert_store_clean(rig.emu, rig.journal, before)


RECREATE_FAULTS = [
    ("detach-disks-nics", {"match": "/virtualMachines/dev-sandbox-01", "method": "PATCH", "status": 409}),
    ("detach-public-ips", {"match": "/networkInterfaces/dev-sandbox-01-nic", "method": "PUT", "status": 409}),
    ("delete", {"match": "/virtualMachines/dev-sandbox-01", "method": "DELETE", "lro_result": "Failed"}),
    ("create", {"match": "/virtualMachines/dev-sandbox-01", "method": "PUT", "lro_result": "Failed"}),
    ("extension-DependencyAgentLinux", {"match": "/extensions/DependencyAgentLinux", "method": "PUT", "lro_result": "Failed"}),
]


@pytest.mark.parametrize("key, spec", RECREATE_FAULTS, ids=[k for k, _ in RECREATE_FAULTS])
async def test_a_failure_at_each_step_leaves_an_honest_journal_and_resumes(rig, before, key, spec):
    original = vm_doc(rig.emu, VM)["doc"]
    had = extensions_and_user_data(rig.emu, VM)
    plan, facts = await rig.plan(VM, "recreate")
    target = plan.keys.index(key)

    def arm_fault(where: str, index: int) -> None:
        if (where, index) == ("before", target):
            fault(rig.emu, dict(spec, count=1))

    result = await rig.runner(VM, arm_fault).start(plan, lambda f, p: scenarios.build_plan("recreate", f, p), facts)
    assert result.status == "failed", result.summary
    got = states(result)
    assert got[target] == "failed" and set(got[:target]) <= {"verified", "skipped"} and set(got[target + 1 :]) == {"pending"}
    assert result.summary.startswith(f"stopped at step {target + 1} ({plan.steps[target].title})")
    if key == "create":
        assert "created so far: vm dev-sandbox-01 (creating)" in result.summary
    if key.startswith("extension-"):
        assert "installing extension DependencyAgentLinux on VM dev-sandbox-01" in result.summary
        assert "recreated and runs without DependencyAgentLinux: resume to try again" in result.summary
        assert power(rig.emu, VM) == "running"
    changes = assert_store_clean(rig.emu, rig.journal, before)
    assert changes["deleted_customer_disks"] == set()
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)
    done = await rig.resume(result.run_id, VM)
    end_state_ok(rig, VM, original, done, before, had)


KILL_TESTS = 12  # the recorded boundaries are dealt out over this many tests


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rigs, before, hand):
    # Every boundary a run of the plan passes (recorded from the plan itself: a new step is covered).
    for boundary in deal(recorded(VM, "recreate").points, hand, KILL_TESTS):
        async with killed_at(rigs, boundary) as rig:
            original = vm_doc(rig.emu, VM)["doc"]
            had = extensions_and_user_data(rig.emu, VM)
            plan, result, killed = await rig.run_killed_at(VM, "recreate", {}, boundary)
            assert killed
            end_state_ok(rig, VM, original, result, before, had)
            counts = operation_counts(rig.emu)
            vm_id = plan.vm.id.lower()
            assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1 and counts[("update", vm_id)] == 1
            assert all(counts[("create", f"{vm_id}/extensions/{k.split('-', 1)[1].lower()}")] == 1 for k in plan.keys if k.startswith("extension-"))


async def test_a_lock_that_forbids_deleting_blocks_the_plan(rig):
    plan, _ = await rig.plan(VM, "recreate")
    put_lock(rig.emu, plan.vm.id.rsplit("/providers/", 1)[0], "keep-rg", level="CanNotDelete")
    plan, _ = await rig.plan(VM, "recreate")
    assert any("CanNotDelete lock 'keep-rg'" in b and "refuses to delete the VM" in b for b in plan.blockers)
    assert not any("nothing in this plan deletes" in w for w in plan.warnings)
