"""move-to-zone and move-to-set end to end through the real adapter: Azure's
placement rules in the emulator (zones and sets cannot change in place, a zonal
disk attaches only in its zone, a set's domains), the plans and their refusals,
a VM moved into a zone and one into a new availability set with its NICs, tags,
identity, security profile and extensions, the originals and snapshots kept
until `runs --release`; a failure at each write and a kill at every boundary
(in process, and kill -9 of the CLI) resume to the same end without a duplicate;
the CLI and the Recovery pane."""

from __future__ import annotations

import signal

import pytest

from backend.recovery.plan import PlanError
from backend.recovery.release import release
from backend.recovery.runner import RunRefused
from tests.kill_points import deal, hands, recorded
from tests.recovery_support import arm_request, json_lines, power, resources, vm_doc, writes
from tests.rescue_support import assert_ledger_matches, killed_at, operation_counts, states

VM = "app-prod-ne-02"  # northeurope, no zone or set (the checklist's no-zone-or-set): into zone 1
ZONE = {"zone": "1"}
SET_VM = "sql-prod-02"  # in avset-sql-prod, crowded into fault domain 0 (set-domains): into a new set
NEW_SET = {"availability_set": "avset-sql-prod-b"}


def disk(emu, disk_id: str) -> dict | None:
    return next((d for d in resources(emu, "Microsoft.Compute/disks") if d["id"].lower() == disk_id.lower()), None)


def disk_ids(doc: dict) -> list[str]:
    storage = doc["properties"]["storageProfile"]
    return [storage["osDisk"]["managedDisk"]["id"]] + [d["managedDisk"]["id"] for d in storage.get("dataDisks") or ()]


def moved_ok(rig, result, original: dict, name: str = VM, *, once: bool = True) -> dict:
    """`once`: the VM was deleted and created exactly once (not after a fault that failed one of them)."""
    assert result.status == "succeeded", result.summary
    assert set(states(result)) <= {"verified", "skipped"}, states(result)
    doc = vm_doc(rig.emu, name)["doc"]
    props, was = doc["properties"], original["properties"]
    # The same VM: name, size, NICs, tags, identity type, security profile, boot diagnostics.
    assert doc["name"] == original["name"] and props["hardwareProfile"] == was["hardwareProfile"]
    assert [n["id"] for n in props["networkProfile"]["networkInterfaces"]] == [n["id"] for n in was["networkProfile"]["networkInterfaces"]]
    assert doc.get("tags") == original.get("tags") and (doc.get("identity") or {}).get("type") == (original.get("identity") or {}).get("type")
    assert props.get("securityProfile") == was.get("securityProfile") and props.get("diagnosticsProfile") == was.get("diagnosticsProfile")
    # On copies of its disks; the originals are still there, detached.
    new, old = disk_ids(doc), disk_ids(original)
    assert all(n.lower() != o.lower() for n, o in zip(new, old)) and len(new) == len(old)
    for old_id in old:
        kept = disk(rig.emu, old_id)
        assert kept is not None and not kept.get("managedBy"), old_id
    assert power(rig.emu, name) == "running"
    ledger = {(r.kind, r.state) for r in rig.journal.resources(result.run_id)}
    assert ("moved-disk", "keep") in ledger and ("snapshot", "keep") in ledger and ("disk-copy", "in-use") in ledger
    assert "original disks kept, detached, until released" in result.summary
    assert_ledger_matches(rig.emu, rig.journal, result.run_id)
    counts = operation_counts(rig.emu)
    vm_id = doc["id"].lower()
    if once:
        assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
    return doc


# --- Azure's placement rules in the emulator -------------------------------------------------------


