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
from datetime import UTC
from pathlib import Path

import pytest

from backend import mapping
from backend.azure.join import join_subscription

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples"

# Example files by the resource type they describe.
BY_TYPE = {
    "vm": [
        "compute/VirtualMachine_Get.json",
        "compute/VirtualMachine_ListAll_MinimumSet_Gen.json",
        "compute/VirtualMachine_Create_WithDataDisksFromSourceResource.json",
        "compute/VirtualMachine_Update_DetachDataDiskUsingToBeDetachedProperty.json",
    ],
    "instance_view": ["compute/VirtualMachine_Get_InstanceView.json"],
    "availability_set": ["compute/AvailabilitySet_Get_MaximumSet_Gen.json"],
    "disk": ["compute/Disk_Get.json", "compute/Disk_Create_ByCopyingASnapshot.json"],
    "load_balancer": ["network/LoadBalancerGet.json"],
    "nic": ["network/NetworkInterfaceGet.json", "network/NetworkInterfaceListAll.json"],
    "nsg": ["network/NetworkSecurityGroupGet.json"],
    "public_ip": ["network/PublicIpAddressGet.json", "network/PublicIpAddressListAll.json"],
    "availability_status": ["resourcehealth/AvailabilityStatus_GetByResource.json", "resourcehealth/AvailabilityStatuses_ListBySubscriptionId.json"],
    "event": ["resourcehealth/Events_ListBySubscriptionId.json"],
    "impacted_resource": ["resourcehealth/ImpactedResources_ListBySubscriptionId_ListByEventId.json"],
}

