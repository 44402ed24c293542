"""Conformance of restore sources with Azure's official REST examples (tests/data/azure-rest-examples,
see its README): a restore point collection read with its restore points (``$expand=restorePoints``)
and a disk restore point.

1. The restore sources read the example, raw and as the SDK model the client returns: its restore
   point holds the VM's OS disk and the data disk at LUN 1, each with its disk restore point id
   (what a disk is restored from, createOption Restore), and leaves the excluded disk out.
2. The emulator's answers for the same routes use the keys of the examples (or of the REST
   specification, listed below, that these examples happen not to show)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.azure.operations import to_wire
from backend.models import Disk, Vm
from backend.recovery.sources import RESTORE_POINT, restore_point_source
from tests.recovery_support import arm_request, resources
from tests.test_conformance import allowed, key_paths

EXAMPLES = Path(__file__).parent / "data" / "azure-rest-examples" / "compute"
COLLECTION = "RestorePointCollection_Get_WithContainedRestorePoints.json"
DISK_POINT = "DiskRestorePoint_Get.json"
DISKS = "/subscriptions/{subscription-id}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/disks/"

# DiskRestorePoint properties of the REST specification (DiskRP 2025-01-02) the Get example does not show.
DISK_POINT_EXTRAS = {
    "type",
    "properties.completionPercent",
    "properties.replicationState",
    "properties.sourceResourceLocation",
    "properties.supportedCapabilities",
}
# Restore point properties of the specification the collection example does not show.
COLLECTION_EXTRAS = {
    "properties.restorePoints[].type",
    "properties.restorePoints[].properties.sourceMetadata.securityProfile",
    "properties.restorePoints[].properties.sourceMetadata.storageProfile.osDisk.diskSizeGB",
    "properties.restorePoints[].properties.sourceMetadata.storageProfile.dataDisks[].diskSizeGB",
    "properties.restorePoints[].properties.sourceMetadata.storageProfile.dataDisks[].writeAcceleratorEnabled",
}


def body(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())["responses"]["200"]["body"]


def example_vm() -> Vm:
    """The example's VM (myVM) with the two disks its restore point captured, and a third it excluded."""
    rg = "/subscriptions/{subscription-id}/resourceGroups/myResourceGroup"
    os_name = "testingexcludedisk_OsDisk_1_74cdaedcea50483d9833c96adefa100f"
    return Vm(
        id=f"{rg}/providers/Microsoft.Compute/virtualMachines/myVM",
        name="myVM",
        subscription_id="{subscription-id}",
        resource_group="myResourceGroup",
        location="westus",
        size="Standard_B1s",
        os_type="Windows",
        power_state="running",
        provisioning_state="Succeeded",
        os_disk=Disk(name=os_name, id=DISKS + os_name, sku="Standard_LRS", managed=True, delete_option="Detach"),
        data_disks=(
            Disk(
                name="testingexcludedisk_DataDisk_1",
                id=DISKS + "testingexcludedisk_DataDisk_1",
                sku="Standard_LRS",
                managed=True,
                delete_option="Detach",
                lun=1,
            ),
            Disk(name="excluded", id=DISKS + "vm8768_disk2_fe6ffde4f69b491ca33fb984d5bcd89f", sku="Standard_LRS", managed=True, delete_option="Detach", lun=2),
        ),
    )


@pytest.mark.parametrize("as_model", [False, True], ids=["raw", "sdk-model"])
def test_the_restore_sources_read_the_examples(as_model):
    from azure.mgmt.compute import models

    collection, disk_point = body(COLLECTION), body(DISK_POINT)
    if as_model:
        collection = to_wire(models.RestorePointCollection(collection))
        disk_point = to_wire(models.DiskRestorePoint(disk_point))
    (point,) = collection["properties"]["restorePoints"]
    source = restore_point_source(point, example_vm())
    assert source is not None and source.kind == RESTORE_POINT and source.ready and source.name == "restorePointName"
    assert source.consistency == "ApplicationConsistent" and source.created is not None and source.created.year == 2021
    assert [d.disk for d in source.disks] == ["os", "1"] and source.disk("lun2") is None  # the excluded disk is not held
    assert source.disk("os").source_id.endswith(
        "/diskRestorePoints/testingexcludedisk_OsDisk_1_74cdaedcea50483d9833c96adefa100f_22b4bdfe-6c54-4f72-84d8-85d8860f0c57"
    )
    assert source.label == "restore point restorePointName · 2021-01-27 20:35 UTC · application-consistent · OS disk, LUN 1"
    # A disk restore point names the disk it captured: what restore-disk checks a source against.
    assert disk_point["properties"]["sourceResourceId"].endswith("/disks/TestDisk45ceb03433006d1baee0")


async def test_the_emulator_answers_with_the_examples_keys(rig):
    _, result = await rig.run("sql-prod-01", "restore-point", {"consistency": "crash"})
    assert result.status == "succeeded", result.summary
    (collection,) = [c for c in resources(rig.emu, "Microsoft.Compute/restorePointCollections") if c["name"] == "rpc-sql-prod-01"]
    status, expanded = arm_request(rig.emu, "GET", collection["id"] + "?$expand=restorePoints")
    assert status == 200 and len(expanded["properties"]["restorePoints"]) == 1
    vocab = key_paths(body(COLLECTION))
    wrong = sorted(p for p in key_paths(expanded) if not allowed(p, vocab, COLLECTION_EXTRAS))
    assert not wrong, wrong
    status, plain = arm_request(rig.emu, "GET", collection["id"])
    assert status == 200 and "restorePoints" not in plain["properties"]  # only when expanded, as Azure
    drp_id = expanded["properties"]["restorePoints"][0]["properties"]["sourceMetadata"]["storageProfile"]["osDisk"]["diskRestorePoint"]["id"]
    status, drp = arm_request(rig.emu, "GET", drp_id)
    assert status == 200 and drp["id"] == drp_id
    wrong = sorted(p for p in key_paths(drp) if not allowed(p, key_paths(body(DISK_POINT)), DISK_POINT_EXTRAS))
    assert not wrong, wrong
    status, listed = arm_request(rig.emu, "GET", drp_id.rsplit("/", 1)[0])
    assert status == 200 and len(listed["value"]) == 3  # DiskRestorePoint_ListByRestorePoint: every disk of sql-prod-01