async def test_azure_refuses_a_zone_or_set_changed_in_place_and_a_disk_of_another_zone(rig):
    vm_id = vm_doc(rig.emu, VM)["doc"]["id"]
    status, body = arm_request(rig.emu, "PATCH", vm_id, {"zones": ["1"]})
    assert status == 409 and body["error"]["code"] == "PropertyChangeNotAllowed"
    sql_id = vm_doc(rig.emu, SET_VM)["doc"]["id"]
    other = sql_id.rsplit("/providers/", 1)[0] + "/providers/Microsoft.Compute/availabilitySets/elsewhere"
    status, body = arm_request(rig.emu, "PATCH", sql_id, {"properties": {"availabilitySet": {"id": other}}})
    assert status == 409 and "availabilitySet.id" in body["error"]["message"]
    group = vm_id.rsplit("/providers/", 1)[0]
    status, body = arm_request(
        rig.emu, "PUT", f"{group}/providers/Microsoft.Compute/availabilitySets/bad", {"location": "northeurope", "properties": {"platformFaultDomainCount": 4}}
    )
    assert status == 400 and "platformFaultDomainCount" in body["error"]["message"]
    # A VM created in zone 2 with a disk of zone 3 (web-prod-03's): refused before anything changes.
    web3 = vm_doc(rig.emu, "web-prod-03")["doc"]
    zonal = disk(rig.emu, web3["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"])
    assert zonal["zones"] == ["3"]
    new_vm = web3["id"].rsplit("/", 1)[0] + "/probe-vm"
    status, body = arm_request(
        rig.emu,
        "PUT",
        new_vm,
        {
            "location": "westeurope",
            "zones": ["2"],
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                "storageProfile": {"osDisk": {"createOption": "Attach", "osType": "Linux", "managedDisk": {"id": zonal["id"]}}},
                "networkProfile": {"networkInterfaces": []},
            },
        },
    )
    assert status == 400 and body["error"]["code"] == "BadRequest" and "zone 3" in body["error"]["message"]
    status, body = arm_request(
        rig.emu,
        "PUT",
        new_vm,
        {"location": "westeurope", "zones": ["2"], "properties": {"availabilitySet": {"id": other}, "hardwareProfile": {"vmSize": "Standard_D2s_v5"}}},
    )
    assert status == 400 and "availability set and an availability zone" in body["error"]["message"]


# --- plans and refusals ---------------------------------------------------------------------------


async def test_the_plan_copies_every_disk_into_the_zone_and_keeps_the_originals(rig):
    before = writes(rig.emu)
    plan, _ = await rig.plan(VM, "move-to-zone", ZONE)
    assert plan.keys == [
        "preflight",
        "capture",
        "deallocate",
        "snapshot-os",
        "snapshot-lun0",
        "copy-os",
        "copy-lun0",
        "detach-disks-nics",
        "detach-public-ips",
        "check-kept",
        "delete",
        "create",
        "running",
        "extension-AzureMonitorLinuxAgent",
        "reach-ssh",
        "keep-originals",
    ]
    assert plan.destructive and not plan.blockers
    rows = {what: (b, a) for what, b, a in plan.details}
    assert rows["placement"] == ("none", "zone 1") and rows["OS disk"][1].endswith("(zone 1)")
    assert any("kept, detached, with their snapshots: aztriage runs --release RUN_ID deletes them" in w for w in plan.warnings)
    create = plan.steps[plan.keys.index("create")]
    assert create.title == f"Create {VM} in zone 1 on the copies"
    assert writes(rig.emu) == before


@pytest.mark.parametrize(
    "vm_name, scenario, params, reason",
    [
        ("dc-shared-01", "move-to-zone", {"zone": "2"}, "CanNotDelete lock 'do-not-delete-dc'"),
        ("web-prod-03", "move-to-zone", {"zone": "3"}, "already is in zone 3"),
        ("erp-prod-eus-01", "move-to-zone", {"zone": "2"}, "is an Ultra disk"),
        ("erp-prod-eus-01", "move-to-zone", {"zone": "2"}, "public IP erp-prod-eus-01-ip is pinned to zone 1"),
        ("sql-prod-01", "move-to-zone", {"zone": "2"}, "Standard_E4s_v5 is not offered in zone 2 of westeurope for this subscription"),
        ("sql-prod-01", "move-to-set", {"availability_set": "avset-sql-prod"}, "already is in availability set avset-sql-prod"),
        ("dev-ephemeral-01", "move-to-zone", {"zone": "1"}, "ephemeral OS disk"),
        ("legacy-app-01", "move-to-set", {"availability_set": "x"}, "unmanaged (VHD) disks"),
    ],
)
async def test_moves_azure_forbids_are_refused_with_the_reason_and_send_nothing(rig, vm_name, scenario, params, reason):
    from backend.recovery import scenarios

    before = writes(rig.emu)
    plan, facts = await rig.plan(vm_name, scenario, params)
    assert any(reason in b for b in plan.blockers), plan.blockers
    with pytest.raises(RunRefused):
        await rig.runner(vm_name).start(plan, lambda f, p: scenarios.build_plan(scenario, f, p), facts)
    assert writes(rig.emu) == before