# REST-spec properties the emulator's documents carry that none of the examples
# above show (checked against the Compute/Network/ResourceHealth specifications).
SPEC_EXTRAS = {
    "vm": {
        "zones",
        "properties.osProfile.allowExtensionOperations",
        "properties.osProfile.requireGuestProvisionSignal",
        "properties.osProfile.secrets",
        "properties.osProfile.linuxConfiguration",
        "properties.osProfile.windowsConfiguration",
        "properties.storageProfile.diskControllerType",
        "properties.storageProfile.imageReference.exactVersion",
        "properties.storageProfile.osDisk.vhd",
        "properties.storageProfile.osDisk.vhd.uri",
        "properties.storageProfile.osDisk.diffDiskSettings",
        "properties.storageProfile.dataDisks[].vhd",
        "properties.storageProfile.dataDisks[].vhd.uri",
        "properties.storageProfile.dataDisks[].writeAcceleratorEnabled",
        "properties.additionalCapabilities",
        "properties.licenseType",
        "properties.priority",
        "properties.evictionPolicy",
        "properties.billingProfile",
        "properties.virtualMachineScaleSet",
        "properties.availabilitySet",
        "properties.securityProfile",
        "resources[].properties.enableAutomaticUpgrade",
        "properties.instanceView",
        # deleteOption (min api 2021-03-01): none of the examples sets it (see the examples' README).
        "properties.storageProfile.osDisk.deleteOption",
        "properties.storageProfile.dataDisks[].deleteOption",
        "properties.networkProfile.networkInterfaces[].properties",
    },
    "disk": {
        "zones",
        "properties.diskIOPSReadWrite",
        "properties.diskMBpsReadWrite",
        "properties.diskSizeBytes",
        "properties.diskState",
        "properties.networkAccessPolicy",
        "properties.publicNetworkAccess",
        "properties.supportedCapabilities",
        "properties.tier",
        "properties.uniqueId",
        "properties.securityProfile",
        "properties.managedBy",
        "managedBy",
        "sku.tier",
        "properties.encryption",
    },
    "load_balancer": {
        "properties.outboundRules",
        "sku.tier",
        "properties.frontendIPConfigurations[].properties.publicIPAddress",
        "properties.backendAddressPools[].properties.backendIPConfigurations",
        "properties.inboundNatRules[].properties.backendIPConfiguration",
    },
    "nic": {
        "properties.nicType",
        "properties.resourceGuid",
        "properties.ipConfigurations[].type",
        "properties.ipConfigurations[].properties.loadBalancerBackendAddressPools",
        "properties.ipConfigurations[].properties.loadBalancerInboundNatRules",
        "properties.ipConfigurations[].properties.publicIPAddress.properties",
        "properties.virtualMachine",
        "properties.networkSecurityGroup",
    },
    "nsg": {
        "properties.networkInterfaces",
        "properties.subnets",
        "properties.resourceGuid",
        "properties.securityRules[].properties.destinationPortRanges",
        "properties.securityRules[].properties.sourcePortRanges",
        "properties.securityRules[].properties.sourceAddressPrefixes",
        "properties.securityRules[].properties.destinationAddressPrefixes",
    },
    "public_ip": {
        "zones",
        "sku",
        "properties.ipAddress",
        "properties.dnsSettings",
        "properties.ipTags",
        "properties.resourceGuid",
        "properties.deleteOption",
        "properties.ipConfiguration",
    },
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
        "impacted_resource": health.EventImpactedResource,
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
    # An impacted resource names its target; the entry that carries only 'info' names none.
    targets = [mapping.impacted_target(d) for d in docs["impacted_resource"]]
    assert targets[0].endswith("/virtualMachines/testvm") and None in targets


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
        "availability_status": [
            vm + "/providers/Microsoft.ResourceHealth/availabilityStatuses/current?$expand=recommendedactions",
            f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/availabilityStatuses?$expand=recommendedactions",
        ],
        "event": [f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/events"],
        "impacted_resource": [f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/events/7T2K-LQ8/impactedResources"],
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


# --- 3. ARM's time forms -------------------------------------------------------------


def test_boot_diagnostics_are_shared_by_setting_and_an_odd_storage_uri_still_maps():
    """VMs with the same boot-diagnostics setting share one object; a storageUri that is not a
    string (not what ARM sends, but a tenant's document is not trusted) maps as it is rather
    than failing the VM's subscription."""
    import copy

    vm = next(d for d in example_docs("vm") if "id" in d)
    docs = []
    for n, uri in enumerate(["https://diag.blob.core.windows.net/", "https://diag.blob.core.windows.net/", {"odd": 1}, ["x"], None]):
        doc = copy.deepcopy(vm)
        doc["id"] = f"{doc['id']}-{n}"
        doc.setdefault("properties", {})["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": True, "storageUri": uri}}
        docs.append(doc)
    found = [mapping.virtual_machine(d, None, disks={}, nics={}, public_ips={}, subnet_nsg={}, health=None).boot_diagnostics for d in docs]
    assert found[0] is found[1] and found[0].storage_uri == "https://diag.blob.core.windows.net/"
    assert found[2].storage_uri == {"odd": 1} and found[3].storage_uri == ["x"]
    assert found[4].enabled and found[4].managed_storage


def test_a_time_read_again_is_the_same_and_past_the_kept_ones_still_right():
    """parse_time keeps what it read by its text (a list's times repeat): the same text gives
    one object, and once more texts than it keeps have come, each still reads right."""
    from datetime import datetime, timedelta

    first = mapping.parse_time("2026-12-07T05:28:00Z")
    assert mapping.parse_time("2026-12-07T05:28:00Z") is first
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(mapping._TIMES_KEPT * 2 + 3):
        at = start + timedelta(minutes=n)
        assert mapping.parse_time(at.strftime("%Y-%m-%dT%H:%M:%SZ")) == at
    assert mapping.parse_time("2026-12-07T05:28:00Z") == first
    assert mapping.parse_time("not a time") is None and mapping.parse_time("not a time") is None


def test_every_arm_time_form_parses_timezone_aware():
    from datetime import datetime

    seven = mapping.parse_time("2026-12-07T05:28:00.0000000+00:00")
    assert seven == datetime(2026, 12, 7, 5, 28, tzinfo=UTC)
    assert mapping.parse_time("2026-12-07T07:28:00.1234567+02:00") == datetime(2026, 12, 7, 5, 28, 0, 123456, tzinfo=UTC)
    assert mapping.parse_time("2026-12-07T05:28:00Z") == seven
    assert mapping.parse_time("2026-12-07T05:28:00") == seven  # no offset: UTC
    assert mapping.parse_time("2026-12-07T05:28:00.5") == datetime(2026, 12, 7, 5, 28, 0, 500000, tzinfo=UTC)
    assert mapping.parse_time("not a time") is None and mapping.parse_time("") is None
    # Every time in the official instance-view example comes back aware and in the same instant.
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key.lower().endswith("time"):
                    found.append((value, mapping.parse_time(value)))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in example_docs("instance_view"):
        walk(doc)
    assert len(found) >= 5
    for text, parsed in found:
        assert parsed is not None and parsed.tzinfo is not None, text
        assert parsed.isoformat()[:19] == text[:19]


def test_a_perform_maintenance_plan_reads_seven_digit_windows():
    import dataclasses
    from datetime import datetime

    from backend.models import Disk, Vm
    from backend.recovery.scenarios.power import TABLE

    perform_maintenance = TABLE["perform-maintenance"]

    maintenance = mapping.maintenance(
        {
            "maintenanceRedeployStatus": {
                "isCustomerInitiatedMaintenanceAllowed": False,
                "preMaintenanceWindowStartTime": "2026-12-07T05:28:00.0000000+00:00",
                "preMaintenanceWindowEndTime": "2026-12-14T05:28:00.0000000+00:00",
                "maintenanceWindowStartTime": "2026-12-16T05:28:00.0000000+00:00",
                "maintenanceWindowEndTime": "2026-12-18T05:28:00.0000000+00:00",
            }
        }
    )
    assert maintenance.window_start.tzinfo is not None
    vm = Vm(
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v",
        "v",
        "s",
        "g",
        "westeurope",
        "Standard_D2s_v5",
        "Linux",
        "running",
        "Succeeded",
        Disk("os", None, None, False, "Detach"),
        maintenance=maintenance,
    )
    before = datetime(2026, 12, 6, 5, 32, tzinfo=UTC)
    reason = perform_maintenance.unavailable(vm, before)
    assert reason and "opens at 2026-12-07 05:28 UTC (in 23h 56m)" in reason
    inside = datetime(2026, 12, 8, tzinfo=UTC)
    assert "isCustomerInitiatedMaintenanceAllowed is false" in perform_maintenance.unavailable(vm, inside)
    allowed = dataclasses.replace(vm, maintenance=dataclasses.replace(maintenance, self_service_allowed=True))
    assert perform_maintenance.unavailable(allowed, inside) is None
    # Azure's answer decides, not this machine's clock (which may be off Azure's): the window's
    # times only say why Azure refuses it.
    after = datetime(2026, 12, 15, tzinfo=UTC)
    assert perform_maintenance.unavailable(allowed, after) is None
    assert "closed at 2026-12-14 05:28 UTC" in perform_maintenance.unavailable(vm, after)
