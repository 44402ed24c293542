"""What a VM's disks can be restored from (backend.recovery.sources.restore_sources), read through
the real adapter: the snapshots of its own disks and its restore points, newest first, each saying
which disk (os or LUN) it holds and what a new disk of it is made from; another VM's snapshots and
restore points are not offered; a restore point that failed is listed, not ready."""

from __future__ import annotations

import asyncio

from backend.recovery import service
from backend.recovery.sources import RESTORE_POINT, SNAPSHOT, restore_sources
from tests.recovery_support import arm_request, vm_doc
from tests.rescue_support import fault

VM = "sql-prod-01"  # an OS disk and data disks at LUN 0 and 1


async def sources_of(rig, name: str):
    facts = await service.read_vm(rig.backend, await service.find_vm(rig.backend, name))
    return facts.vm, await restore_sources(rig.backend, facts.vm)


async def test_snapshots_and_restore_points_of_the_vm_newest_first(rig):
    vm, none = await sources_of(rig, VM)
    assert none == []
    _, snapped = await rig.run(VM, "snapshot-disks")
    assert snapped.status == "succeeded", snapped.summary
    await rig.run("web-prod-03", "snapshot-disks")  # another VM's snapshots are not offered
    _, taken = await rig.run(VM, "restore-point", {"consistency": "crash"})
    assert taken.status == "succeeded", taken.summary
    _, sources = await sources_of(rig, VM)
    assert [s.kind for s in sources] == [RESTORE_POINT, SNAPSHOT, SNAPSHOT, SNAPSHOT]
    point = sources[0]
    assert point.ready and point.consistency == "CrashConsistent" and point.id.endswith(f"/restorePoints/{point.name}")
    assert [d.disk for d in point.disks] == ["os", "0", "1"]
    assert point.disk("os").disk_id.lower() == vm.os_disk.id.lower() and "/diskRestorePoints/" in point.disk("os").source_id
    assert point.disk("lun1").disk_name == next(d.name for d in vm.disks if d.lun == 1)
    assert point.label.startswith(f"restore point {point.name} · ") and point.label.endswith("crash-consistent · OS disk, LUN 0, LUN 1")
    snaps = {s.disks[0].disk: s for s in sources[1:]}
    assert set(snaps) == {"os", "0", "1"} and snaps["0"].disk("0").source_id == snaps["0"].id and snaps["0"].disk("os") is None
    assert all(s.created is not None for s in sources)


async def test_a_failed_restore_point_is_listed_but_not_ready(rig):
    vm_id = vm_doc(rig.emu, "qa-win-01")["doc"]["id"]
    rpc = vm_id.split("/providers/")[0] + "/providers/Microsoft.Compute/restorePointCollections/rpc-qa"
    assert arm_request(rig.emu, "PUT", rpc, {"location": "eastus", "properties": {"source": {"id": vm_id}}})[0] == 201
    fault(rig.emu, {"match": "/restorePoints/rp1", "method": "PUT", "lro_result": "Failed", "count": 1})
    assert arm_request(rig.emu, "PUT", rpc + "/restorePoints/rp1", {"properties": {"consistencyMode": "CrashConsistent"}})[0] == 201
    for _ in range(100):  # the operation's nominal minute, accelerated
        _, sources = await sources_of(rig, "qa-win-01")
        if sources and sources[0].state != "creating":
            break
        await asyncio.sleep(0.1)
    (point,) = sources
    assert point.state == "failed" and not point.ready and point.label.endswith(" · failed") and point.name == "rp1"
