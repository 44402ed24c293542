"""The local ARM emulator: routes, paging, errors, faults, LROs, delete options, reset, and the real SDK."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from backend.emulator.server import Emulator, EmulatorThread
from tests.support import inbound_rule

SUB = "00000000-0000-0000-0000-00000000000a"
SUB2 = "00000000-0000-0000-0000-00000000000b"
API = "api-version=2026-04-01"
LOC = "westeurope"
REPO = Path(__file__).resolve().parents[1]


def rid(sub: str, rg: str, t: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{t}/{name}"


def vm_id(name: str, sub: str = SUB, rg: str = "rg-app") -> str:
    return rid(sub, rg, "Microsoft.Compute/virtualMachines", name)


def disk_id(name: str, sub: str = SUB, rg: str = "rg-app") -> str:
    return rid(sub, rg, "Microsoft.Compute/disks", name)


def small_estate(n_vms: int = 3) -> dict:
    """Two subscriptions, n VMs each: OS disk deleteOption=Delete, data disk Detach, NIC Delete, PIP Detach."""
    res: list[dict] = []
    for sub in (SUB, SUB2):
        for i in range(n_vms):
            rg = "rg-app"
            vm = f"vm{i}"
            v_id = vm_id(vm, sub)
            os_id, data_id = disk_id(f"{vm}-os", sub), disk_id(f"{vm}-data", sub)
            nic_id = rid(sub, rg, "Microsoft.Network/networkInterfaces", f"{vm}-nic")
            pip_id = rid(sub, rg, "Microsoft.Network/publicIPAddresses", f"{vm}-pip")
            doc = {
                "id": v_id,
                "name": vm,
                "type": "Microsoft.Compute/virtualMachines",
                "location": LOC,
                "tags": {"app": "web"},
                "properties": {
                    "vmId": f"vmid-{i}",
                    "provisioningState": "Succeeded",
                    "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                    "storageProfile": {
                        "osDisk": {
                            "osType": "Linux",
                            "name": f"{vm}-os",
                            "createOption": "FromImage",
                            "deleteOption": "Delete",
                            "managedDisk": {"id": os_id, "storageAccountType": "Premium_LRS"},
                            "diskSizeGB": 30,
                        },
                        "dataDisks": [
                            {
                                "lun": 0,
                                "name": f"{vm}-data",
                                "createOption": "Attach",
                                "deleteOption": "Detach",
                                "managedDisk": {"id": data_id, "storageAccountType": "Premium_LRS"},
                                "diskSizeGB": 64,
                            }
                        ],
                    },
                    "osProfile": {"computerName": vm, "adminUsername": "azureuser", "linuxConfiguration": {}},
                    "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True, "deleteOption": "Delete"}}]},
                },
            }
            if i == 2:  # a VM with planned maintenance pending, given by the estate's instance view
                doc["properties"]["instanceView"] = {
                    "computerName": vm,
                    "maintenanceRedeployStatus": {
                        "isCustomerInitiatedMaintenanceAllowed": True,
                        # Open now, whatever day the suite runs (it once ended on a fixed date).
                        "preMaintenanceWindowStartTime": f"{datetime.now(UTC) - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
                        "preMaintenanceWindowEndTime": f"{datetime.now(UTC) + timedelta(days=8):%Y-%m-%dT%H:%M:%SZ}",
                    },
                    "statuses": [
                        {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                        {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
                    ],
                }
            res.append(doc)
            for d, size, os_type in ((os_id, 30, "Linux"), (data_id, 64, None)):
                props = {
                    "diskSizeGB": size,
                    "diskState": "Attached",
                    "provisioningState": "Succeeded",
                    "uniqueId": "u-" + d.rsplit("/", 1)[1],
                    "creationData": {"createOption": "Empty"},
                    "hyperVGeneration": "V2",
                }
                if os_type:
                    props["osType"] = os_type
                res.append(
                    {
                        "id": d,
                        "name": d.rsplit("/", 1)[1],
                        "type": "Microsoft.Compute/disks",
                        "location": LOC,
                        "managedBy": v_id,
                        "sku": {"name": "Premium_LRS", "tier": "Premium"},
                        "properties": props,
                    }
                )
            res.append(
                {
                    "id": nic_id,
                    "name": f"{vm}-nic",
                    "type": "Microsoft.Network/networkInterfaces",
                    "location": LOC,
                    "properties": {
                        "provisioningState": "Succeeded",
                        "virtualMachine": {"id": v_id},
                        "ipConfigurations": [
                            {
                                "name": "ipconfig1",
                                "id": nic_id + "/ipConfigurations/ipconfig1",
                                "properties": {
                                    "privateIPAddress": f"10.0.0.{4 + i}",
                                    "publicIPAddress": {"id": pip_id, "properties": {"deleteOption": "Detach"}},
                                },
                            }
                        ],
                    },
                }
            )
            res.append(
                {
                    "id": pip_id,
                    "name": f"{vm}-pip",
                    "type": "Microsoft.Network/publicIPAddresses",
                    "location": LOC,
                    "sku": {"name": "Standard"},
                    "properties": {
                        "ipAddress": f"20.1.1.{i + 1}",
                        "publicIPAllocationMethod": "Static",
                        "ipConfiguration": {"id": nic_id + "/ipConfigurations/ipconfig1"},
                    },
                }
            )
        res.append(
            {
                "id": rid(sub, "rg-net", "Microsoft.Network/networkSecurityGroups", "nsg1"),
                "name": "nsg1",
                "type": "Microsoft.Network/networkSecurityGroups",
                "location": LOC,
                "properties": {"securityRules": [{"name": "allow-ssh", **inbound_rule(100, "22", "Allow")}]},
            }
        )
    platform_down = {
        "id": vm_id("vm1") + "/providers/Microsoft.ResourceHealth/availabilityStatuses/current",
        "name": "current",
        "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
        "location": LOC,
        "properties": {
            "availabilityState": "Unavailable",
            "title": "Unavailable",
            "summary": "We're sorry, your virtual machine isn't available because of a host failure.",
            "reasonType": "Unplanned",
            "occuredTime": "2026-11-01T00:00:00Z",
            "reportedTime": "2026-11-01T00:05:00Z",
            "recommendedActions": [{"action": "Redeploy", "actionUrl": "<#Redeploy>", "actionUrlText": "redeploy"}],
        },
    }
    return {
        "subscriptions": [
            {"subscriptionId": SUB, "displayName": "Prod", "state": "Enabled"},
            {"subscriptionId": SUB2, "displayName": "Dev", "state": "Enabled"},
        ],
        "resources": res,
        "availabilityStatuses": [platform_down],
        "events": [
            {
                "id": f"/subscriptions/{SUB}/providers/Microsoft.ResourceHealth/events/ABC-123",
                "name": "ABC-123",
                "type": "/providers/Microsoft.ResourceHealth/events",
                "properties": {
                    "eventType": "ServiceIssue",
                    "status": "Active",
                    "title": "Virtual Machines in West Europe",
                    "lastUpdateTime": "2026-11-01T00:00:00Z",
                },
            }
        ],
        "guest": {vm_id("vm0"): {"runCommand": {"RunShellScript": {"stdout": "hello from vm0", "stderr": ""}}}},
    }


@pytest.fixture(scope="module")
def estate_doc() -> dict:
    return small_estate()


@pytest.fixture(scope="module")
async def emu(estate_doc):
    e = Emulator(estate_doc, page_size=2, acceleration=600)
    await e.start()
    yield e
    await e.stop()


@pytest.fixture
async def http(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer test"}) as s:
        emu.reset()

        async def call(method: str, path: str, body=None, *, raw: bytes | None = None, headers=None):
            url = path if path.startswith("https://") else emu.endpoint + path
            kw: dict = {"ssl": ctx, "headers": headers}
            if raw is not None:
                kw["data"] = raw
            elif body is not None:
                kw["json"] = body
            async with s.request(method, url, **kw) as r:
                text = await r.text()
                try:
                    data = json.loads(text) if text else None
                except ValueError:
                    data = text
                return r.status, r.headers, data

        call.session = s  # type: ignore[attr-defined]
        call.ssl = ctx  # type: ignore[attr-defined]
        yield call


async def wait_op(http, headers, timeout: float = 5.0) -> dict:
    url = headers["Azure-AsyncOperation"]
    deadline = time.monotonic() + timeout
    while True:
        st, _, body = await http("GET", url)
        assert st == 200
        if body["status"] != "InProgress" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- routes
async def test_subscriptions_and_resource_groups(emu, http):
    st, _, body = await http("GET", f"/subscriptions?{API}")
    assert st == 200 and {s["subscriptionId"] for s in body["value"]} == {SUB, SUB2}
    st, _, body = await http("GET", f"/subscriptions/{SUB}?{API}")
    assert st == 200 and body["displayName"] == "Prod" and body["id"] == f"/subscriptions/{SUB}"
    st, _, body = await http("GET", f"/subscriptions/{SUB}/resourcegroups?{API}")
    assert st == 200
    names = {g["name"] for g in body["value"]}
    while body.get("nextLink"):
        st, _, body = await http("GET", body["nextLink"])
        names |= {g["name"] for g in body["value"]}
    assert names == {"rg-app", "rg-net"}
    st, _, body = await http("GET", f"/subscriptions/{SUB}/RESOURCEGROUPS/RG-APP?{API}")
    assert st == 200 and body["name"] == "rg-app" and body["properties"]["provisioningState"] == "Succeeded"
    st, _, body = await http("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-new?{API}", {"location": LOC, "tags": {"a": "b"}})
    assert st == 201 and body["tags"] == {"a": "b"}
    st, _, _ = await http("HEAD", f"/subscriptions/{SUB}/resourcegroups/rg-new?{API}")
    assert st == 204
    st, _, _ = await http("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-new?{API}", {"location": LOC})
    assert st == 200


async def test_auth_required_and_api_version_ignored(emu, http):
    async with http.session.get(f"{emu.endpoint}/subscriptions", ssl=http.ssl, headers={"Authorization": ""}) as r:
        assert r.status == 401
        body = await r.json()
    assert body["error"]["code"] == "AuthenticationFailed"
    # no api-version at all is accepted
    st, _, _ = await http("GET", f"/subscriptions/{SUB}")
    assert st == 200
    # control routes need no auth
    async with aiohttp.ClientSession() as s, s.get(f"{emu.endpoint}/_emulator/stats", ssl=http.ssl) as r:
        assert r.status == 200


async def test_resource_crud_and_case_insensitive_ids(emu, http):
    st, _, body = await http("GET", vm_id("VM0").upper().replace("SUBSCRIPTIONS", "subscriptions") + f"?{API}")
    assert st == 200 and body["name"] == "vm0" and "instanceView" not in body["properties"]
    st, _, body = await http("GET", vm_id("vm0") + f"?{API}&$expand=instanceView")
    assert "PowerState/running" in [s["code"] for s in body["properties"]["instanceView"]["statuses"]]
    st, _, iv = await http("GET", vm_id("vm0") + f"/instanceView?{API}")
    assert st == 200 and iv["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"
    assert {d["name"] for d in iv["disks"]} == {"vm0-os", "vm0-data"}
    # generic resource: PUT create / update, PATCH merge, DELETE
    pip = rid(SUB, "rg-app", "Microsoft.Network/publicIPAddresses", "pip-new")
    st, _, body = await http("PUT", pip + f"?{API}", {"location": LOC, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})
    # Long-running, as in Azure: Updating until its operation ends.
    assert st == 201 and body["properties"]["provisioningState"] == "Updating" and body["properties"]["ipAddress"]
    emu.store.advance(60)
    st, _, body = await http("PATCH", pip + f"?{API}", {"tags": {"x": "1"}, "properties": {"idleTimeoutInMinutes": 10}})
    assert st == 200 and body["tags"] == {"x": "1"} and body["properties"]["publicIPAllocationMethod"] == "Static"
    assert body["properties"]["idleTimeoutInMinutes"] == 10
    st, _, body = await http("GET", f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Network/publicIPAddresses?{API}")
    assert st == 200
    st, _, _ = await http("DELETE", pip + f"?{API}")
    assert st == 200
    st, _, _ = await http("DELETE", pip + f"?{API}")
    assert st == 204
    # nested child kept inside its parent (NSG security rule)
    nsg = rid(SUB, "rg-net", "Microsoft.Network/networkSecurityGroups", "nsg1")
    rule = inbound_rule(200, "3389")
    st, _, body = await http("PUT", nsg + f"/securityRules/deny-rdp?{API}", rule)
    assert st == 201 and body["type"] == "Microsoft.Network/networkSecurityGroups/securityRules"
    st, _, body = await http("GET", nsg + f"?{API}")
    assert [r["name"] for r in body["properties"]["securityRules"]] == ["allow-ssh", "deny-rdp"]
    st, _, body = await http("GET", nsg + f"/securityRules/DENY-RDP?{API}")
    assert st == 200 and body["properties"]["destinationPortRange"] == "3389"


async def test_404_and_400_bodies(emu, http):
    st, _, body = await http("GET", f"/subscriptions/{'f' * 8}-0000-0000-0000-000000000000/resourcegroups?{API}")
    assert st == 404 and body["error"]["code"] == "SubscriptionNotFound"
    st, _, body = await http("GET", f"/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.Compute/virtualMachines/x?{API}")
    assert st == 404 and body["error"] == {"code": "ResourceGroupNotFound", "message": "Resource group 'nope' could not be found."}
    st, _, body = await http("GET", vm_id("ghost") + f"?{API}")
    assert st == 404 and body["error"]["code"] == "ResourceNotFound"
    assert "Microsoft.Compute/virtualMachines/ghost" in body["error"]["message"] and "rg-app" in body["error"]["message"]
    st, _, body = await http("PUT", vm_id("vm0") + f"?{API}", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert st == 400 and body["error"]["code"] == "InvalidRequestContent"


async def test_paging_across_pages(emu, http):
    url = f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?{API}&statusOnly=true"
    seen, pages = [], 0
    while url:
        st, _, body = await http("GET", url)
        assert st == 200 and len(body["value"]) <= 2
        pages += 1
        for vm in body["value"]:
            codes = [s["code"] for s in vm["properties"]["instanceView"]["statuses"]]
            assert "PowerState/running" in codes
            seen.append(vm["name"])
        url = body.get("nextLink")
        if url:
            assert url.startswith(emu.endpoint + "/subscriptions/") and "$skiptoken=" in url and "statusOnly=true" in url
    assert pages == 2 and sorted(seen) == ["vm0", "vm1", "vm2"]
    st, _, body = await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?{API}")
    assert "instanceView" not in body["value"][0]["properties"]
    assert body["value"][0]["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    st, _, body = await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/disks?{API}&$skiptoken=garbage")
    assert st == 400


async def test_resource_health_routes(emu, http):
    base = f"/subscriptions/{SUB}/providers/Microsoft.ResourceHealth"
    flt = "$filter=resourceType%20eq%20%27Microsoft.Compute%2FvirtualMachines%27"
    url, items = f"{base}/availabilityStatuses?{API}&{flt}", []
    while url:
        st, _, body = await http("GET", url)
        assert st == 200
        items += body["value"]
        url = body.get("nextLink")
    assert len(items) == 3 and all("recommendedActions" not in s["properties"] for s in items)
    down = next(s for s in items if "/vm1/" in s["id"])
    assert down["properties"]["availabilityState"] == "Unavailable"
    st, _, body = await http("GET", f"{base}/availabilityStatuses?{API}&$expand=recommendedactions")
    assert any(s["properties"].get("recommendedActions") for s in body["value"])
    st, _, cur = await http("GET", vm_id("vm0") + f"/providers/Microsoft.ResourceHealth/availabilityStatuses/current?{API}")
    assert st == 200 and cur["properties"]["availabilityState"] == "Available" and cur["name"] == "current"
    st, _, cur = await http("GET", "/" + vm_id("vm1") + f"/providers/Microsoft.ResourceHealth/availabilityStatuses/current?{API}&$expand=recommendedactions")
    assert cur["properties"]["recommendedActions"][0]["action"] == "Redeploy"
    st, _, body = await http("GET", f"{base}/events?{API}")
    assert st == 200 and body["value"][0]["name"] == "ABC-123"


# ----------------------------------------------------------------------------- faults
async def test_fault_429_with_retry_after_and_count(emu, http):
    st, _, f = await http("POST", "/_emulator/faults", {"match": "/virtualMachines", "method": "GET", "status": 429, "retry_after_s": 1, "count": 2})
    assert st == 201
    url = f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?{API}"
    for _ in range(2):
        st, headers, body = await http("GET", url)
        assert st == 429 and headers["Retry-After"] == "1" and body["error"]["code"] == "TooManyRequests"
    st, _, _ = await http("GET", url)
    assert st == 200
    st, _, faults = await http("GET", "/_emulator/faults")
    assert faults == []


async def test_fault_403_names_subscription_and_method_filter(emu, http):
    await http("POST", "/_emulator/faults", {"match": SUB2, "method": "*", "status": 403, "count": -1})
    st, _, body = await http("GET", f"/subscriptions/{SUB2}/providers/Microsoft.Compute/virtualMachines?{API}")
    assert st == 403 and body["error"]["code"] == "AuthorizationFailed" and f"/subscriptions/{SUB2}" in body["error"]["message"]
    assert "Microsoft.Compute/virtualMachines/read" in body["error"]["message"]
    st, _, _ = await http("GET", f"/subscriptions/{SUB2}?{API}")
    assert st == 403  # count -1: until cleared
    await http("DELETE", "/_emulator/faults")
    st, _, _ = await http("GET", f"/subscriptions/{SUB2}?{API}")
    assert st == 200


async def test_fault_reset_connection_malformed_and_delay(emu, http):
    # count 2: aiohttp itself retries an idempotent request once after a disconnect
    await http("POST", "/_emulator/faults", {"match": "/resourcegroups", "reset_connection": True, "count": 2})
    with pytest.raises(aiohttp.ClientError):
        await http("GET", f"/subscriptions/{SUB}/resourcegroups?{API}")
    log = (await http("GET", "/_emulator/requests"))[2]
    assert [e["status"] for e in log] == [0, 0]
    st, _, _ = await http("GET", f"/subscriptions/{SUB}/resourcegroups?{API}")
    assert st == 200

    await http("POST", "/_emulator/faults", {"match": "/providers/Microsoft.Network/networkInterfaces", "malformed_json": True})
    st, _, body = await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.Network/networkInterfaces?{API}")
    assert st == 200 and isinstance(body, str)  # not parseable
    with pytest.raises(ValueError):
        json.loads(body)

    await http("POST", "/_emulator/faults", {"match": f"/subscriptions/{SUB}", "method": "GET", "delay_s": 0.3, "status": None})
    t0 = time.monotonic()
    st, _, _ = await http("GET", f"/subscriptions/{SUB}?{API}")
    assert st == 200 and time.monotonic() - t0 >= 0.3

    st, _, body = await http("POST", "/_emulator/faults", {"match": "x", "bogus": 1})
    assert st == 400


async def test_stats_count_requests_and_writes(emu, http):
    await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines?{API}")
    await http("GET", f"/subscriptions/{SUB2}/providers/Microsoft.Compute/virtualMachines?{API}")
    await http("PUT", f"/subscriptions/{SUB}/resourcegroups/rg-x?{API}", {"location": LOC})
    st, h, _ = await http("POST", vm_id("vm0") + f"/restart?{API}")
    assert st == 202
    await http("GET", "/_emulator/requests")
    st, _, stats = await http("GET", "/_emulator/stats")
    assert stats["requests"] == 4 and stats["writes"] == 2
    assert stats["by_route"]["GET /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines"] == 2
    assert stats["by_route"]["POST /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}/restart"] == 1
    st, _, log = await http("GET", "/_emulator/requests")
    assert [e["method"] for e in log] == ["GET", "GET", "PUT", "POST"] and log[2]["status"] == 201
    assert all(set(e) >= {"method", "path", "query", "status", "t"} for e in log)
    st, _, ops = await http("GET", "/_emulator/operations")
    assert [o["kind"] for o in ops] == ["restart"] and set(ops[0]) >= {"id", "method", "path", "kind", "status", "started", "ends"}


# ----------------------------------------------------------------------------- LROs
async def test_lro_completes_by_time_without_polling(emu, http):
    st, h, body = await http("POST", vm_id("vm0") + f"/deallocate?{API}")
    assert st == 202 and body is None and "Retry-After" not in h
    assert "/providers/Microsoft.Compute/locations/westeurope/operations/" in h["Azure-AsyncOperation"]
    assert emu.store.power_state(vm_id("vm0")) == "deallocating"
    st, _, op = await http("GET", h["Azure-AsyncOperation"])
    assert op["status"] == "InProgress" and "startTime" in op
    st, _, _ = await http("GET", h["Location"])
    assert st == 202
    st, _, cur = await http("GET", vm_id("vm0") + f"/providers/Microsoft.ResourceHealth/availabilityStatuses/current?{API}")
    assert cur["properties"]["reasonType"] == "UserInitiated"
    # nobody polls: the background tick applies the effect when its time has come (60 s / 600 = 0.1 s)
    await asyncio.sleep(0.3)
    assert emu.store.power_state(vm_id("vm0")) == "deallocated"
    assert emu.store.operations[h["Azure-AsyncOperation"].split("/operations/")[1].split("?")[0]].status == "Succeeded"
    st, _, cur = await http("GET", vm_id("vm0") + f"/providers/Microsoft.ResourceHealth/availabilityStatuses/current?{API}")
    p = cur["properties"]
    assert p["availabilityState"] == "Unavailable" and p["reasonType"] == "UserInitiated"
    assert p["summary"] == "This virtual machine is stopping and deallocating as requested by an authorized user or process."
    st, _, _ = await http("GET", h["Location"])
    assert st == 204
    st, _, op = await http("GET", h["Azure-AsyncOperation"])
    assert op["status"] == "Succeeded" and op["endTime"]
    # restart on a deallocated VM is a conflict; start brings it back and health with it
    st, _, body = await http("POST", vm_id("vm0") + f"/restart?{API}")
    assert st == 409 and body["error"]["code"] == "OperationNotAllowed"
    st, h, _ = await http("POST", vm_id("vm0") + f"/start?{API}")
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, iv = await http("GET", vm_id("vm0") + f"/instanceView?{API}")
    assert "PowerState/running" in [s["code"] for s in iv["statuses"]]
    st, _, cur = await http("GET", vm_id("vm0") + f"/providers/Microsoft.ResourceHealth/availabilityStatuses/current?{API}")
    assert cur["properties"]["availabilityState"] == "Available" and cur["properties"]["recentlyResolved"]


async def test_lro_forced_failure_and_preemption(emu, http):
    await http(
        "POST",
        "/_emulator/faults",
        {"match": "/start", "method": "POST", "lro_result": "Failed", "lro_error": {"code": "AllocationFailed", "message": "No capacity."}},
    )
    await http("POST", vm_id("vm1") + f"/powerOff?{API}")
    st, h, _ = await http("POST", vm_id("vm1") + f"/start?{API}")
    assert st == 202  # preempts the powerOff
    op = await wait_op(http, h)
    assert op["status"] == "Failed" and op["error"]["code"] == "AllocationFailed"
    st, _, body = await http("GET", h["Location"])
    assert st == 400 and body["error"]["code"] == "AllocationFailed"
    ops = {o["kind"]: o for o in (await http("GET", "/_emulator/operations"))[2]}
    assert ops["powerOff"]["status"] == "Canceled"
    st, _, iv = await http("GET", vm_id("vm1") + f"/instanceView?{API}")
    codes = [s["code"] for s in iv["statuses"]]
    assert "PowerState/running" in codes and "ProvisioningState/failed/AllocationFailed" in codes
    # advance the clock instead of sleeping: redeploy takes 300 s nominal
    st, h, _ = await http("POST", vm_id("vm1") + f"/redeploy?{API}")
    await http("POST", "/_emulator/advance", {"seconds": 1})
    assert (await wait_op(http, h))["status"] == "Succeeded"
    assert emu.store.guest_facts(vm_id("vm1"))["redeploys"] == 1


async def test_run_command_and_maintenance(emu, http):
    st, h, _ = await http("POST", vm_id("vm0") + f"/runCommand?{API}", {"commandId": "RunShellScript", "script": ["echo hi"]})
    assert st == 202
    st, _, again = await http("POST", vm_id("vm0") + f"/runCommand?{API}", {"commandId": "RunShellScript"})
    assert st == 409  # one at a time
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, out = await http("GET", h["Location"])
    assert st == 200 and out["value"][0]["code"] == "ComponentStatus/StdOut/succeeded"
    assert out["value"][0]["message"] == "hello from vm0" and out["value"][1]["code"] == "ComponentStatus/StdErr/succeeded"
    st, _, body = await http("POST", vm_id("vm0") + f"/runCommand?{API}", {"script": []})
    assert st == 400
    st, _, body = await http("POST", vm_id("vm0") + f"/performMaintenance?{API}")
    assert st == 409
    st, h, _ = await http("POST", vm_id("vm2") + f"/performMaintenance?{API}")
    await http("POST", "/_emulator/advance", {"seconds": 1})
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, iv = await http("GET", vm_id("vm2") + f"/instanceView?{API}")
    assert "maintenanceRedeployStatus" not in iv


async def test_vm_delete_honours_delete_options(emu, http):
    st, h, _ = await http("DELETE", vm_id("vm0") + f"?{API}")
    assert st == 202
    st, _, body = await http("POST", vm_id("vm0") + f"/start?{API}")
    assert st == 409 and "marked for deletion" in body["error"]["message"]
    st, _, doc = await http("GET", vm_id("vm0") + f"?{API}")
    assert doc["properties"]["provisioningState"] == "Deleting"
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, _ = await http("GET", vm_id("vm0") + f"?{API}")
    assert st == 404
    st, _, _ = await http("GET", disk_id("vm0-os") + f"?{API}")
    assert st == 404  # deleteOption Delete: gone with the VM
    st, _, data = await http("GET", disk_id("vm0-data") + f"?{API}")
    assert st == 200 and "managedBy" not in data and data["properties"]["diskState"] == "Unattached"
    st, _, _ = await http("GET", rid(SUB, "rg-app", "Microsoft.Network/networkInterfaces", "vm0-nic") + f"?{API}")
    assert st == 404
    st, _, pip = await http("GET", rid(SUB, "rg-app", "Microsoft.Network/publicIPAddresses", "vm0-pip") + f"?{API}")
    assert st == 200 and "ipConfiguration" not in pip["properties"]
    st, _, dump = await http("GET", "/_emulator/resources?type=Microsoft.Compute/disks")
    assert [d["id"] for d in dump["deleted"]] == [disk_id("vm0-os")]
    st, _, body = await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.ResourceHealth/availabilityStatuses?{API}")
    assert all("/vm0/" not in s["id"] for s in body["value"] + [])


async def test_vm_patch_disk_copy_and_os_swap(emu, http):
    vm = vm_id("vm1")
    # PATCH: deleteOption -> Detach (deep merge keeps the rest of osDisk)
    st, h, body = await http("PATCH", vm + f"?{API}", {"properties": {"storageProfile": {"osDisk": {"deleteOption": "Detach"}}}})
    assert st == 200 and body["properties"]["provisioningState"] == "Updating"
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, doc = await http("GET", vm + f"?{API}")
    osd = doc["properties"]["storageProfile"]["osDisk"]
    assert osd["deleteOption"] == "Detach" and osd["name"] == "vm1-os" and doc["properties"]["provisioningState"] == "Succeeded"
    # snapshot of the OS disk, then a disk copied from the snapshot
    snap = rid(SUB, "rg-app", "Microsoft.Compute/snapshots", "vm1-os-snap")
    st, h, body = await http(
        "PUT", snap + f"?{API}", {"location": LOC, "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id("vm1-os")}}}
    )
    assert st == 202 and (await wait_op(http, h))["status"] == "Succeeded"
    copy_id = disk_id("vm1-os-copy")
    st, h, body = await http(
        "PUT", copy_id + f"?{API}", {"location": LOC, "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snap.lstrip("/")}}}
    )
    assert st == 202 and body["properties"]["provisioningState"] == "Updating"
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, disk = await http("GET", copy_id + f"?{API}")
    p = disk["properties"]
    assert p["diskSizeGB"] == 30 and p["osType"] == "Linux" and p["hyperVGeneration"] == "V2"
    assert p["diskState"] == "Unattached" and p["provisioningState"] == "Succeeded"
    st, _, snapdoc = await http("GET", snap + f"?{API}")
    assert p["creationData"]["sourceUniqueId"] == snapdoc["properties"]["uniqueId"]
    # OS disk swap needs a stopped VM
    swap = {"properties": {"storageProfile": {"osDisk": {"name": "vm1-os-copy", "managedDisk": {"id": copy_id}}}}}
    st, _, body = await http("PATCH", vm + f"?{API}", swap)
    assert st == 409
    st, h, _ = await http("POST", vm + f"/deallocate?{API}")
    await wait_op(http, h)
    st, h, _ = await http("PATCH", vm + f"?{API}", swap)
    assert st == 200 and (await wait_op(http, h))["status"] == "Succeeded"
    st, _, new = await http("GET", copy_id + f"?{API}")
    st, _, old = await http("GET", disk_id("vm1-os") + f"?{API}")
    assert new["managedBy"] == vm and new["properties"]["diskState"] == "Attached"
    assert "managedBy" not in old and old["properties"]["diskState"] == "Unattached"
    # an attached disk cannot be deleted
    st, _, body = await http("DELETE", copy_id + f"?{API}")
    assert st == 409


async def test_rg_delete_removes_everything(emu, http):
    st, h, _ = await http("DELETE", f"/subscriptions/{SUB}/resourcegroups/rg-net?{API}")
    assert st == 202
    st, _, body = await http("GET", f"/subscriptions/{SUB}/resourcegroups/rg-net?{API}")
    assert body["properties"]["provisioningState"] == "Deleting"
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, _ = await http("GET", f"/subscriptions/{SUB}/resourcegroups/rg-net?{API}")
    assert st == 404
    st, _, body = await http("GET", f"/subscriptions/{SUB}/providers/Microsoft.Network/networkSecurityGroups?{API}")
    assert body["value"] == []


async def test_vm_create_attaches_and_creates_disks(emu, http):
    new_vm = vm_id("rescue1")
    body = {
        "location": LOC,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                "osDisk": {"createOption": "FromImage", "deleteOption": "Delete", "managedDisk": {"storageAccountType": "StandardSSD_LRS"}},
                "dataDisks": [{"lun": 0, "createOption": "Attach", "managedDisk": {"id": disk_id("vm0-os")}}],
            },
            "networkProfile": {"networkInterfaces": []},
        },
    }
    st, _, err = await http("PUT", new_vm + f"?{API}", body)
    assert st == 409  # vm0-os is attached to vm0
    st, h, _ = await http("POST", vm_id("vm0") + f"/deallocate?{API}")
    body["properties"]["storageProfile"]["dataDisks"][0]["managedDisk"]["id"] = disk_id("vm0-data")
    st, _, _ = await http("PATCH", vm_id("vm0") + f"?{API}", {"properties": {"storageProfile": {"dataDisks": []}}})
    await asyncio.sleep(0.2)
    st, h, doc = await http("PUT", new_vm + f"?{API}", body)
    assert st == 201 and doc["properties"]["provisioningState"] == "Creating" and "Azure-AsyncOperation" in h
    assert (await wait_op(http, h))["status"] == "Succeeded"
    st, _, doc = await http("GET", new_vm + f"?{API}&$expand=instanceView")
    os_id = doc["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    st, _, osd = await http("GET", os_id + f"?{API}")
    assert st == 200 and osd["managedBy"] == new_vm and osd["sku"]["name"] == "StandardSSD_LRS"
    st, _, data = await http("GET", disk_id("vm0-data") + f"?{API}")
    assert data["managedBy"] == new_vm
    assert "PowerState/running" in [s["code"] for s in doc["properties"]["instanceView"]["statuses"]]


async def test_reset_restores_initial_state(emu, http, estate_doc):
    st, h, _ = await http("DELETE", vm_id("vm1") + f"?{API}")
    await wait_op(http, h)
    await http("POST", "/_emulator/faults", {"match": "zzz", "status": 500, "count": -1})
    st, _, _ = await http("POST", "/_emulator/reset")
    assert st == 200
    st, _, stats = await http("GET", "/_emulator/stats")
    assert stats == {"requests": 0, "writes": 0, "by_route": {}}
    assert (await http("GET", "/_emulator/faults"))[2] == []
    assert (await http("GET", "/_emulator/requests"))[2] == []
    st, _, doc = await http("GET", vm_id("vm1") + f"?{API}")
    assert st == 200 and doc["properties"]["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    st, _, d = await http("GET", disk_id("vm1-os") + f"?{API}")
    assert d["managedBy"] == vm_id("vm1")
    # the caller's estate was never mutated
    assert estate_doc["resources"][0]["properties"]["provisioningState"] == "Succeeded"


# ----------------------------------------------------------------------------- real SDK
class _Credential:
    """A dummy AsyncTokenCredential."""

    async def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken("dummy-token", int(time.time()) + 3600)

    async def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("dummy-token", int(time.time()) + 3600)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass


async def test_real_sdk_against_emulator(emu, http):
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.resourcehealth.aio import ResourceHealthMgmtClient

    cred = _Credential()
    kw = dict(base_url=emu.endpoint, credential_scopes=["https://management.azure.com/.default"], connection_verify=emu.ca_file)
    async with ComputeManagementClient(cred, SUB, polling_interval=0.05, **kw) as client:
        vms = [vm async for vm in client.virtual_machines.list_all(status_only="true")]
        assert sorted(v.name for v in vms) == ["vm0", "vm1", "vm2"]  # 2 pages of 2
        assert all(any(s.code == "PowerState/running" for s in v.instance_view.statuses) for v in vms)
        plain = [vm async for vm in client.virtual_machines.list_all()]
        assert plain[0].storage_profile.os_disk.delete_option == "Delete" and plain[0].instance_view is None
        poller = await client.virtual_machines.begin_restart("rg-app", "vm0")
        assert await poller.result() is None
        vm = await client.virtual_machines.get("rg-app", "vm0", expand="instanceView")
        assert [s.code for s in vm.instance_view.statuses][-1] == "PowerState/running"
        assert vm.instance_view.vm_agent.statuses[0].display_status == "Ready"
        poller = await client.virtual_machines.begin_run_command("rg-app", "vm0", {"commandId": "RunShellScript", "script": ["uptime"]})
        result = await poller.result()
        assert result.value[0].message == "hello from vm0"
        poller = await client.virtual_machines.begin_power_off("rg-app", "vm1")
        await poller.result()
        iv = await client.virtual_machines.instance_view("rg-app", "vm1")
        assert any(s.code == "PowerState/stopped" for s in iv.statuses)
        disk = await client.disks.get("rg-app", "vm1-data")
        assert disk.managed_by == vm_id("vm1")
        poller = await client.disks.begin_create_or_update(
            "rg-app",
            "sdk-copy",
            {"location": LOC, "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk_id("vm1-os")}}},
        )
        copied = await poller.result()
        assert copied.provisioning_state == "Succeeded" and copied.disk_state == "Unattached"
        poller = await client.virtual_machines.begin_delete("rg-app", "vm2")
        await poller.result()
        assert not [d async for d in client.disks.list_by_resource_group("rg-app") if d.name == "vm2-os"]
    async with ResourceHealthMgmtClient(cred, SUB, **kw) as rh:
        st = await rh.availability_statuses.get_by_resource(vm_id("vm1"))
        assert st.properties.availability_state == "Unavailable" and st.properties.reason_type == "UserInitiated"
        statuses = [s async for s in rh.availability_statuses.list_by_subscription_id(expand="recommendedactions")]
        assert len(statuses) == 2  # vm2 was deleted
        events = [e async for e in rh.events.list_by_subscription_id()]
        assert events[0].name == "ABC-123"


# ----------------------------------------------------------------------------- thread / foreground
def test_emulator_thread_and_ca_file():
    with EmulatorThread(small_estate(1), page_size=10) as emu:
        assert emu.endpoint.startswith("https://127.0.0.1:")
        assert stat.S_IMODE(os.stat(emu.ca_file).st_mode) == 0o600
        ctx = ssl.create_default_context(cafile=emu.ca_file)
        req = urllib.request.Request(f"{emu.endpoint}/subscriptions", headers={"Authorization": "Bearer t"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            assert len(json.load(r)["value"]) == 2
        assert emu.call(lambda: emu.store.power_state(vm_id("vm0"))) == "running"
    with pytest.raises(ValueError):
        EmulatorThread({}, host="0.0.0.0")
    busy = EmulatorThread({}).start()
    try:
        port = int(busy.endpoint.rsplit(":", 1)[1])
        with pytest.raises(RuntimeError, match="failed to start"):
            EmulatorThread({}, port=port).start()
    finally:
        busy.stop()


def test_serve_foreground_prints_one_json_line(tmp_path):
    estate_file = tmp_path / "estate.json"
    estate_file.write_text(json.dumps(small_estate(1)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.emulator.serve", "--estate", str(estate_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["endpoint"].startswith("https://127.0.0.1:") and os.path.exists(info["ca_file"])
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == ""


# --- the emulator's ground truth is its own -------------------------------------------------

DOMAIN_MODULES = (
    "backend.network",
    "backend.probe",
    "backend.bootdiag",
    "backend.diagnose",
    "backend.verdict",
    "backend.connectivity",
    "backend.checks",
    "backend.recovery",
    "backend.health",
    "backend.sizes",
    "backend.azure",
    "backend.models",
    "backend.report",
    "backend.lastknown",
)


def test_the_emulator_imports_no_domain_module():
    """Started with every route extension and the built-in estates, the emulator has loaded
    none of the product's logic: the NSG evaluator, the probe's protocol code, the boot-log
    analyzer and the rest cannot be acted out by the guests they are tested against."""
    code = (
        "import sys, json\n"
        "from backend.emulator import server, guest, bootdiag, rescue_ops, recovery_ops, usage, serve\n"
        "from backend.emulator.estates import load_estate\n"
        "load_estate('demo'); load_estate('scale:3')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('backend.'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert any(m.startswith("backend.emulator.") for m in loaded)
    leaked = [m for m in loaded if m.startswith(DOMAIN_MODULES)]
    assert leaked == []


@pytest.mark.parametrize(
    "requested, cookie, listener, selected, failure",
    [
        (0x3, "ops", (1, 2), 0x2, None),
        (0x1, None, (0, 1), 0x1, None),
        (0x0, "x" * 40, (0, 1), 0x0, None),
        (0xB, None, (1, 2), 0x2, None),
        # NLA required (Windows' default): a client without CredSSP is refused, as Windows refuses it.
        (0x1, None, (1, 2), None, 5),
        (0x0, None, (0, 2), None, 1),  # SecurityLayer 2: TLS required
        (0x3, None, (0, 0), None, 2),  # SecurityLayer 0: standard RDP security only
    ],
)
def test_the_guests_rdp_bytes_meet_the_probes(requested, cookie, listener, selected, failure):
    """The emulator's RDP stand-in and the product's probe are written apart; a Connection
    Request from one is read by the other, and the Confirm the other sends back too (with the
    listener's UserAuthentication and SecurityLayer deciding, as on Windows)."""
    from backend import probe
    from backend.emulator import guest

    request = probe.x224_connection_request(requested, cookie)
    assert guest.requested_protocols(request) == requested
    answer = probe.parse_connection_confirm(guest.connection_confirm(requested, user_authentication=listener[0], security_layer=listener[1]))
    assert answer.ok and answer.selected == selected and answer.failure == failure
    with pytest.raises(ValueError):
        guest.requested_protocols(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
