"""VPN resets and public IP writes in the emulator as Azure serves them, read through the real
adapter, and checked against Azure's official REST examples (tests/data/azure-rest-examples):
a connection reset and a gateway reset are long-running POSTs whose 202 carries
Azure-AsyncOperation, a public IP PUT and a NIC PUT are long-running, an associated IP cannot change its SKU,
a dynamic address goes with its association, and a Standard IP admits nothing without an NSG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend import mapping
from backend.adapter import BackendError
from backend.azure.backend import AzureBackend
from tests.recovery_support import arm_request, operations, reset, vm_doc
from tests.support import demo_settings, emulator_control
from tests.test_conformance import key_paths

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples" / "network"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture
def backend(reset_backend):  # the adapter on this module's own, reset emulator (tests/rescue_fixtures.py)
    return reset_backend


def first(emu, rtype: str, name: str | None = None) -> dict:
    for doc in emulator_control(emu, "GET", f"/_emulator/resources?type={rtype}")["resources"]:
        if name is None or doc["name"] == name:
            return doc
    raise KeyError(rtype)


def connection(emu) -> dict:
    return first(emu, "Microsoft.Network/connections", "cn-hub-to-onprem-amsterdam")


def pip_of(emu, vm_name: str) -> dict:
    nic_id = vm_doc(emu, vm_name)["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    status, nic = arm_request(emu, "GET", nic_id)
    assert status == 200
    pip_id = nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"]
    status, pip = arm_request(emu, "GET", pip_id)
    assert status == 200
    return pip


def rdp_endpoint(emu, address: str, port: int) -> dict | None:
    guests = emulator_control(emu, "GET", "/_emulator/guest")
    return next((e for e in guests["endpoints"] if e["address"] == address and e["port"] == port), None)


def set_tunnel(emu, connection_id: str, fact: str) -> None:
    emu.store.own_guest(connection_id)["tunnel"] = fact


async def test_a_connection_reset_is_the_long_running_post_of_the_example_and_brings_a_stuck_tunnel_back(emu, backend):
    spec = example("VirtualNetworkGatewayConnectionReset.json")
    conn = connection(emu)
    assert conn["properties"]["connectionStatus"] == "NotConnected"
    status, body = arm_request(emu, "POST", f"{conn['id']}/resetconnection")
    # The example's answer: 202, no body, an Azure-AsyncOperation to poll.
    assert list(spec["responses"]) == ["202"] and "Azure-AsyncOperation" in spec["responses"]["202"]["headers"]
    assert status == 202 and body is None
    (op,) = [o for o in operations(emu) if o["kind"] == "resetconnection"]
    assert op["resource_id"].lower() == conn["id"].lower() and op["ends"] > op["started"]
    # Through the adapter (the SDK polls the operation to its end).
    reset(emu)
    seen = []
    await backend.reset_vpn_connection(conn["id"], on_started=lambda token: seen.append(bool(token)))
    assert seen == [True]
    doc = await backend.get_vpn_connection(conn["id"])
    assert doc["properties"]["connectionStatus"] == "Connected"


async def test_a_gateway_reset_returns_the_gateway_with_the_examples_keys_and_clears_what_a_connection_reset_cannot(emu, backend):
    conn = connection(emu)
    gateway_id = conn["properties"]["virtualNetworkGateway1"]["id"]
    set_tunnel(emu, conn["id"], "gateway")
    await backend.reset_vpn_connection(conn["id"])
    assert (await backend.get_vpn_connection(conn["id"]))["properties"]["connectionStatus"] == "NotConnected"
    doc = await backend.reset_vpn_gateway(gateway_id)
    assert doc["id"].lower() == gateway_id.lower() and doc["properties"]["provisioningState"] == "Succeeded"
    vocabulary = key_paths(example("VirtualNetworkGatewayReset.json")["responses"]["200"]["body"])
    # Gateway properties the REST spec has that this example does not show.
    extras = {"tags", "properties.vpnGatewayGeneration", "properties.enablePrivateIpAddress", "zones"}
    unknown = sorted(p for p in key_paths(doc) if p not in vocabulary and not any(p == e or p.startswith(e + ".") for e in extras))
    assert unknown == []
    assert (await backend.get_vpn_connection(conn["id"]))["properties"]["connectionStatus"] == "Connected"


async def test_a_peer_that_is_down_stays_not_connected_after_either_reset(emu, backend):
    conn = connection(emu)
    set_tunnel(emu, conn["id"], "peer-down")
    await backend.reset_vpn_connection(conn["id"])
    await backend.reset_vpn_gateway(conn["properties"]["virtualNetworkGateway1"]["id"])
    assert (await backend.get_vpn_connection(conn["id"]))["properties"]["connectionStatus"] == "NotConnected"


async def test_the_public_ip_example_request_creates_a_basic_dynamic_ip_as_a_long_running_put(emu, backend):
    from azure.mgmt.network import models

    spec = example("PublicIpAddressCreateDefaults.json")
    conn = connection(emu)
    group = conn["id"].split("/providers/")[0]
    pip_id = f"{group}/providers/Microsoft.Network/publicIPAddresses/test-ip"
    status, body = arm_request(emu, "PUT", pip_id, spec["parameters"]["parameters"])
    assert status == 201 and body["properties"]["provisioningState"] == "Updating"
    doc = await backend.put_public_ip(pip_id + "-2", spec["parameters"]["parameters"])
    assert doc["sku"]["name"] == "Basic" and doc["properties"]["publicIPAllocationMethod"] == "Dynamic"
    assert "ipAddress" not in doc["properties"]  # dynamic and unassociated: no address
    vocabulary = key_paths(spec["responses"]["201"]["body"])
    extras = {"tags", "etag", "properties.resourceGuid"}
    assert sorted(p for p in key_paths(doc) if p not in vocabulary and p not in extras) == []
    for body in (spec["responses"]["201"]["body"], doc):  # the example and the emulator read alike, as JSON and as the SDK's model
        for form in (body, models.PublicIPAddress(body)):
            read = mapping.public_ip(form)
            assert (read.sku, read.allocation, read.ip_address) == ("Basic", "Dynamic", None)


async def test_an_associated_basic_ip_is_made_static_keeping_its_address_but_its_sku_cannot_change(emu, backend):
    pip = pip_of(emu, "rdgw-shared-01")
    address = pip["properties"]["ipAddress"]
    assert pip["sku"]["name"] == "Basic" and pip["properties"]["publicIPAllocationMethod"] == "Dynamic"
    body = dict(pip, properties=dict(pip["properties"], publicIPAllocationMethod="Static"))
    doc = await backend.put_public_ip(pip["id"], body)
    assert doc["properties"]["ipAddress"] == address and doc["properties"]["publicIPAllocationMethod"] == "Static"
    upgrade = dict(doc, sku={"name": "Standard", "tier": "Regional"})
    with pytest.raises(BackendError) as caught:
        await backend.put_public_ip(pip["id"], upgrade)
    assert caught.value.status == 400 and caught.value.code == "PublicIPAddressInUseCannotUpdate"
    assert "is in use by ipconfig" in str(caught.value)
    status, body = arm_request(emu, "PUT", pip["id"], dict(upgrade, properties=dict(doc["properties"], publicIPAllocationMethod="Dynamic")))
    assert status == 400 and body["error"]["code"] == "StandardSkuPublicIPAddressesMustBeStatic"


async def test_disassociating_releases_a_dynamic_address_keeps_a_static_one_and_a_bare_standard_ip_is_closed(emu, backend):
    vm = vm_doc(emu, "legacy-app-01")["doc"]
    nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    nic = await backend.get_nic(nic_id)
    pip = pip_of(emu, "legacy-app-01")
    address = pip["properties"]["ipAddress"]
    assert rdp_endpoint(emu, address, 3389)["mode"] == "rdp"

    def without_ip(doc: dict) -> dict:
        out = json.loads(json.dumps(doc))
        out["properties"]["ipConfigurations"][0]["properties"].pop("publicIPAddress")
        return out

    await backend.put_nic(nic_id, without_ip(nic))
    gone = await backend.get_public_ip_document(pip["id"])
    assert "ipConfiguration" not in gone["properties"] and "ipAddress" not in gone["properties"]  # dynamic: released
    assert rdp_endpoint(emu, address, 3389) is None

    # Static, then Standard while disassociated, then associated again: the same address all along.
    reset(emu)
    nic = await backend.get_nic(nic_id)
    static = await backend.put_public_ip(pip["id"], dict(pip, properties=dict(pip["properties"], publicIPAllocationMethod="Static")))
    await backend.put_nic(nic_id, without_ip(nic))
    kept = await backend.get_public_ip_document(pip["id"])
    assert kept["properties"]["ipAddress"] == address
    standard = await backend.put_public_ip(pip["id"], dict(static, sku={"name": "Standard", "tier": "Regional"}))
    assert standard["sku"]["name"] == "Standard" and standard["properties"]["ipAddress"] == address
    await backend.put_nic(nic_id, nic)
    assert (await backend.get_public_ip_document(pip["id"]))["properties"]["ipConfiguration"]["id"].lower().startswith(nic_id.lower())
    assert rdp_endpoint(emu, address, 3389)["mode"] == "rdp"  # the NIC's NSG allows RDP
    # Without any NSG on the NIC or its subnet, a Standard IP lets nothing in.
    bare = await backend.get_nic(nic_id)
    bare["properties"].pop("networkSecurityGroup")
    await backend.put_nic(nic_id, bare)
    assert rdp_endpoint(emu, address, 3389)["mode"] == "silent"


def put_with_headers(emu, path: str, body: dict) -> tuple[int, dict, dict]:
    """A PUT as any client sends it: the status, the headers and the body of the first answer."""
    import ssl
    import urllib.request

    req = urllib.request.Request(
        f"{emu.endpoint}{path}?api-version=2024-05-01",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": "Bearer test-token"},
    )
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=emu.ca_file), timeout=10) as resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


async def test_a_nic_put_is_long_running_like_azures_and_associates_its_ip_only_when_it_succeeds(emu, backend):
    spec = example("NetworkInterfaceCreate.json")
    legacy = vm_doc(emu, "legacy-app-01")["doc"]
    group = legacy["id"].split("/providers/")[0]
    subnet = (await backend.get_nic(legacy["properties"]["networkProfile"]["networkInterfaces"][0]["id"]))["properties"]["ipConfigurations"][0]["properties"][
        "subnet"
    ]["id"]
    ip_body = example("PublicIpAddressCreateDefaults.json")["parameters"]["parameters"]
    pips = [await backend.put_public_ip(f"{group}/providers/Microsoft.Network/publicIPAddresses/test-ip-{n}", ip_body) for n in (1, 2)]

    def request(pip_id: str) -> dict:
        body = json.loads(json.dumps(spec["parameters"]["parameters"]))  # the example's request, on the demo's subnet and IP
        first = body["properties"]["ipConfigurations"][0]["properties"]
        first["publicIPAddress"]["id"], first["subnet"]["id"] = pip_id, subnet
        return body

    # 201 with Azure-AsyncOperation and provisioningState Updating, as Azure answers a long-running PUT.
    nic_id = f"{group}/providers/Microsoft.Network/networkInterfaces/test-nic"
    status, headers, answer = put_with_headers(emu, nic_id, request(pips[0]["id"]))
    assert status == 201 and "/operations/" in headers["Azure-AsyncOperation"]
    assert answer["properties"]["provisioningState"] == "Updating"
    assert [op["status"] for op in operations(emu) if op["resource_id"].lower() == nic_id.lower()] in (["InProgress"], ["Succeeded"])

    # The adapter's poller follows the operation to Succeeded; the IP is associated once it has.
    doc = await backend.put_nic(nic_id + "-2", request(pips[1]["id"]))
    assert doc["properties"]["provisioningState"] == "Succeeded"
    vocabulary = key_paths(spec["responses"]["201"]["body"]) | key_paths(spec["responses"]["200"]["body"])
    extras = {"tags", "etag", "properties.resourceGuid"}
    assert sorted(p for p in key_paths(doc) if p not in vocabulary and p not in extras) == []
    held = await backend.get_public_ip_document(pips[1]["id"])
    assert held["properties"]["ipConfiguration"]["id"].lower() == f"{nic_id}-2/ipConfigurations/ipconfig1".lower()
    assert (await backend.get_nic(nic_id))["properties"]["provisioningState"] == "Succeeded"
    # An update answers 200, still long-running.
    status, headers, answer = put_with_headers(emu, nic_id, request(pips[0]["id"]))
    assert status == 200 and "Azure-AsyncOperation" in headers and answer["properties"]["provisioningState"] == "Updating"


async def test_a_nic_put_whose_operation_fails_leaves_the_nic_and_its_ip_as_they_were(emu, backend):
    vm = vm_doc(emu, "legacy-app-01")["doc"]
    nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    nic = await backend.get_nic(nic_id)
    pip = pip_of(emu, "legacy-app-01")
    bare = json.loads(json.dumps(nic))
    bare["properties"]["ipConfigurations"][0]["properties"].pop("publicIPAddress")
    fault = {"lro_result": "Failed", "lro_error": {"code": "InternalServerError", "message": "An error occurred."}, "count": 1}
    emulator_control(emu, "POST", "/_emulator/faults", dict(fault, match=f"/networkInterfaces/{nic['name']}", method="PUT"))
    try:
        with pytest.raises(BackendError):
            await backend.put_nic(nic_id, bare)
    finally:
        emulator_control(emu, "DELETE", "/_emulator/faults")
    after = await backend.get_nic(nic_id)
    assert after["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"].lower() == pip["id"].lower()
    assert after["properties"]["provisioningState"] == "Succeeded"
    kept = await backend.get_public_ip_document(pip["id"])
    assert kept["properties"]["ipAddress"] == pip["properties"]["ipAddress"] and "ipConfiguration" in kept["properties"]


async def test_a_public_ip_another_nic_holds_cannot_be_taken(emu, backend):
    taken = pip_of(emu, "legacy-app-01")
    nic_id = vm_doc(emu, "legacy-ftp-01")["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    nic = await backend.get_nic(nic_id)
    nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {"id": taken["id"]}
    with pytest.raises(BackendError) as caught:
        await backend.put_nic(nic_id, nic)
    assert caught.value.status == 400 and caught.value.code == "PublicIPAddressInUse"


async def test_read_only_refuses_every_new_write_before_any_request(emu):
    b = AzureBackend(demo_settings(emu, read_only=True), retry_total=0)
    try:
        conn = connection(emu)
        for call in (
            b.reset_vpn_connection(conn["id"]),
            b.reset_vpn_gateway(conn["properties"]["virtualNetworkGateway1"]["id"]),
            b.put_public_ip(pip_of(emu, "rdgw-shared-01")["id"], {"location": "northeurope"}),
        ):
            with pytest.raises(BackendError) as caught:
                await call
            assert caught.value.code == "ReadOnly"
    finally:
        await b.close()