async def test_a_move_without_its_place_is_bad_input(rig):
    with pytest.raises(PlanError, match="needs --zone 1, 2 or 3"):
        await rig.plan(VM, "move-to-zone", {"zone": "4"})
    with pytest.raises(PlanError, match="needs --availability-set NAME"):
        await rig.plan(VM, "move-to-set", {})


# --- runs -----------------------------------------------------------------------------------------


async def test_a_vm_in_no_zone_moves_into_zone_1_on_copies_and_answers_ssh(rig):
    original = vm_doc(rig.emu, VM)["doc"]
    plan, result = await rig.run(VM, "move-to-zone", ZONE)
    doc = moved_ok(rig, result, original)
    assert doc["zones"] == ["1"]
    assert all(disk(rig.emu, d)["zones"] == ["1"] for d in disk_ids(doc))
    assert "SSH answers" in result.record.steps[plan.keys.index("reach-ssh")].message
    status, got = arm_request(rig.emu, "GET", doc["id"])
    assert status == 200 and "AzureMonitorLinuxAgent" in {e["name"] for e in got.get("resources") or ()}


async def test_a_vm_moves_into_a_new_availability_set_with_2_fault_and_5_update_domains(rig):
    original = vm_doc(rig.emu, SET_VM)["doc"]
    plan, result = await rig.run(SET_VM, "move-to-set", NEW_SET)
    assert "availability-set" in plan.keys
    doc = moved_ok(rig, result, original, SET_VM)
    set_id = doc["properties"]["availabilitySet"]["id"]
    assert set_id.lower().endswith("/availabilitysets/avset-sql-prod-b") and not doc.get("zones")
    avsets = {a["name"]: a for a in resources(rig.emu, "Microsoft.Compute/availabilitySets")}
    new = avsets["avset-sql-prod-b"]
    assert new["sku"]["name"] == "Aligned" and new["properties"]["platformFaultDomainCount"] == 2 and new["properties"]["platformUpdateDomainCount"] == 5
    assert [m["id"].lower() for m in new["properties"]["virtualMachines"]] == [doc["id"].lower()]
    assert doc["id"].lower() not in [m["id"].lower() for m in avsets["avset-sql-prod"]["properties"].get("virtualMachines") or ()]
    assert ("availability-set", "created") in {(r.kind, r.state) for r in rig.journal.resources(result.run_id)}


async def test_release_deletes_the_originals_and_snapshots_only_while_the_vm_runs_on_its_copies(rig):
    original = vm_doc(rig.emu, VM)["doc"]
    _, result = await rig.run(VM, "move-to-zone", ZONE)
    doc = moved_ok(rig, result, original)
    done = await release(rig.backend, rig.journal, result.run_id)
    by_kind: dict[str, list[str]] = {}
    for item, text, ok in done:
        assert ok, (item, text)
        by_kind.setdefault(item.kind, []).append(text)
    assert len(by_kind["moved-disk"]) == 2 and all(t.startswith("deleted (the VM runs on its copy") for t in by_kind["moved-disk"])
    assert by_kind["snapshot"] == ["deleted", "deleted"]
    assert all(disk(rig.emu, o) is None for o in disk_ids(original))
    assert all(disk(rig.emu, n) is not None for n in disk_ids(doc))  # the copies: the VM's disks now
    assert {r.state for r in rig.journal.resources(result.run_id) if r.kind in ("moved-disk", "snapshot")} == {"released"}


MOVE_FAULTS = [
    ("snapshot-os", {"match": "/snapshots/", "method": "PUT", "lro_result": "Failed"}),
    ("copy-lun0", {"match": "-z1-", "method": "PUT", "lro_result": "Failed"}),
    ("delete", {"match": f"/virtualMachines/{VM}", "method": "DELETE", "lro_result": "Failed"}),
    ("create", {"match": f"/virtualMachines/{VM}", "method": "PUT", "lro_result": "Failed"}),
]


