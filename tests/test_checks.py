"""The checklist's rules over minimal hand-built inventories: each rule fires on
an estate that has the problem and stays silent on one that does not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from backend import checks, sizes
from backend.backup import BackupBook, BackupItem
from backend.checks import CheckContext, ComputeUsage, RoleSettings, run_checks
from backend.models import BootDiagnostics, Disk, Inventory, Maintenance, NetworkInterface, Subscription, Vm

SUB = "00000000-0000-0000-0000-0000000000aa"


def backup_item(vm: Vm, *, hours_ago: float = 3.0) -> BackupItem:
    """A VM protected by a daily policy whose last good backup is ``hours_ago`` old."""
    from datetime import timedelta

    good = datetime.now(UTC) - timedelta(hours=hours_ago)
    vault = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv"
    return BackupItem(
        vm.id,
        "rsv",
        vault,
        vault + "/backupFabrics/Azure/protectionContainers/c/protectedItems/i",
        "c",
        "i",
        "DefaultPolicy",
        "daily at 02:00 UTC",
        timedelta(hours=30),
        "Protected",
        "Passed",
        "Completed",
        good,
        good,
    )


RG = "rg-app"


def disk(name: str = "osdisk", sku: str | None = "Premium_LRS", *, lun: int | None = None, delete: str = "Detach", vhd: str | None = None) -> Disk:
    if vhd:
        return Disk(name=name, id=None, sku=None, managed=False, delete_option=delete, vhd_uri=vhd, lun=lun)
    return Disk(
        name=name, id=f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/disks/{name}", sku=sku, managed=True, delete_option=delete, lun=lun
    )


def avset_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/availabilitySets/{name}"


def good_vm(name: str = "vm-good", **changes) -> Vm:
    """A VM every rule is happy with: zonal, Premium ZRS, Detach, agent ready, boot diagnostics on,
    a size without a temporary disk."""
    vm = Vm(
        id=f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}",
        name=name,
        subscription_id=SUB,
        resource_group=RG,
        location="westeurope",
        size="Standard_D2s_v5",
        os_type="Linux",
        power_state="running",
        provisioning_state="Succeeded",
        os_disk=disk(f"{name}-os", "Premium_ZRS"),
        zones=("1",),
        agent_status="Ready",
        agent_version="2.9.1.1",
        boot_diagnostics=BootDiagnostics(True),
    )
    return dataclasses.replace(vm, **changes)


def inventory(*vms: Vm, **kw) -> Inventory:
    return Inventory(subscriptions=(Subscription(SUB, "Production"),), vms=tuple(vms), **kw)


def fired(inv: Inventory, rule: str, ctx: CheckContext | None = None) -> list[checks.Finding]:
    return [f for f in run_checks(inv, ctx).findings if f.rule == rule]


def test_the_good_vm_passes_every_rule():
    vm = good_vm()
    protected = BackupBook(items={vm.id.lower(): backup_item(vm)}, read=frozenset({SUB.lower()}))
    result = run_checks(inventory(vm), CheckContext(usages={}, backup=protected))
    assert result.findings == ()
    assert result.summary()["score"] == 100


def test_no_zone_or_set_fires_only_without_zone_set_or_scale_set():
    bare = good_vm("vm-bare", zones=())
    found = fired(inventory(bare), "no-zone-or-set")
    assert [f.vm for f in found] == ["vm-bare"] and found[0].severity == "high"
    assert "no availability zone, availability set or scale set" in found[0].evidence
    assert fired(inventory(good_vm()), "no-zone-or-set") == []
    in_set = good_vm("vm-set", zones=(), availability_set=avset_id("as1"))
    in_vmss = good_vm("vm-ss", zones=(), vmss_id=f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss")
    assert fired(inventory(in_set, in_vmss), "no-zone-or-set") == []


def test_single_vm_set():
    lonely = good_vm("vm-alone", zones=(), availability_set=avset_id("as-lonely"))
    found = fired(inventory(lonely), "single-vm-set")
    assert [f.vm for f in found] == ["vm-alone"]
    assert "as-lonely" in found[0].evidence
    pair = [good_vm(f"vm-{i}", zones=(), availability_set=avset_id("as-pair"), platform_fault_domain=i, platform_update_domain=i) for i in (0, 1)]
    assert fired(inventory(*pair), "single-vm-set") == []
    # The set document knows members the inventory cannot see (e.g. a VM still being created).
    sets = {avset_id("as-lonely").lower(): {"properties": {"virtualMachines": [{"id": "a"}, {"id": "b"}]}}}
    assert fired(inventory(lonely, availability_sets=sets), "single-vm-set") == []


def test_set_crowded_into_one_fault_domain():
    crowded = [good_vm(f"vm-{i}", zones=(), availability_set=avset_id("as-web"), platform_fault_domain=0, platform_update_domain=i) for i in range(3)]
    found = fired(inventory(*crowded), "set-domains")
    assert sorted(f.vm for f in found) == ["vm-0", "vm-1", "vm-2"]
    assert "share fault domain 0" in found[0].evidence
    spread = [good_vm(f"vm-{i}", zones=(), availability_set=avset_id("as-web"), platform_fault_domain=i % 2, platform_update_domain=i) for i in range(3)]
    assert fired(inventory(*spread), "set-domains") == []


def test_set_with_one_update_domain_count():
    pair = [good_vm(f"vm-{i}", zones=(), availability_set=avset_id("as-ud")) for i in range(2)]
    sets = {avset_id("as-ud").lower(): {"properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 1, "virtualMachines": [{}, {}]}}}
    found = fired(inventory(*pair, availability_sets=sets), "set-domains")
    assert len(found) == 2 and "single update domain" in found[0].evidence
    # Domains unknown (deallocated VMs report none) and counts fine: nothing to say.
    sets_ok = {avset_id("as-ud").lower(): {"properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}}
    assert fired(inventory(*pair, availability_sets=sets_ok), "set-domains") == []


def test_single_instance_disks_below_premium():
    vm = good_vm("vm-std", zones=(), os_disk=disk("vm-std-os", "StandardSSD_LRS"), data_disks=(disk("vm-std-data", "Standard_LRS", lun=0),))
    found = fired(inventory(vm), "single-instance-disks")
    assert [f.vm for f in found] == ["vm-std"]
    assert "vm-std-os (StandardSSD_LRS)" in found[0].evidence and "vm-std-data (Standard_LRS)" in found[0].evidence
    premium = good_vm("vm-prem", zones=(), os_disk=disk("p-os", "Premium_LRS"), data_disks=(disk("p-data", "UltraSSD_LRS", lun=0),))
    assert fired(inventory(premium), "single-instance-disks") == []
    # Not single-instance: zonal VMs (and sets of two) are judged by their multi-instance SLA.
    zonal = dataclasses.replace(vm, zones=("2",))
    assert fired(inventory(zonal), "single-instance-disks") == []


def test_unmanaged_disks_and_shared_storage_account():
    vhd = "https://legacystore.blob.core.windows.net/vhds/{}.vhd"
    a = good_vm("vm-a", os_disk=disk("a-os", vhd=vhd.format("a")))
    b = good_vm("vm-b", os_disk=disk("b-os", vhd=vhd.format("b")))
    c = good_vm("vm-c", os_disk=disk("c-os", vhd="https://otherstore.blob.core.windows.net/vhds/c.vhd"))
    inv = inventory(a, b, c)
    assert sorted(f.vm for f in fired(inv, "unmanaged-disks")) == ["vm-a", "vm-b", "vm-c"]
    shared = fired(inv, "shared-storage-account")
    assert sorted(f.vm for f in shared) == ["vm-a", "vm-b"]
    assert "legacystore" in shared[0].evidence
    assert fired(inventory(good_vm()), "unmanaged-disks") == []
    assert fired(inventory(c), "shared-storage-account") == []


def test_lrs_where_zrs_is_offered():
    lrs = good_vm("vm-lrs", os_disk=disk("lrs-os", "Premium_LRS"))
    found = fired(inventory(lrs), "lrs-where-zrs")
    assert [f.vm for f in found] == ["vm-lrs"] and "Premium_ZRS" in found[0].fix
    # Standard HDD has no ZRS variant; a region not known to have zones is not judged.
    assert fired(inventory(good_vm("vm-hdd", os_disk=disk("h", "Standard_LRS"))), "lrs-where-zrs") == []
    assert fired(inventory(dataclasses.replace(lrs, location="westus")), "lrs-where-zrs") == []


def _in_pool(vm: Vm, lb: str | None) -> Vm:
    pools = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/loadBalancers/{lb}/backendAddressPools/pool",) if lb else ()
    return dataclasses.replace(
        vm, nics=(NetworkInterface(id=f"/nic/{vm.name}", name=f"{vm.name}-nic", delete_option="Detach", load_balancer_backend_pool_ids=pools),)
    )


def test_role_by_tag_not_behind_peers_load_balancer():
    web = [_in_pool(good_vm(f"web-{i}", tags=(("role", "web"),)), "lb-web") for i in (1, 2)]
    stray = _in_pool(good_vm("web-3", tags=(("Role", "Web"),)), None)
    other = _in_pool(good_vm("db-1", tags=(("role", "db"),)), None)
    found = fired(inventory(*web, stray, other), "role-not-load-balanced")
    assert [f.vm for f in found] == ["web-3"]
    assert "lb-web" in found[0].evidence and "web-1, web-2" in found[0].evidence
    fixed = _in_pool(stray, "lb-web")
    assert fired(inventory(*web, fixed, other), "role-not-load-balanced") == []


def test_role_by_name_pattern_is_configurable():
    vms = [_in_pool(good_vm("app-01"), "lb-app"), _in_pool(good_vm("app-02"), "lb-app"), _in_pool(good_vm("app-03"), None)]
    assert fired(inventory(*vms), "role-not-load-balanced") == []  # default: the "role" tag only
    ctx = CheckContext(roles=RoleSettings(tag=None, pattern=r"^(?P<role>[a-z]+)-\d+$"))
    found = fired(inventory(*vms), "role-not-load-balanced", ctx)
    assert [f.vm for f in found] == ["app-03"] and "name pattern" in found[0].evidence
    with pytest.raises(ValueError, match="not a valid regular expression"):
        RoleSettings(pattern="(")


def test_boot_diagnostics_off():
    found = fired(inventory(good_vm("vm-nobd", boot_diagnostics=BootDiagnostics(False))), "boot-diagnostics-off")
    assert [f.vm for f in found] == ["vm-nobd"] and "az vm boot-diagnostics enable -g rg-app -n vm-nobd" in found[0].fix
    assert fired(inventory(good_vm()), "boot-diagnostics-off") == []


def test_vm_agent_missing_or_not_ready_on_a_running_vm():
    not_ready = good_vm("vm-nr", agent_status="Not Ready")
    missing = good_vm("vm-none", agent_status="Unknown", agent_version=None)
    stopped = good_vm("vm-off", power_state="deallocated", agent_status="Unknown", agent_version=None)
    found = {f.vm: f for f in fired(inventory(not_ready, missing, stopped), "vm-agent-not-ready")}
    assert set(found) == {"vm-nr", "vm-none"}
    assert "'Not Ready'" in found["vm-nr"].evidence
    assert "no VM agent" in found["vm-none"].evidence
    assert fired(inventory(good_vm()), "vm-agent-not-ready") == []


def test_delete_option_delete_on_disks():
    vm = good_vm(
        "vm-del",
        os_disk=dataclasses.replace(disk("del-os", "Premium_ZRS"), delete_option="Delete"),
        data_disks=(disk("keep", "Premium_ZRS", lun=0), disk("gone", "Premium_ZRS", lun=1, delete="Delete")),
    )
    found = fired(inventory(vm), "disk-delete-option")
    assert len(found) == 1 and found[0].severity == "high"
    assert "OS disk del-os" in found[0].evidence and "data disk LUN 1 gone" in found[0].evidence and "keep" not in found[0].evidence
    assert "storageProfile.osDisk.deleteOption=Detach storageProfile.dataDisks[1].deleteOption=Detach" in found[0].fix
    assert fired(inventory(good_vm()), "disk-delete-option") == []


def test_planned_maintenance_pending():
    # The self-service window is open now, whatever day the suite runs (it once ended on a fixed date).
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    m = Maintenance(self_service_allowed=True, window_start=start, window_end=start + timedelta(days=8))
    found = fired(inventory(good_vm("vm-mnt", maintenance=m)), "planned-maintenance")
    assert [f.vm for f in found] == ["vm-mnt"] and f"{start:%Y-%m-%d %H:%M} UTC" in found[0].evidence
    assert "perform-maintenance" in found[0].fix
    done = dataclasses.replace(m, last_result="MaintenanceCompleted")
    assert fired(inventory(good_vm("vm-done", maintenance=done)), "planned-maintenance") == []


def test_vcpu_quota_nearly_used_is_a_subscription_finding():
    inv = inventory(good_vm())
    key = (SUB, "westeurope")
    full = CheckContext(
        usages={key: (ComputeUsage("cores", "Total Regional vCPUs", 19, 20), ComputeUsage("virtualMachines", "Virtual Machines", 25000, 25000))}
    )
    found = fired(inv, "vcpu-quota", full)
    # The VM-count row is not a vCPU limit; the vCPU row at 95% is high.
    assert len(found) == 1 and found[0].vm_id is None and found[0].severity == "high"
    assert "19 of 20" in found[0].evidence
    summary = run_checks(inv, full).summary()
    assert summary["by_subscription"][0]["score"] == 90  # the VM scores 100, less 10 for the subscription-wide finding
    roomy = CheckContext(usages={key: (ComputeUsage("cores", "Total Regional vCPUs", 4, 20),)})
    assert fired(inv, "vcpu-quota", roomy) == []


def test_quota_without_usage_data_is_not_checked_not_invented():
    result = run_checks(inventory(good_vm()))
    assert [f for f in result.findings if f.rule == "vcpu-quota"] == []
    rule = next(r for r in result.summary()["by_rule"] if r["rule"] == "vcpu-quota")
    assert rule["status"] == "not checked"
    failed = run_checks(inventory(good_vm()), CheckContext(usages={}, usage_errors={(SUB, "westeurope"): "forbidden"}))
    assert [n.reason for n in failed.not_checked if n.rule == "vcpu-quota"] == ["forbidden"]


def test_temporary_disk_reminder_follows_the_size():
    found = fired(inventory(good_vm("win", size="Standard_D2s_v3", os_type="Windows"), good_vm("lin", size="Standard_E4ds_v5")), "temporary-disk")
    by_vm = {f.vm: f for f in found}
    assert set(by_vm) == {"win", "lin"} and "drive D:" in by_vm["win"].evidence and "/dev/sdb1" in by_vm["lin"].evidence
    assert by_vm["win"].severity == "info" and by_vm["win"].points == 0
    assert fired(inventory(good_vm("nod", size="Standard_D2s_v5")), "temporary-disk") == []
    odd = run_checks(inventory(good_vm("odd", size="Standard_HB120rs_v3")))
    assert any(n.rule == "temporary-disk" and "Standard_HB120rs_v3" in n.scope for n in odd.not_checked)


@pytest.mark.parametrize(
    "size,temp,cpus",
    [
        ("Standard_D2s_v3", True, 2),
        ("Standard_DS1_v2", True, 1),
        ("Standard_B2ms", True, 2),
        ("Standard_B2s_v2", False, 2),
        ("Standard_D4s_v5", False, 4),
        ("Standard_D4ds_v5", True, 4),
        ("Standard_D2as_v4", True, 2),
        ("Standard_D2as_v5", False, 2),
        ("Standard_E8-4ds_v5", True, 4),
        ("Standard_F4s_v2", True, 4),
        ("Standard_A1_v2", True, 1),
        ("Standard_HB120rs_v3", None, 120),
    ],
)
def test_size_table(size, temp, cpus):
    assert sizes.has_temp_disk(size) is temp
    assert sizes.vcpus(size) == cpus


def test_entry_level_sizes():
    found = fired(inventory(good_vm("burst", size="Standard_B2ms"), good_vm("a", size="Standard_A2_v2")), "entry-level-size")
    assert sorted(f.vm for f in found) == ["a", "burst"]
    assert fired(inventory(good_vm()), "entry-level-size") == []


def test_azure_backup_is_not_checked_unless_read():
    result = run_checks(inventory(good_vm()))
    assert [f for f in result.findings if f.rule == "azure-backup"] == []
    assert any(n.rule == "azure-backup" and "was not read" in n.reason for n in result.not_checked)
    vm = good_vm()
    asked = run_checks(inventory(vm), CheckContext(backup=BackupBook(read=frozenset({SUB.lower()}))))
    assert [f.vm for f in asked.findings if f.rule == "azure-backup"] == [vm.name]
    assert not any(n.rule == "azure-backup" for n in asked.not_checked)
    failed = run_checks(inventory(vm), CheckContext(backup=BackupBook(errors={SUB.lower(): "listing the vaults: forbidden"})))
    assert not [f for f in failed.findings if f.rule == "azure-backup"]
    assert any(n.rule == "azure-backup" and n.scope == f"subscription {SUB.lower()}" and "forbidden" in n.reason for n in failed.not_checked)


def test_rollups_and_order_worst_first():
    bad = good_vm("vm-bad", zones=(), boot_diagnostics=BootDiagnostics(False), os_disk=disk("bad-os", "StandardSSD_LRS", delete="Delete"))
    meh = good_vm("vm-meh", boot_diagnostics=BootDiagnostics(False))
    result = run_checks(inventory(bad, meh, good_vm()))
    severities = [f.severity for f in result.findings]
    assert severities == sorted(severities, key=checks.SEVERITY_RANK.get)
    s = result.summary()
    scores = {r["vm"]: r["score"] for r in s["by_vm"]}
    # bad: no-zone-or-set 10 + single-instance-disks 10 + disk-delete-option 10 + boot diagnostics 2 + LRS 2
    assert scores == {"vm-bad": 66, "vm-meh": 98, "vm-good": 100}
    assert s["by_vm"][0]["vm"] == "vm-bad" and s["by_vm"][0]["worst"] == "high"
    assert s["score"] == round((66 + 98 + 100) / 3)
    by_rule = {r["rule"]: r for r in s["by_rule"]}
    assert by_rule["boot-diagnostics-off"]["vms"] == 2 and by_rule["boot-diagnostics-off"]["points"] == 4
    assert by_rule["unmanaged-disks"]["status"] == "passed"
    assert s["by_subscription"][0]["name"] == "Production"
    assert set(result.to_json()["findings"][0]) >= {"vm_id", "vm", "rule", "severity", "evidence", "fix"}


def test_markdown_lists_findings_and_not_checked():
    text = checks.render_markdown(run_checks(inventory(good_vm("vm-x", zones=()))))
    assert "### HIGH no-zone-or-set: vm-x" in text
    assert "## Not checked" in text and "azure-backup" in text


def test_retirements_come_from_one_dated_table_and_match_what_a_vm_uses():
    from datetime import date

    from backend.retirements import RETIREMENTS, retiring_size

    assert RETIREMENTS["azure-diagnostics"].on == date(2026, 3, 31) and RETIREMENTS["azure-disk-encryption"].on == date(2028, 9, 15)
    assert RETIREMENTS["log-analytics-agent"].severity(date(2026, 12, 6)) == "high"
    assert RETIREMENTS["nsg-flow-logs"].severity(date(2026, 12, 6)) == "medium"
    assert RETIREMENTS["d-ls-series"].severity(date(2026, 12, 6)) == "low"
    assert RETIREMENTS["nsg-flow-logs"].when(date(2027, 10, 1)) == "retired on 30 September 2027"
    for size in ("Standard_D2", "Standard_DS13-4_v2", "Standard_D15_v2", "Standard_DS1_v2", "Standard_L8s"):
        assert retiring_size(size), size
    for size in ("Standard_D2s_v3", "Standard_D2_v3", "Standard_D4s_v5", "Standard_L8s_v3", "Standard_DS1_v3"):
        assert not retiring_size(size), size


def test_retiring_extensions_are_flagged_with_their_date_and_migration():
    from backend.models import Extension

    def ext(name: str, publisher: str, handler: str) -> Extension:
        return Extension(name=name, type=handler, publisher=publisher, version="1.0", provisioning_state="Succeeded")

    vm = good_vm(
        "vm-old-agents",
        extensions=(
            ext("MMA", "Microsoft.EnterpriseCloud.Monitoring", "MicrosoftMonitoringAgent"),
            ext("WAD", "Microsoft.Azure.Diagnostics", "IaaSDiagnostics"),
            ext("ADE", "Microsoft.Azure.Security", "AzureDiskEncryption"),
            ext("AMA", "Microsoft.Azure.Monitor", "AzureMonitorWindowsAgent"),
        ),
    )
    inv = dataclasses.replace(inventory(vm), fetched_at=datetime(2026, 12, 6, tzinfo=UTC))
    found = {f.evidence.split(": ", 1)[0]: f for f in fired(inv, "retirement")}
    assert set(found) == {"vm-old-agents uses extension MMA", "vm-old-agents uses extension WAD", "vm-old-agents uses extension ADE"}
    assert found["vm-old-agents uses extension MMA"].severity == "high" and "the Azure Monitor Agent" in found["vm-old-agents uses extension MMA"].fix
    assert "retired on 31 March 2026" in found["vm-old-agents uses extension WAD"].evidence
    ade = found["vm-old-agents uses extension ADE"]
    assert ade.severity == "low" and "encryption at host before 15 September 2028" in ade.fix and "disk-encryption-migrate" in ade.fix
    assert not fired(inventory(good_vm()), "retirement")


def test_dev_and_spot_vms_are_not_ranked_with_production():
    prod = good_vm("app-01", zones=(), tags=(("env", "prod"),))
    dev = good_vm("app-02", zones=(), tags=(("env", "dev"),))
    spot = good_vm("batch-01", zones=(), priority="Spot")
    named = good_vm("web-dev-03", zones=())
    prod_named_dev = good_vm("api-dev-01", zones=(), tags=(("environment", "Production"),))
    role = good_vm("tools-01", zones=(), tags=(("role", "sandbox"),))
    result = run_checks(inventory(prod, dev, spot, named, prod_named_dev, role))
    sev = {f.vm: f for f in result.findings if f.rule == "no-zone-or-set"}
    assert {n: f.severity for n, f in sev.items()} == {
        "app-01": "high",
        "api-dev-01": "high",
        "app-02": "medium",
        "batch-01": "medium",
        "web-dev-03": "medium",
        "tools-01": "medium",
    }
    assert sev["app-02"].evidence.endswith("(not production, tag env=dev: medium, not high)")
    assert "not production, Spot VM" in sev["batch-01"].evidence and "a dev/test name" in sev["web-dev-03"].evidence
    # Production comes first: every high finding is a production VM's.
    assert [f.vm for f in result.findings if f.severity == "high"] == ["api-dev-01", "app-01"]
    # The name pattern is the operator's to change ("" : tags and Spot only).
    tags_only = run_checks(inventory(named), CheckContext(roles=RoleSettings(nonprod_pattern=None)))
    assert [f.severity for f in tags_only.findings if f.rule == "no-zone-or-set"] == ["high"]
    with pytest.raises(ValueError, match="non-production pattern"):
        RoleSettings(nonprod_pattern="(")
