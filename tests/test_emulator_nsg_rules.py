"""Security rules in the emulator as Azure serves them: PUT and DELETE are long-running,
a priority in use is SecurityRuleConflict, and the demo's stand-ins obey the change."""

from __future__ import annotations

import json

import pytest

from backend.adapter import BackendError
from tests.recovery_support import arm_request, vm_doc
from tests.support import emulator_control


@pytest.fixture
def backend(reset_backend):  # the adapter on this module's own, reset emulator (tests/rescue_fixtures.py)
    return reset_backend


def nsg_of(emu, vm_name: str) -> str:
    nic_id = vm_doc(emu, vm_name)["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    status, nic = arm_request(emu, "GET", nic_id)
    assert status == 200
    return nic["properties"]["networkSecurityGroup"]["id"]


def allow(priority: int, source: str, port: str) -> dict:
    return {
        "properties": {
            "priority": priority,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": source,
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": port,
        }
    }


def rdp_endpoint(emu, vm_name: str) -> dict:
    """What the demo's stand-in for the VM's RDP port does now (its mode and why)."""
    guests = emulator_control(emu, "GET", "/_emulator/guest")
    vm_id = vm_doc(emu, vm_name)["doc"]["id"].lower()
    (endpoint,) = [e for e in guests["endpoints"] if e["vm_id"].lower() == vm_id and e["port"] == 3389]
    return endpoint


async def test_a_rule_put_is_long_running_and_a_used_priority_is_refused_as_azure_does(emu, backend):
    nsg = nsg_of(emu, "jump-prod-01")
    status, body = arm_request(emu, "PUT", f"{nsg}/securityRules/first", allow(199, "192.88.99.10/32", "3389"))
    assert status == 201 and body["properties"]["provisioningState"] == "Updating"
    doc = await backend.put_security_rule(f"{nsg}/securityRules/second", allow(198, "192.88.99.10/32", "3389"))
    assert doc["properties"]["provisioningState"] == "Succeeded"
    with pytest.raises(BackendError) as caught:
        await backend.put_security_rule(f"{nsg}/securityRules/third", allow(200, "*", "22"))
    assert caught.value.status == 400 and caught.value.code == "SecurityRuleConflict"
    assert "Rules cannot have the same Priority and Direction" in str(caught.value)
    status, body = arm_request(emu, "PUT", f"{nsg}/securityRules/fourth", allow(99, "*", "22"))
    assert status == 400 and body["error"]["code"] == "SecurityRuleInvalidPriority"
    names = [r["name"] for r in (await backend.get_nsg(nsg))["properties"]["securityRules"]]
    assert names == ["Deny-RDP-Incident-4711", "Allow-RDP", "first", "second"]


async def test_a_rule_delete_is_long_running_and_a_missing_rule_is_204(emu, backend):
    nsg = nsg_of(emu, "jump-prod-01")
    await backend.put_security_rule(f"{nsg}/securityRules/temp", allow(150, "192.88.99.10/32", "3389"))
    status, _ = arm_request(emu, "DELETE", f"{nsg}/securityRules/temp")
    assert status == 202
    await backend.delete_security_rule(f"{nsg}/securityRules/temp")  # already going: polls to the end
    status, _ = arm_request(emu, "DELETE", f"{nsg}/securityRules/never-was")
    assert status == 204
    assert [r["name"] for r in (await backend.get_nsg(nsg))["properties"]["securityRules"]] == ["Deny-RDP-Incident-4711", "Allow-RDP"]


async def test_the_demo_stand_in_answers_once_a_rule_admits_the_demo_client(emu, backend):
    guests = emulator_control(emu, "GET", "/_emulator/guest")
    assert guests["client_address"] == "192.88.99.10"
    nsg = nsg_of(emu, "jump-prod-01")
    assert rdp_endpoint(emu, "jump-prod-01")["mode"] == "silent"
    await backend.put_security_rule(f"{nsg}/securityRules/other-client", allow(190, "203.0.113.0/24", "3389"))
    assert "Deny-RDP-Incident-4711" in rdp_endpoint(emu, "jump-prod-01")["why"]
    await backend.put_security_rule(f"{nsg}/securityRules/demo-client", allow(191, "192.88.99.0/24", "3389"))
    assert rdp_endpoint(emu, "jump-prod-01")["mode"] == "rdp"
    await backend.delete_security_rule(f"{nsg}/securityRules/demo-client")
    assert rdp_endpoint(emu, "jump-prod-01")["mode"] == "silent"


async def test_the_examples_rule_request_is_answered_as_the_example_answers(emu, backend):
    """SecurityRules_CreateOrUpdate as in Azure's official example (tests/data/azure-rest-examples):
    201 for a new rule, 200 for an update, both long-running, with no key the example does not know."""
    from tests.test_conformance import key_paths
    from tests.test_emulator_netpath import EXAMPLES, put_with_headers

    spec = json.loads((EXAMPLES / "NetworkSecurityGroupRuleCreate.json").read_text())
    body = spec["parameters"]["securityRuleParameters"]
    rule_id = f"{nsg_of(emu, 'jump-prod-01')}/securityRules/{spec['parameters']['securityRuleName']}"
    status, headers, answer = put_with_headers(emu, rule_id, body)
    assert status == 201 and "/operations/" in headers["Azure-AsyncOperation"]
    assert answer["properties"]["provisioningState"] == "Updating"
    doc = await backend.put_security_rule(rule_id, body)  # an update: polled to its end
    assert doc["properties"]["provisioningState"] == "Succeeded"
    assert {k: doc["properties"][k] for k in body["properties"]} == body["properties"]
    vocabulary = key_paths(spec["responses"]["201"]["body"]) | key_paths(spec["responses"]["200"]["body"])
    assert sorted(p for p in key_paths(doc) if p not in vocabulary and p not in {"etag", "type"}) == []
    status, _, _ = put_with_headers(emu, rule_id, body)
    assert status == 200


async def test_an_nsg_put_is_long_running_and_a_failed_create_leaves_nothing(emu, backend):
    """NetworkSecurityGroups_CreateOrUpdate (upgrade-public-ip creates one for a Standard IP): 201 with
    Azure-AsyncOperation and Updating until it ends; a failed create leaves no NSG."""
    from tests.test_emulator_netpath import put_with_headers

    group = vm_doc(emu, "legacy-app-01")["doc"]["id"].split("/providers/")[0]
    nsg_id = f"{group}/providers/Microsoft.Network/networkSecurityGroups/test-nsg"
    body = {"location": "westeurope", "properties": {"securityRules": [{"name": "Allow-RDP", **allow(300, "Internet", "3389")}]}}
    status, headers, answer = put_with_headers(emu, nsg_id, body)
    assert status == 201 and "/operations/" in headers["Azure-AsyncOperation"]
    assert answer["properties"]["provisioningState"] == "Updating"
    assert [r["name"] for r in answer["properties"]["defaultSecurityRules"]][:3] == ["AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound"]
    doc = await backend.put_nsg(nsg_id + "-2", body)  # the adapter polls it to its end
    assert doc["properties"]["provisioningState"] == "Succeeded"
    # A create whose operation fails leaves no NSG behind.
    failed = f"{group}/providers/Microsoft.Network/networkSecurityGroups/test-nsg-failed"
    fault = {"lro_result": "Failed", "lro_error": {"code": "InternalServerError", "message": "An error occurred."}, "count": 1}
    emulator_control(emu, "POST", "/_emulator/faults", dict(fault, match="/networkSecurityGroups/test-nsg-failed", method="PUT"))
    try:
        with pytest.raises(BackendError):
            await backend.put_nsg(failed, body)
    finally:
        emulator_control(emu, "DELETE", "/_emulator/faults")
    assert await backend.get_nsg(failed) is None


def test_a_second_nsg_write_while_the_first_runs_is_refused_as_azure_does():
    """An emulator on Azure's own clock, so the first write is still running: 409 AnotherOperationInProgress."""
    from tests.recovery_support import own_emulator

    slow = own_emulator(acceleration=1)
    try:
        group = vm_doc(slow, "legacy-app-01")["doc"]["id"].split("/providers/")[0]
        nsg_id = f"{group}/providers/Microsoft.Network/networkSecurityGroups/test-nsg"
        body = {"location": "westeurope", "properties": {"securityRules": [{"name": "Allow-RDP", **allow(300, "Internet", "3389")}]}}
        status, first = arm_request(slow, "PUT", nsg_id, body)
        assert status == 201 and first["properties"]["provisioningState"] == "Updating"
        status, refused = arm_request(slow, "PUT", nsg_id, body)
        assert status == 409 and refused["error"]["code"] == "AnotherOperationInProgress"
    finally:
        slow.stop()


def _delete(emu, path: str) -> tuple[int, dict]:
    """A DELETE as any client sends it: the status and headers of the first answer."""
    import ssl
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{emu.endpoint}{path}?api-version=2025-03-01", method="DELETE", headers={"Authorization": "Bearer test-token"})
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=emu.ca_file), timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


async def test_a_rule_delete_is_answered_as_the_delete_example_answers(emu, backend):
    """SecurityRules_Delete as in Azure's official example: 202 with Azure-AsyncOperation for a rule
    that is there (200 is the example's other answer), 204 for one that is not."""
    from tests.test_emulator_netpath import EXAMPLES

    spec = json.loads((EXAMPLES / "NetworkSecurityGroupRuleDelete.json").read_text())
    nsg = nsg_of(emu, "jump-prod-01")
    rule_id = f"{nsg}/securityRules/{spec['parameters']['securityRuleName']}"
    await backend.put_security_rule(rule_id, allow(150, "192.88.99.10/32", "3389"))
    status, headers = _delete(emu, rule_id)
    assert str(status) in spec["responses"] and set(spec["responses"][str(status)].get("headers") or {}) <= set(headers)
    assert status == 202 and "/operations/" in headers["Azure-AsyncOperation"]
    await backend.delete_security_rule(rule_id)  # already going: polled to its end
    assert "rule1" not in [r["name"] for r in (await backend.get_nsg(nsg))["properties"]["securityRules"]]
    status, headers = _delete(emu, rule_id)
    assert status == 204 and "204" in spec["responses"]
