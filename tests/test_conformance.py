"""Conformance with Azure's official REST examples (tests/data/azure-rest-examples,
copied from Azure's public REST specifications; see its README).

1. Every example of a route aztriage reads goes through the adapter's mapping
   without error, both as raw JSON and as the SDK model the client returns.
2. The emulator's response for the same route uses the keys of the official
   examples: every key path it sends is one the examples of that resource
   type use (in a response or a request body), or one of the few REST-spec
   properties listed below that these particular examples happen not to show.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from backend.azure import mapping
from backend.azure.join import join_subscription

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples"

# Example files by the resource type they describe.
BY_TYPE = {
    "vm": ["compute/VirtualMachine_Get.json", "compute/VirtualMachine_ListAll_MinimumSet_Gen.json", "compute/VirtualMachine_Create_WithDataDisksFromSourceResource.json", "compute/VirtualMachine_Update_DetachDataDiskUsingToBeDetachedProperty.json"],
    "instance_view": ["compute/VirtualMachine_Get_InstanceView.json"],
    "availability_set": ["compute/AvailabilitySet_Get_MaximumSet_Gen.json"],
    "disk": ["compute/Disk_Get.json", "compute/Disk_Create_ByCopyingASnapshot.json"],
    "load_balancer": ["network/LoadBalancerGet.json"],
    "nic": ["network/NetworkInterfaceGet.json", "network/NetworkInterfaceListAll.json"],
    "nsg": ["network/NetworkSecurityGroupGet.json"],
    "public_ip": ["network/PublicIpAddressGet.json", "network/PublicIpAddressListAll.json"],
    "availability_status": ["resourcehealth/AvailabilityStatus_GetByResource.json", "resourcehealth/AvailabilityStatuses_ListBySubscriptionId.json"],
    "event": ["resourcehealth/Events_ListBySubscriptionId.json"],
}

# REST-spec properties the emulator's documents carry that none of the examples
# above show (checked against the Compute/Network/ResourceHealth specifications).
SPEC_EXTRAS = {
    "vm": {
        "zones", "properties.osProfile.allowExtensionOperations", "properties.osProfile.requireGuestProvisionSignal",
        "properties.osProfile.secrets", "properties.osProfile.linuxConfiguration", "properties.osProfile.windowsConfiguration",
        "properties.storageProfile.diskControllerType", "properties.storageProfile.imageReference.exactVersion",
        "properties.storageProfile.osDisk.vhd", "properties.storageProfile.osDisk.vhd.uri", "properties.storageProfile.osDisk.diffDiskSettings",
        "properties.storageProfile.dataDisks[].vhd", "properties.storageProfile.dataDisks[].vhd.uri",
        "properties.storageProfile.dataDisks[].writeAcceleratorEnabled", "properties.additionalCapabilities",
        "properties.licenseType", "properties.priority", "properties.evictionPolicy", "properties.billingProfile",
        "properties.virtualMachineScaleSet", "properties.availabilitySet", "properties.securityProfile", "resources[].properties.enableAutomaticUpgrade",
        "properties.instanceView",
        # deleteOption (min api 2021-03-01): none of the examples sets it (see the examples' README).
        "properties.storageProfile.osDisk.deleteOption", "properties.storageProfile.dataDisks[].deleteOption",
        "properties.networkProfile.networkInterfaces[].properties",
    },
    "disk": {"zones", "properties.diskIOPSReadWrite", "properties.diskMBpsReadWrite", "properties.diskSizeBytes", "properties.diskState", "properties.networkAccessPolicy", "properties.publicNetworkAccess", "properties.supportedCapabilities", "properties.tier", "properties.uniqueId", "properties.securityProfile", "properties.managedBy", "managedBy", "sku.tier", "properties.encryption"},
    "load_balancer": {"properties.outboundRules", "sku.tier", "properties.frontendIPConfigurations[].properties.publicIPAddress", "properties.backendAddressPools[].properties.backendIPConfigurations", "properties.inboundNatRules[].properties.backendIPConfiguration"},
    "nic": {"properties.nicType", "properties.resourceGuid", "properties.ipConfigurations[].type", "properties.ipConfigurations[].properties.loadBalancerBackendAddressPools", "properties.ipConfigurations[].properties.loadBalancerInboundNatRules", "properties.ipConfigurations[].properties.publicIPAddress.properties", "properties.virtualMachine", "properties.networkSecurityGroup"},
    "nsg": {"properties.networkInterfaces", "properties.subnets", "properties.resourceGuid", "properties.securityRules[].properties.destinationPortRanges", "properties.securityRules[].properties.sourcePortRanges", "properties.securityRules[].properties.sourceAddressPrefixes", "properties.securityRules[].properties.destinationAddressPrefixes"},
    "public_ip": {"zones", "sku", "properties.ipAddress", "properties.dnsSettings", "properties.ipTags", "properties.resourceGuid", "properties.deleteOption", "properties.ipConfiguration"},
    "event": {"properties.additionalInformation", "properties.platformInitiated", "properties.reason", "properties.impact[].impactedRegions[].updates"},
}


def key_paths(obj, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            if key != "tags":  # free-form
                out |= key_paths(value, path)
    elif isinstance(obj, list):
        for value in obj:
            out |= key_paths(value, prefix + "[]")
    return out


def items_of(example: dict) -> list[dict]:
    """The resource documents an example shows: response bodies (list items too) and request bodies."""
    docs = []
    for response in example.get("responses", {}).values():
        body = response.get("body")
        if isinstance(body, dict):
            docs.extend(body["value"] if isinstance(body.get("value"), list) else [body])
    for value in example.get("parameters", {}).values():
        if isinstance(value, dict) and ("properties" in value or "location" in value):
            docs.append(value)
    return docs


def vocabulary(kind: str) -> set[str]:
    vocab: set[str] = set()
    for name in BY_TYPE[kind]:
        for doc in items_of(json.loads((EXAMPLES / name).read_text())):
            vocab |= key_paths(doc)
    return vocab


def allowed(path: str, vocab: set[str], extras: set[str]) -> bool:
    return path in vocab or any(path == e or path.startswith(e + ".") or path.startswith(e + "[]") for e in extras)


def example_docs(kind: str) -> list[dict]:
    return [doc for name in BY_TYPE[kind] for doc in items_of(json.loads((EXAMPLES / name).read_text()))]


# --- 1. the mapping takes every example -------------------------------------------


def sdk_models(kind: str, docs: list[dict]) -> list:
    from azure.mgmt.compute import models as compute
    from azure.mgmt.network import models as network
    from azure.mgmt.resourcehealth import models as health

    cls = {
        "vm": compute.VirtualMachine,
        "instance_view": compute.VirtualMachineInstanceView,
        "availability_set": compute.AvailabilitySet,
        "disk": compute.Disk,
        "load_balancer": network.LoadBalancer,
        "nic": network.NetworkInterface,
        "nsg": network.NetworkSecurityGroup,
        "public_ip": network.PublicIPAddress,
        "availability_status": health.AvailabilityStatus,
        "event": health.Event,
    }[kind]
    return [cls(d) for d in docs]


@pytest.mark.parametrize("as_model", [False, True], ids=["raw", "sdk-model"])
def test_every_read_example_maps(as_model):
    docs = {kind: example_docs(kind) for kind in BY_TYPE}
    if as_model:
        docs = {kind: sdk_models(kind, d) for kind, d in docs.items()}
    sub = "00000000-0000-0000-0000-000000000000"
    joined = join_subscription(
        sub,
        {
            "vms": [d for d in docs["vm"] if "id" in d],
            "vm_status": [],
            "disks": [d for d in docs["disk"] if "id" in d],
            "availability_sets": docs["availability_set"],
            "nics": docs["nic"],
            "public_ips": docs["public_ip"],
            "nsgs": docs["nsg"],
            "load_balancers": docs["load_balancer"],
            "vnets": [],
            "health": docs["availability_status"],
            "events": docs["event"],
        },
    )
    vm = next(v for v in joined.vms if v.name == "myVM")
    assert vm.size == "Standard_DS3_v2"
    assert vm.os_disk.name and vm.data_disks
    assert joined.nsgs and all(n.default_rules for n in joined.nsgs.values())
    assert any(lb.inbound_nat_rules for lb in joined.load_balancers.values())
    assert any(p.ip_address for p in joined.public_ips.values())
    assert joined.events and joined.events[0].type == "ServiceIssue" and joined.events[0].regions
    for doc in docs["instance_view"]:
        power, provisioning = mapping.power_and_provisioning(doc, None)
        assert power == "running" and provisioning == "Succeeded"
        assert mapping.agent_status(doc)[0] == "Ready"
    for doc in docs["availability_status"]:
        status = mapping.health_status(doc)
        assert status.availability_state in ("Available", "Unavailable", "Degraded", "Unknown")
        # The examples' ids are placeholders ("<resourceId>/providers/..."); the target is what precedes the RH suffix.
        assert not mapping.health_target_id(doc).lower().endswith("/current")
    for doc in docs["nic"]:
        nic = mapping.network_interface(doc, "Detach", True, joined.public_ips, {})
        assert nic.private_ips


# --- 2. the emulator speaks with the same keys ------------------------------------


def _get(emu, path: str) -> dict:
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    sep = "&" if "?" in path else "?"
    req = urllib.request.Request(f"{emu.endpoint}{path}{sep}api-version=2026-04-01", headers={"Authorization": "Bearer conformance"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.load(resp)


def _first(store, rtype: str, name: str | None = None) -> str:
    for doc in store.resources.values():
        if doc.get("type", "").lower() == rtype.lower() and (name is None or doc.get("name") == name):
            return doc["id"]
    raise AssertionError(f"no {rtype} in the demo estate")


@pytest.mark.parametrize("kind", [k for k in BY_TYPE if k != "availability_status"] + ["availability_status"])
def test_emulator_uses_the_examples_keys(emulator, kind):
    store = emulator.store
    vm = _first(store, "Microsoft.Compute/virtualMachines", "web-prod-01")
    sub = vm.split("/")[2]
    requests = {
        "vm": [vm, f"/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines"],
        "instance_view": [vm + "/instanceView"],
        "availability_set": [_first(store, "Microsoft.Compute/availabilitySets")],
        "disk": [_first(store, "Microsoft.Compute/disks")],
        "load_balancer": [_first(store, "Microsoft.Network/loadBalancers")],
        "nic": [_first(store, "Microsoft.Network/networkInterfaces"), f"/subscriptions/{sub}/providers/Microsoft.Network/networkInterfaces"],
        "nsg": [_first(store, "Microsoft.Network/networkSecurityGroups")],
        "public_ip": [_first(store, "Microsoft.Network/publicIPAddresses"), f"/subscriptions/{sub}/providers/Microsoft.Network/publicIPAddresses"],
        "availability_status": [vm + "/providers/Microsoft.ResourceHealth/availabilityStatuses/current?$expand=recommendedactions", f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/availabilityStatuses?$expand=recommendedactions"],
        "event": [f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/events"],
    }[kind]
    vocab = vocabulary(kind)
    extras = SPEC_EXTRAS.get(kind, set()) | {"tags"}  # every tracked resource may carry tags
    # The examples' own top-level shape is there too.
    for path in requests:
        body = _get(emulator, path)
        docs = body["value"] if isinstance(body.get("value"), list) else [body]
        assert docs
        for doc in docs:
            unknown = sorted(p for p in key_paths(doc) if not allowed(p, vocab, extras))
            assert unknown == [], f"{kind} {path}: keys no official example or spec entry uses: {unknown}"
            core = {"id", "name", "type", "properties"} & {p for p in vocab if "." not in p and "[]" not in p}
            assert core <= set(doc), f"{kind}: missing {core - set(doc)}"
