"""The fault matrix: every fault the emulator can inject, on the inventory, the
health lists and every recovery scenario whose change is one action or one
write (rescue and recreate fail at each of their steps in their own tests), and
429, 500 and a failed long-running operation on each write of backup-now,
restore-point and restore-disk from a restore point, through the real adapter. What an operator must see: every healthy subscription listed and the
failed ones named in one sentence; a recovery that stops at the failing step
with an honest journal, resumes once the fault clears, and never starts an
Azure operation twice."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from backend.azure.backend import AzureBackend
from backend.recovery import journal as J
from backend.recovery import scenarios, service
from backend.recovery.journal import Journal
from backend.recovery.runner import Runner
from tests.recovery_support import ACCELERATION, arm_request, operations, reset, resources, vm_doc
from tests.support import demo_settings, emulator_control, start_emulator


def fault(emu, **spec: Any) -> None:
    emulator_control(emu, "POST", "/_emulator/faults", spec)


def clear_faults(emu) -> None:
    emulator_control(emu, "DELETE", "/_emulator/faults")


@pytest.fixture(scope="module")
def baseline(emu):
    """The subscriptions and VMs of the untouched estate."""

    async def read():
        b = AzureBackend(demo_settings(emu), retry_total=0)
        try:
            return await b.inventory(instance_views=0)
        finally:
            await b.close()

    inv = asyncio.run(read())
    subs = [s.subscription_id for s in inv.subscriptions]
    assert len(subs) >= 2
    by_sub: dict[str, set[str]] = {}
    for vm in inv.vms:
        by_sub.setdefault(vm.subscription_id, set()).add(vm.id.lower())
    return subs, by_sub


# --- inventory and health -------------------------------------------------------------------

# Paths under /subscriptions/{sub}: the inventory's VM list and the Resource Health list.
PATHS = {
    "inventory": "/providers/Microsoft.Compute/virtualMachines",
    "health": "/providers/Microsoft.ResourceHealth/availabilityStatuses",
}

# Faults that outlast the client's retries on one subscription: it is named, the others come back.
PERSISTENT = {
    "429-storm": dict(status=429, retry_after_s=1),
    "500": dict(status=500),
    "503": dict(status=503),
    "403": dict(status=403),
    "reset": dict(reset_connection=True),
    "slow": dict(delay_s=3),
    "malformed-json": dict(malformed_json=True),
}

# Faults the client rides out: nothing is lost and nothing is reported.
TRANSIENT = {
    "429-once": dict(status=429, retry_after_s=1, count=1),
    "500-once": dict(status=500, count=1),
    "503-once": dict(status=503, count=1),
    # aiohttp itself retries an idempotent request once on a dropped connection, so two resets.
    "reset-twice": dict(reset_connection=True, count=2),
    "slow-once": dict(delay_s=3, count=1),
}


async def _inventory(emu, retry_total: int = 1, read_timeout: float = 1.0, **kw):
    b = AzureBackend(demo_settings(emu), retry_total=retry_total, read_timeout=read_timeout)
    try:
        return await b.inventory(**kw)
    finally:
        await b.close()


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("name", list(PERSISTENT))
async def test_a_failing_subscription_is_named_and_every_healthy_one_comes_back(emu, baseline, path, name):
    subs, by_sub = baseline
    victim = subs[1]
    reset(emu)
    fault(emu, match=f"/subscriptions/{victim}{PATHS[path]}", method="GET", count=-1, **PERSISTENT[name])
    try:
        inv = await asyncio.wait_for(_inventory(emu, instance_views=0), 60)
    finally:
        clear_faults(emu)
    assert [e.subscription_id for e in inv.errors] == [victim]
    err = inv.errors[0]
    assert err.message and "\n" not in err.message and "Traceback" not in err.message
    assert len(err.message) < 400
    got = {v.id.lower() for v in inv.vms}
    for sub in subs:
        if sub != victim:
            assert by_sub.get(sub, set()) <= got, f"VMs of healthy subscription {sub} missing"
    assert not (by_sub.get(victim, set()) & got)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("name", list(TRANSIENT))
async def test_a_transient_fault_is_ridden_out_and_nothing_is_lost(emu, baseline, path, name):
    subs, by_sub = baseline
    reset(emu)
    fault(emu, match=f"/subscriptions/{subs[0]}{PATHS[path]}", method="GET", **TRANSIENT[name])
    try:
        inv = await asyncio.wait_for(_inventory(emu, retry_total=3, instance_views=0), 60)
        left = emulator_control(emu, "GET", "/_emulator/faults")
    finally:
        clear_faults(emu)
    assert left == []  # the fault really hit (its count is used up)...
    assert inv.errors == ()  # ...and the client rode it out: nothing lost, nothing reported
    assert {v.id.lower() for v in inv.vms} == set().union(*by_sub.values())


async def test_a_vm_that_vanished_between_list_and_instance_view_stays_listed(emu, baseline):
    subs, by_sub = baseline
    reset(emu)
    doc = vm_doc(emu, "web-prod-01")["doc"]
    fault(emu, match=f"/virtualMachines/{doc['name']}/instanceView", method="GET", status=404, count=-1)
    try:
        inv = await _inventory(emu, instance_views=None)
    finally:
        clear_faults(emu)
    assert inv.errors == ()
    assert {v.id.lower() for v in inv.vms} == set().union(*by_sub.values())
    vm = next(v for v in inv.vms if v.id.lower() == doc["id"].lower())
    assert not vm.instance_view_read  # "not checked", not a crash
    others = [v for v in inv.vms if v.id.lower() != doc["id"].lower() and v.power_state == "running"]
    assert others and all(v.instance_view_read for v in others)


@pytest.mark.parametrize("command", ["inventory", "health"])
@pytest.mark.parametrize("name", ["500", "403", "malformed-json", "reset"])
def test_the_cli_names_the_failed_subscription_without_a_traceback(emu, baseline, capsys, command, name):
    from tui.cli import main

    subs, _ = baseline
    victim = subs[1]
    reset(emu)
    path = PATHS["health" if command == "health" else "inventory"]
    fault(emu, match=f"/subscriptions/{victim}{path}", method="GET", count=-1, **PERSISTENT[name])
    try:
        code = main([command, "--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--auth", "none", "--format", "json"])
    finally:
        clear_faults(emu)
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    assert "Traceback" not in out + err and "unexpected error" not in err
    assert victim in out + err


# --- recovery -----------------------------------------------------------------------------

# The scenarios whose change is one VM action or one snapshot PUT: (VM, scenario, the request
# the fault hits, the operation kind). Rescue and recreate have their own per-step fault tests
# (tests/test_recovery_rescue.py, tests/test_recovery_recreate.py).
RECOVERY = {
    "restart": ("web-prod-01", "restart", "/restart", "restart"),
    "start": ("qa-win-01", "start", "/start", "start"),
    "deallocate": ("web-prod-01", "deallocate", "/deallocate", "deallocate"),
    "redeploy": ("web-prod-02", "redeploy", "/redeploy", "redeploy"),
    "reapply": ("web-prod-02", "reapply", "/reapply", "reapply"),
    "perform-maintenance": ("app-prod-ne-01", "perform-maintenance", "/performMaintenance", "performMaintenance"),
    "run-fix": ("legacy-ftp-01", "run-fix", "/runCommand", None),
    "snapshot-disks": ("web-prod-03", "snapshot-disks", "/snapshots/", None),
    "resize": ("web-prod-03", "resize", "/virtualMachines/web-prod-03", "update"),
    "enable-boot-diagnostics": ("dev-spot-01", "enable-boot-diagnostics", "/virtualMachines/dev-spot-01", "update"),
    "reset-access": ("legacy-ftp-01", "reset-access", "/extensions/", None),
    "disable-nla": ("rdgw-shared-01", "disable-nla", "/runCommand", None),
}
# The write each case's fault hits (POST for a VM action) and the plan's parameters.
METHOD = {"snapshot-disks": "PUT", "resize": "PATCH", "enable-boot-diagnostics": "PATCH", "reset-access": "PUT"}
PARAMS = {"resize": {"size": "Standard_D4s_v5"}}

ACTION_FAULTS = {
    "lro-failed": dict(lro_result="Failed", lro_error={"code": "InternalExecutionError", "message": "The host node failed."}),
    "lro-canceled": dict(lro_result="Canceled"),
    "500-on-action": dict(status=500, count=-1),
}


def _method(scenario: str) -> str:
    return METHOD.get(scenario, "POST")


def _build(scenario: str):
    return lambda f, p: scenarios.build_plan(scenario, f, p)


async def _start(backend, journal, vm_name: str, scenario: str):
    vm_id = await service.find_vm(backend, vm_name)
    plan, facts = await service.make_plan(backend, vm_id, scenario, dict(PARAMS.get(scenario, {})))
    runner = Runner(backend, journal, confirm_name=vm_name)
    return plan, await runner.start(plan, _build(scenario), facts)


def _started_operations(emu, vm_name: str) -> list[dict[str, Any]]:
    vm_id = vm_doc(emu, vm_name)["doc"]["id"].lower()
    return [op for op in operations(emu) if vm_id in json.dumps(op).lower()]


def _write_requests(emu, needle: str, method: str) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator_control(emu, "GET", "/_emulator/requests")
        if r["method"] == method and needle.lower() in r["path"].lower() and r.get("status", 0) < 300
    ]


# Every scenario with every fault: a snapshot whose create ended Failed/Canceled stays in
# Azure in that provisioning state; the resume deletes it (it is in the run's ledger) and
# takes it again.
RECOVERY_CASES = [(c, f) for c in RECOVERY for f in ACTION_FAULTS]


def _snapshots_of(emu, vm_name: str) -> list[dict[str, Any]]:
    return [d for d in resources(emu, "Microsoft.Compute/snapshots") if (d.get("tags") or {}).get("aztriage-vm") == vm_name]


def _state(doc: dict[str, Any]) -> str:
    return (doc.get("properties") or {}).get("provisioningState") or ""


def _failed_snapshot_is_honest(emu, journal, result, vm_name: str, fault_name: str) -> None:
    """The first snapshot's create failed: Azure holds it Failed/Canceled (or nothing, when the
    PUT was refused), the ledger says so, and the summary names it."""
    (first,) = [r for r in journal.resources(result.run_id) if r.kind == "snapshot"]
    name = first.resource_id.rsplit("/", 1)[-1]
    there = {d["name"]: _state(d) for d in _snapshots_of(emu, vm_name)}
    if fault_name == "500-on-action":
        assert first.state == "not-created" and there == {}, (first.state, there)
    else:
        expected = "Canceled" if fault_name == "lro-canceled" else "Failed"
        assert there == {name: expected}, there
        assert first.state == "failed"
        assert f"snapshot {name} (failed)" in result.summary, result.summary


def _one_good_snapshot_per_disk(emu, journal, resumed, vm_name: str, fault_name: str) -> None:
    """After the resume: exactly one Succeeded snapshot per disk, all in the ledger as created;
    only the failed one was deleted, once; no DELETE when nothing was left behind."""
    snaps = _snapshots_of(emu, vm_name)
    disks = vm_doc(emu, vm_name)["doc"]["properties"]["storageProfile"]
    sources = [disks["osDisk"]["managedDisk"]["id"].lower()] + [d["managedDisk"]["id"].lower() for d in disks.get("dataDisks") or ()]
    assert sorted(d["properties"]["creationData"]["sourceResourceId"].lower() for d in snaps) == sorted(sources)
    assert {_state(d) for d in snaps} == {"Succeeded"}
    ledger = [r for r in journal.resources(resumed.run_id) if r.kind == "snapshot"]
    assert sorted(r.resource_id.lower() for r in ledger) == sorted(d["id"].lower() for d in snaps)
    assert {r.state for r in ledger} == {"created"}
    deletes = Counter(r["path"].lower() for r in _write_requests(emu, "/snapshots/", "DELETE"))
    if fault_name == "500-on-action":
        assert deletes == Counter()
    else:
        done = [e["message"] for e in journal.events(resumed.run_id) if e["event"] == "done"]
        assert any("snapshot left by the earlier attempt was deleted first" in m for m in done), done
        (failed,) = [r.resource_id.lower() for r in ledger if r.step_key == "snapshot-os"]  # the one the fault hit
        assert deletes == Counter({failed: 1}), deletes


@pytest.mark.parametrize(("case", "fault_name"), RECOVERY_CASES)
async def test_a_recovery_stops_at_the_failing_step_and_resumes_once_the_fault_clears(emu, tmp_path, case, fault_name):
    vm_name, scenario, needle, kind = RECOVERY[case]
    reset(emu)
    backend = AzureBackend(demo_settings(emu), retry_total=1)
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        fault(emu, match=needle, method=_method(scenario), **ACTION_FAULTS[fault_name])
        plan, result = await _start(backend, journal, vm_name, scenario)
        clear_faults(emu)
        # Honest journal: the run failed at the step whose action failed, the earlier ones are verified,
        # the later ones were never started.
        assert result.status == J.RUN_FAILED, result.summary
        steps = result.record.steps
        failed = [i for i, s in enumerate(steps) if s.state == J.FAILED]
        assert len(failed) == 1, [s.state for s in steps]
        at = failed[0]
        assert at >= 1 and plan.steps[at].run is not None  # the preflight passed; an action step failed
        assert all(s.state in (J.VERIFIED, J.SKIPPED) for s in steps[:at])
        assert all(s.state == J.PENDING for s in steps[at + 1 :])
        assert steps[at].message and "\n" not in steps[at].message
        assert f"step {at + 1}" in result.summary
        assert journal.get_run(result.run_id).status == J.RUN_FAILED
        if scenario == "snapshot-disks":
            _failed_snapshot_is_honest(emu, journal, result, vm_name, fault_name)
        accepted_before = len(_write_requests(emu, needle, _method(scenario)))

        resumed = await Runner(backend, journal, confirm_name=vm_name).resume(result.run_id, lambda s, f, p: scenarios.build_plan(s, f, p))
        assert resumed.status == J.RUN_SUCCEEDED, resumed.summary
        assert all(s.state in (J.VERIFIED, J.SKIPPED) for s in resumed.record.steps)
        accepted = Counter(r["path"].lower() for r in _write_requests(emu, needle, _method(scenario)))
        # Nothing done twice: an action Azure refused (500) started nothing, so it is sent once
        # in all; one that ran and ended Failed/Canceled is started again once, never more.
        if fault_name == "500-on-action":
            assert accepted_before == 0
            assert set(accepted.values()) == {1}, accepted
        else:
            assert sum(accepted.values()) <= len(accepted) + 1 and max(accepted.values()) <= 2, accepted
        if kind is not None:
            ops = [op for op in _started_operations(emu, vm_name) if op.get("kind") == kind]
            expected = 1 if fault_name == "500-on-action" else 2
            assert len(ops) == expected, ops
        if scenario == "snapshot-disks":
            _one_good_snapshot_per_disk(emu, journal, resumed, vm_name, fault_name)
    finally:
        clear_faults(emu)
        await backend.close()
        journal.close()


# --- backup-now, restore-point and restore-disk from a restore point: every write -------------

# Each write of these scenarios: (VM, scenario, the write's method, a path its URL holds, the step
# that sends it, whether Azure runs it as a long-running operation). restore-disk restores the OS
# disk from a restore point taken first (restore-point, before the fault is armed).
RESTORE_WRITES = {
    "backup-now/trigger": ("erp-prod-eus-01", "backup-now", "POST", "/backup", "backup-now", True),
    "restore-point/collection": ("sql-prod-01", "restore-point", "PUT", "/restorePointCollections/", "collection", False),
    "restore-point/restore-point": ("sql-prod-01", "restore-point", "PUT", "/restorePoints/", "restore-point", True),
    "restore-disk/disk": ("web-prod-03", "restore-disk", "PUT", "/Microsoft.Compute/disks/", "restore-copy", True),
    "restore-disk/deallocate": ("web-prod-03", "restore-disk", "POST", "/deallocate", "deallocate", True),
    "restore-disk/swap": ("web-prod-03", "restore-disk", "PATCH", "/virtualMachines/web-prod-03", "swap-os-disk", True),
    "restore-disk/start": ("web-prod-03", "restore-disk", "POST", "/start", "start", True),
}
WRITE_FAULTS = {
    "429": dict(status=429, retry_after_s=1, count=-1),  # throttled past the client's retry
    "500": dict(status=500, count=-1),
    "lro-failed": dict(lro_result="Failed", lro_error={"code": "InternalExecutionError", "message": "The operation failed."}),
}
# A write that is not long-running (the collection's PUT) has no operation to fail.
RESTORE_WRITE_CASES = [(c, f) for c, w in RESTORE_WRITES.items() for f in WRITE_FAULTS if w[5] or not f.startswith("lro")]


@pytest.mark.parametrize(("case", "fault_name"), RESTORE_WRITE_CASES)
async def test_a_backup_or_restore_write_that_fails_stops_there_and_resumes_once_the_fault_clears(emu, tmp_path, monkeypatch, case, fault_name):
    from tests.rescue_support import make_rig

    vm_name, scenario, method, needle, key, _ = RESTORE_WRITES[case]
    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")
    reset(emu)
    rig = await make_rig(emu, tmp_path / "journal.sqlite3")
    try:
        params: dict[str, Any] = {}
        if scenario == "restore-disk":
            _, taken = await rig.run(vm_name, "restore-point", {"consistency": "crash"})
            assert taken.status == J.RUN_SUCCEEDED, taken.summary
            (point,) = [p for p in resources(emu, "Microsoft.Compute/restorePointCollections/restorePoints") if f"/rpc-{vm_name}/" in p["id"].lower()]
            params = {"source": point["name"]}
        plan, facts = await rig.plan(vm_name, scenario, params)
        at = plan.keys.index(key)
        before = len(_write_requests(emu, needle, method))
        fault(emu, match=needle, method=method, **WRITE_FAULTS[fault_name])
        result = await rig.runner(vm_name).start(plan, _build(scenario), facts)
        clear_faults(emu)
        assert result.status == J.RUN_FAILED, result.summary
        states = [s.state for s in result.record.steps]
        assert states[at] == J.FAILED and set(states[:at]) <= {J.VERIFIED, J.SKIPPED} and set(states[at + 1 :]) <= {J.PENDING}, states
        message = result.record.steps[at].message
        assert message and "\n" not in message and "Traceback" not in message and result.summary.startswith(f"stopped at step {at + 1} ")
        refused = len(_write_requests(emu, needle, method)) - before  # writes Azure accepted while the fault was on

        resumed = await rig.resume(result.run_id, vm_name)
        assert resumed.status == J.RUN_SUCCEEDED, resumed.summary
        accepted = Counter(r["path"].lower() for r in _write_requests(emu, needle, method)[before:])
        if fault_name == "lro-failed":  # started, ended Failed, started again once: never a third time
            assert refused >= 1 and max(accepted.values()) <= 2, accepted
        else:  # refused outright: nothing started, so the resume sends it once
            assert refused == 0 and set(accepted.values()) == {1}, accepted
        if scenario == "restore-disk":
            (disk,) = [d for d in resources(emu, "Microsoft.Compute/disks") if "-restored-" in d["name"]]
            assert disk["properties"]["creationData"]["createOption"] == "Restore" and _state(disk) == "Succeeded"
            assert vm_doc(emu, vm_name)["doc"]["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() == disk["id"].lower()
        if scenario == "restore-point":
            # one, taken again if it failed
            (point,) = [p for p in resources(emu, "Microsoft.Compute/restorePointCollections/restorePoints") if f"/rpc-{vm_name}/" in p["id"].lower()]
            assert _state(point) == "Succeeded"
            assert {r.kind: r.state for r in rig.journal.resources(resumed.run_id)} == {"restore-point-collection": "keep", "restore-point": "keep"}
    finally:
        clear_faults(emu)
        await rig.backend.close()
        rig.journal.close()


@pytest.mark.parametrize("lro_result", ["Failed", "Canceled"])
async def test_the_rescue_snapshot_left_failed_is_deleted_and_taken_again_once(emu, tmp_path, monkeypatch, lro_result):
    """The rescue snapshots through the same step: the same honest stop and the same resume."""
    from tests.rescue_support import make_rig

    monkeypatch.setenv("AZTRIAGE_REACH_TIMEOUT", "3")
    reset(emu)
    rig = await make_rig(emu, tmp_path / "journal.sqlite3")
    try:
        plan, facts = await rig.plan("api-dev-01", "rescue", {"run_fixes": True})
        at = plan.keys.index("snapshot-os")
        fault(emu, match="/snapshots/", method="PUT", lro_result=lro_result)
        result = await rig.runner("api-dev-01").start(plan, _build("rescue"), facts)
        clear_faults(emu)
        assert result.status == J.RUN_FAILED, result.summary
        assert [s.state for s in result.record.steps][at - 1 : at + 2] == [J.VERIFIED, J.FAILED, J.PENDING]
        (snap,) = [r for r in rig.journal.resources(result.run_id) if r.kind == "snapshot"]
        name = snap.resource_id.rsplit("/", 1)[-1]
        assert snap.state == "failed" and f"snapshot {name} (failed)" in result.summary, result.summary
        assert {d["name"]: _state(d) for d in _snapshots_of(emu, "api-dev-01")} == {name: lro_result}

        done = await rig.resume(result.run_id, "api-dev-01")
        assert done.status == J.RUN_SUCCEEDED, done.summary
        (good,) = _snapshots_of(emu, "api-dev-01")
        assert good["id"].lower() == snap.resource_id.lower() and _state(good) == "Succeeded"
        assert {r.kind: r.state for r in rig.journal.resources(done.run_id)}["snapshot"] == "keep"
        sid = snap.resource_id.lower()
        kinds = Counter(op["kind"] for op in operations(emu) if op["resource_id"].lower() == sid)
        assert kinds == Counter({"create": 2, "delete": 1}), kinds  # the failed create, its delete, the good create
        assert len(_write_requests(emu, f"/snapshots/{name}", "DELETE")) == 1
        assert len(_write_requests(emu, f"/snapshots/{name}", "PUT")) == 2  # the failed create, and the one after the delete
    finally:
        clear_faults(emu)
        await rig.backend.close()
        rig.journal.close()


@pytest.mark.parametrize("boundary", ["operation", "running"])
async def test_a_resume_killed_while_replacing_the_failed_snapshot_deletes_it_once(emu, tmp_path, boundary):
    from tests.rescue_support import Killed

    reset(emu)
    backend = AzureBackend(demo_settings(emu), retry_total=1)
    journal = Journal(tmp_path / "journal.sqlite3")
    armed = {"on": True}

    def die(where: str, index: int) -> None:
        if armed["on"] and (where, index) == (boundary, 1):  # the first operation of the retry: the delete
            armed["on"] = False
            raise Killed()

    try:
        fault(emu, match="/snapshots/", method="PUT", lro_result="Failed")
        _, result = await _start(backend, journal, "web-prod-03", "snapshot-disks")
        clear_faults(emu)
        assert result.status == J.RUN_FAILED
        with pytest.raises(Killed):
            await Runner(backend, journal, confirm_name="web-prod-03", hook=die).resume(result.run_id, scenarios.build_plan)
        resumed = await Runner(backend, journal, confirm_name="web-prod-03").resume(result.run_id, scenarios.build_plan)
        assert resumed.status == J.RUN_SUCCEEDED, resumed.summary
        _one_good_snapshot_per_disk(emu, journal, resumed, "web-prod-03", "lro-failed")
    finally:
        clear_faults(emu)
        await backend.close()
        journal.close()


async def test_a_failed_snapshot_this_run_did_not_make_is_never_deleted(emu, tmp_path):
    from backend.recovery.scenarios._disks import stamp
    from backend.recovery.scenarios.snapshot_disks import snapshot_name

    reset(emu)
    backend = AzureBackend(demo_settings(emu), retry_total=1)
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        vm_id = await service.find_vm(backend, "web-prod-03")
        plan, facts = await service.make_plan(backend, vm_id, "snapshot-disks", {})
        disk = facts.vm.os_disk
        # Somebody else's snapshot, with the very name this plan uses, left Failed by Azure.
        name = snapshot_name(disk.name, stamp(facts))
        foreign = disk.id.rsplit("/providers/", 1)[0] + f"/providers/Microsoft.Compute/snapshots/{name}"
        fault(emu, match=f"/snapshots/{name}", method="PUT", lro_result="Failed")
        status, _ = arm_request(
            emu, "PUT", foreign, {"location": facts.vm.location, "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}}}
        )
        assert status in (200, 201, 202)
        for _ in range(100):
            states = {d["name"]: _state(d) for d in resources(emu, "Microsoft.Compute/snapshots")}
            if states.get(name) == "Failed":
                break
            await asyncio.sleep(0.02)
        assert states.get(name) == "Failed"
        deletes_before = len(_write_requests(emu, "/snapshots/", "DELETE"))

        runner = Runner(backend, journal, confirm_name="web-prod-03")
        result = await runner.start(plan, _build("snapshot-disks"), facts)
        assert result.status == J.RUN_FAILED, result.summary
        step = result.record.steps[plan.keys.index("snapshot-os")]
        assert step.state == J.FAILED and "was not made by this run" in step.message, step.message
        # Still there, still Failed, never deleted; not taken for this run's own.
        assert {d["name"]: _state(d) for d in resources(emu, "Microsoft.Compute/snapshots")}.get(name) == "Failed"
        assert len(_write_requests(emu, "/snapshots/", "DELETE")) == deletes_before
        assert not [r for r in journal.resources(result.run_id) if r.resource_id.lower() == foreign.lower()]
    finally:
        clear_faults(emu)
        await backend.close()
        journal.close()


async def test_the_emulator_stopping_mid_run_leaves_an_honest_journal_and_the_run_resumes(tmp_path):
    # Slow clock: the redeploy runs long enough to pull the plug while it is in flight.
    first = start_emulator("demo", acceleration=30)
    port = int(first.endpoint.rsplit(":", 1)[1].split("/")[0])
    settings = demo_settings(first)
    journal = Journal(tmp_path / "journal.sqlite3")
    backend = AzureBackend(settings, retry_total=1, read_timeout=3)
    second = None
    try:
        vm_id = await service.find_vm(backend, "web-prod-02")
        plan, facts = await service.make_plan(backend, vm_id, "redeploy", {})
        runner = Runner(backend, journal, confirm_name="web-prod-02")
        task = asyncio.create_task(runner.start(plan, _build("redeploy"), facts))
        for _ in range(300):
            await asyncio.sleep(0.05)
            if any(op.get("kind") == "redeploy" for op in emulator_control(first, "GET", "/_emulator/operations")):
                break
        else:
            pytest.fail("the redeploy never started")
        await asyncio.to_thread(first.stop)
        result = await asyncio.wait_for(task, 60)
        assert result.status == J.RUN_FAILED, result.summary
        states = [s.state for s in result.record.steps]
        assert states[0] == J.VERIFIED and states[1] == J.FAILED and states[2:] == [J.PENDING] * (len(states) - 2)
        assert "Traceback" not in result.summary and "\n" not in result.summary
        await backend.close()

        # The emulator comes back on the same address; the run resumes and ends verified.
        second = start_emulator("demo", acceleration=ACCELERATION, port=port)
        backend = AzureBackend(dataclasses.replace(settings, ca_file=second.ca_file), retry_total=1)
        resumed = await Runner(backend, journal, confirm_name="web-prod-02").resume(result.run_id, lambda s, f, p: scenarios.build_plan(s, f, p))
        assert resumed.status == J.RUN_SUCCEEDED, resumed.summary
        ops = [op for op in emulator_control(second, "GET", "/_emulator/operations") if op.get("kind") == "redeploy"]
        assert len(ops) == 1
    finally:
        await backend.close()
        journal.close()
        if second is not None:
            second.stop()


# --- the console ------------------------------------------------------------------------------------


async def test_the_console_stays_responsive_names_the_failed_subscription_and_recovers(emu, baseline):
    from tests.tui_support import make_app, wait_for, wait_loaded
    from widgets.error_rows import ErrorRows

    subs, by_sub = baseline
    victim = subs[1]
    reset(emu)
    fault(emu, match=f"/subscriptions/{victim}{PATHS['inventory']}", method="GET", status=503, count=-1)
    try:
        app = make_app(emu)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_loaded(pilot)
            assert [e.subscription_id for e in app.inventory.errors] == [victim]
            assert len(app.inventory.vms) == sum(len(v) for s, v in by_sub.items() if s != victim)
            rows = app.screen.query_one(ErrorRows)
            assert any(victim in e or app.subscription_label(victim) in e for e in rows.errors), rows.errors
            # Responsive while a subscription keeps failing: panes switch, a refresh runs.
            await pilot.press("2")
            assert type(app.screen).__name__ == "HealthScreen"
            await pilot.press("1")
            assert type(app.screen).__name__ == "InventoryScreen"
            clear_faults(emu)
            await pilot.press("r")
            await wait_loaded(pilot, 2)
            await wait_for(pilot, lambda: app.inventory.errors == (), what="a clean reload")
            assert {v.id.lower() for v in app.inventory.vms} == set().union(*by_sub.values())
    finally:
        clear_faults(emu)