@pytest.mark.parametrize("key, spec", MOVE_FAULTS, ids=[k for k, _ in MOVE_FAULTS])
async def test_a_failure_at_each_write_leaves_an_honest_journal_and_resumes(rig, key, spec):
    original = vm_doc(rig.emu, VM)["doc"]
    _, failed, _ = await rig.run_with_fault_at(VM, "move-to-zone", ZONE, key, spec)
    assert_ledger_matches(rig.emu, rig.journal, failed.run_id)
    for old_id in disk_ids(original):
        assert disk(rig.emu, old_id) is not None  # nothing of the customer's is lost, whatever failed
    done = await rig.resume(failed.run_id, VM)
    moved_ok(rig, done, original, once=key not in ("delete", "create"))


KILL_TESTS = 8


@hands(KILL_TESTS)
async def test_killed_at_any_boundary_resumes_to_the_same_end_without_duplicates(rigs, hand):
    for boundary in deal(recorded(VM, "move-to-zone", tuple(ZONE.items())).points, hand, KILL_TESTS):
        async with killed_at(rigs, boundary) as rig:
            original = vm_doc(rig.emu, VM)["doc"]
            plan, result, killed = await rig.run_killed_at(VM, "move-to-zone", ZONE, boundary)
            assert killed
            moved_ok(rig, result, original)
            counts = operation_counts(rig.emu)
            snaps = [k for k in counts if k[0] == "create" and "/snapshots/" in k[1]]
            assert len(snaps) == 2 and all(counts[k] == 1 for k in snaps), counts


# --- the CLI and the console ----------------------------------------------------------------------


def test_the_cli_plans_refuses_bad_input_in_one_sentence_and_resumes_after_kill_9(emu, home):
    from tests.test_recovery_cli import aztriage, one_line_error, runs

    proc = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "move-to-zone", "--zone", "1", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (line,) = json_lines(proc.stdout)
    assert line["plan"]["scenario"] == "move-to-zone" and line["plan"]["params"] == {"zone": "1"}
    for args, message in [
        (["--vm", VM, "--scenario", "restart", "--zone", "1"], "--zone only applies to --scenario move-to-zone"),
        (["--vm", VM, "--scenario", "move-to-zone", "--availability-set", "x"], "--availability-set only applies to --scenario move-to-set"),
        (["--vm", VM, "--scenario", "move-to-zone", "--yes"], "move-to-zone needs --zone 1, 2 or 3"),
    ]:
        bad = aztriage(emu, home, "recover", *args)
        assert bad.returncode == 2 and message in one_line_error(bad)
    original = vm_doc(emu, VM)["doc"]
    vm_id = original["id"].lower()
    plan_keys = [s["key"] for s in line["plan"]["steps"]]
    kill_at = f"operation:{plan_keys.index('create')}"
    first = aztriage(emu, home, "recover", "--vm", VM, "--scenario", "move-to-zone", "--zone", "1", "--yes", "--confirm", VM, kill_at=kill_at, timeout=120)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stderr)
    (listed,) = runs(emu, home)
    assert listed["status"] == "interrupted"
    second = aztriage(emu, home, "recover", "--resume", listed["run_id"], "--confirm", VM, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    doc = vm_doc(emu, VM)["doc"]
    assert doc["zones"] == ["1"] and power(emu, VM) == "running"
    counts = operation_counts(emu)
    assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
    assert all(disk(emu, o) is not None for o in disk_ids(original))


async def test_the_recovery_pane_moves_a_vm_into_the_zone_chosen_after_the_name_is_typed(emu, recovery_journal):
    from tests.tui_support import detail, make_app, open_options, run_confirmed_by_name, steps_text, wait_for

    app = make_app(emu)
    async with app.run_test(size=(110, 36)) as pilot:
        screen = await open_options(pilot, VM, "move-to-zone")
        options = screen.query_one("#options")
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["1", "2", "3"]
        assert "cannot move a VM into a zone or a set in place" in detail(screen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert f"Create {VM} in zone 1 on the copies" in steps_text(screen)
        await run_confirmed_by_name(pilot, screen, VM, timeout=120)
        assert set(screen.states.values()) <= {"verified", "skipped"}, screen.states
    assert vm_doc(emu, VM)["doc"]["zones"] == ["1"]
