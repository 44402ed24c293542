"""The checklist through the real adapter against the emulator: the demo
estate's stories come out as the expected findings, and the facts the
inventory's lists do not carry (instance views, compute usage) are read
honestly or reported as not checked."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from backend.azure.backend import AzureBackend
from backend.checks import RoleSettings, evaluate
from backend.emulator.estates import EstateError, load_estate
from tests.support import FIXED_NOW, demo_settings, emulator_control, start_emulator

pytestmark = pytest.mark.xdist_group("checks")

SUB = "6b1f0c2a-3d4e-4f50-8a61-7c8d9e0f1a2b"
TENANT = "5e7d2c1a-64b3-4f8e-b0a9-2d1c7f6e5a38"


def by_rule(result) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for f in result.findings:
        out[f.rule].add(f.vm or f.location)
    return out


@pytest.fixture(scope="module")
async def demo_result(emulator):
    backend = AzureBackend(demo_settings(emulator), retry_total=3)
    try:
        return await evaluate(backend)
    finally:
        await backend.close()


async def test_demo_estate_gives_its_stories_as_findings(demo_result):
    inv, result = demo_result
    found = by_rule(result)
    assert found["set-domains"] == {"sql-prod-01", "sql-prod-02", "sql-prod-03"}
    assert found["single-vm-set"] == {"dc-shared-01"}
    assert found["unmanaged-disks"] == {"legacy-app-01", "legacy-app-02", "legacy-ftp-01"}
    assert found["shared-storage-account"] == {"legacy-app-01", "legacy-app-02", "legacy-ftp-01"}
    assert found["disk-delete-option"] == {"dev-sandbox-01"}
    assert found["planned-maintenance"] == {"app-prod-ne-01", "app-prod-ne-02"}
    assert found["vm-agent-not-ready"] == {"mon-shared-eus-01"}
    assert found["boot-diagnostics-off"] == {"dev-spot-01"}
    # No zone, no set, no scale set: single VMs; zonal, set and scale-set members are not.
    assert {"app-prod-ne-01", "jump-prod-01", "legacy-app-01", "payroll-app-01"} <= found["no-zone-or-set"]
    assert not {"web-prod-01", "erp-prod-eus-01", "sql-prod-01", "dc-shared-01", "vmss-build-dev_3f9a1c2e"} & found["no-zone-or-set"]
    # Standard SSD on a single instance; the zonal Ultra/Premium ERP VM is fine.
    assert {"jump-prod-01", "rdgw-shared-01", "files-shared-01"} <= found["single-instance-disks"]
    assert not {"erp-prod-eus-01", "web-prod-01", "pg-dev-01"} & found["single-instance-disks"]
    # The temporary disk follows the size: DS1_v2, D2s_v3, B-series and D2ds_v5 have one, D2s_v5 not.
    assert {"legacy-ftp-01", "legacy-app-01", "jump-prod-01", "dev-ephemeral-01"} <= found["temporary-disk"]
    assert "web-prod-01" not in found["temporary-disk"]
    assert {"jump-prod-01", "rdgw-shared-01", "tools-lnx-shared-01"} <= found["entry-level-size"]
    # Nothing is invented: the demo has no role tags and its regions have quota to spare.
    assert "role-not-load-balanced" not in found and "vcpu-quota" not in found
    # Azure Backup is read (the vaults' protected VMs); NSG flow logs (retiring) are named with the tool that lists them.
    assert {"jump-prod-01", "payroll-app-01"} <= found["azure-backup"] and "web-prod-01" not in found["azure-backup"]
    assert found["backup-health"] == {"app-prod-ne-01", "erp-prod-eus-01", "mon-shared-eus-01", "legacy-app-01"}
    assert [n.rule for n in result.not_checked] == ["retirement"]
    assert "az network watcher flow-log list" in result.not_checked[0].reason
    # Retirements, each dated from the one table (backend/retirements.py) with its migration link.
    assert {"legacy-app-01", "legacy-ftp-01", "rdgw-shared-01"} <= found["retirement"]
    basic = next(f for f in result.findings if f.rule == "retirement" and f.vm == "rdgw-shared-01")
    assert basic.severity == "high" and "Basic SKU public IP addresses, retired on 30 September 2025" in basic.evidence
    assert "public-ip-basic-upgrade-guidance" in basic.fix and "already retired" in basic.fix
    size = next(f for f in result.findings if f.rule == "retirement" and "Standard_DS1_v2" in f.evidence)
    assert size.vm == "legacy-ftp-01" and size.severity == "low" and "retiring on 1 May 2028" in size.evidence


async def test_demo_evidence_names_the_facts(demo_result):
    inv, result = demo_result
    sql = next(f for f in result.findings if f.rule == "set-domains" and f.vm == "sql-prod-02")
    assert "avset-sql-prod" in sql.evidence and "share fault domain 0" in sql.evidence
    dc = next(f for f in result.findings if f.rule == "single-vm-set")
    assert "avset-dc-shared holds only dc-shared-01" in dc.evidence
    shared = next(f for f in result.findings if f.rule == "shared-storage-account")
    assert "contosolegacyvhds" in shared.evidence
    mon = next(f for f in result.findings if f.rule == "vm-agent-not-ready")
    assert "'Not Ready'" in mon.evidence
    app = next(f for f in result.findings if f.rule == "planned-maintenance" and f.vm == "app-prod-ne-01")
    assert "self-service window" in app.evidence and "perform-maintenance" in app.fix
    summary = result.summary()
    worst = summary["by_vm"][0]
    assert worst["score"] == min(r["score"] for r in summary["by_vm"]) and worst["worst"] == "high"
    assert {s["name"] for s in summary["by_subscription"]} == {"Contoso Production", "Contoso Shared Services", "Contoso Dev/Test"}


async def test_without_instance_views_the_agent_and_maintenance_are_not_checked(backend, emulator):
    inv, result = await evaluate(backend, instance_view_limit=0)
    found = by_rule(result)
    assert "vm-agent-not-ready" not in found and "planned-maintenance" not in found and "set-domains" not in found
    skipped = {n.rule: n for n in result.not_checked}
    assert {"vm-agent-not-ready", "planned-maintenance", "set-domains"} <= set(skipped)
    assert "instance view was not read" in skipped["vm-agent-not-ready"].reason
    # A report reads its own VM first, whatever the limit.
    mon = next(v for v in inv.vms if v.name == "mon-shared-eus-01")
    _, one = await evaluate(backend, instance_view_limit=1, first=[mon.id])
    assert by_rule(one)["vm-agent-not-ready"] == {"mon-shared-eus-01"}


# --- minimal estates: compute usage and quota ------------------------------------------


def tiny_estate(tmp_path, *, usages=None, size="Standard_D4s_v5", power="running", count=1):
    from backend.emulator.estates._common import EstateBuilder

    b = EstateBuilder(FIXED_NOW)
    b.subscription(SUB, "Tiny", TENANT)
    b.resource_group(SUB, "rg-tiny", "westeurope")
    subnets = b.vnet(SUB, "rg-tiny", "vnet-tiny", "westeurope", ["10.40.0.0/16"], [("snet", "10.40.1.0/24", None)])
    for i in range(count):
        b.vm(SUB, "rg-tiny", f"tiny-{i + 1:02d}", "westeurope", image="ubuntu2204", size=size, subnet_id=subnets["snet"], zones=["1"], power=power)
    doc = b.finish()
    if usages is not None:
        doc["usages"] = usages
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(doc))
    return str(path)


async def check_estate(path, faults=None):
    emu = start_emulator(path)
    try:
        for fault in faults or ():
            emulator_control(emu, "POST", "/_emulator/faults", fault)
        backend = AzureBackend(demo_settings(emu), retry_total=0)
        try:
            return await evaluate(backend)
        finally:
            await backend.close()
    finally:
        emu.stop()


async def test_regional_vcpus_nearly_used_fire_and_plenty_stays_silent(tmp_path):
    tight = tiny_estate(tmp_path, usages={SUB: {"westeurope": [{"name": "cores", "limit": 8}]}}, count=2)
    _, result = await check_estate(tight)
    quota = [f for f in result.findings if f.rule == "vcpu-quota"]
    # Two running D4s_v5 VMs count 8 vCPUs against a limit of 8.
    assert len(quota) == 1 and quota[0].severity == "high" and quota[0].vm is None
    assert "Total Regional vCPUs in westeurope: 8 of 8 used (100%)" in quota[0].evidence
    assert result.summary()["by_subscription"][0]["score"] < 100

    roomy = tiny_estate(tmp_path, count=2)  # default limit: 100 vCPUs
    _, result = await check_estate(roomy)
    assert [f for f in result.findings if f.rule == "vcpu-quota"] == []
    assert not any(n.rule == "vcpu-quota" for n in result.not_checked)


async def test_deallocated_vms_hold_no_quota_and_family_rows_count(tmp_path):
    parked = tiny_estate(tmp_path, usages={SUB: {"westeurope": [{"name": "cores", "limit": 4}]}}, power="deallocated")
    _, result = await check_estate(parked)
    assert [f for f in result.findings if f.rule == "vcpu-quota"] == []
    family = tiny_estate(
        tmp_path,
        usages={SUB: {"westeurope": [{"name": "standardDSv5Family", "limit": 10, "currentValue": 9, "localizedValue": "Standard DSv5 Family vCPUs"}]}},
    )
    _, result = await check_estate(family)
    quota = [f for f in result.findings if f.rule == "vcpu-quota"]
    assert len(quota) == 1 and quota[0].severity == "medium" and "Standard DSv5 Family vCPUs" in quota[0].evidence


async def test_usage_that_cannot_be_read_is_not_checked(tmp_path):
    path = tiny_estate(tmp_path)
    _, result = await check_estate(path, faults=[{"match": "/usages", "method": "GET", "status": 403, "count": -1}])
    assert [f for f in result.findings if f.rule == "vcpu-quota"] == []
    skipped = [n for n in result.not_checked if n.rule == "vcpu-quota"]
    assert len(skipped) == 1 and "westeurope" in skipped[0].scope and "compute usage" in skipped[0].reason


def test_a_malformed_usages_object_is_one_clear_sentence(tmp_path):
    bad = tmp_path / "bad.json"
    doc = json.loads(open(tiny_estate(tmp_path)).read())
    doc["usages"] = {SUB: {"westeurope": [{"name": "cores", "limit": -1}]}}
    bad.write_text(json.dumps(doc))
    with pytest.raises(EstateError, match=r"limit must be a whole number"):
        load_estate(str(bad))


# --- roles through the adapter -----------------------------------------------------------


def web_estate(tmp_path) -> str:
    """Three VMs tagged tier=web; web-01 and web-02 sit in lb-web's backend pool, web-03 does not."""
    from backend.emulator.estates._common import EstateBuilder

    b = EstateBuilder(FIXED_NOW)
    b.subscription(SUB, "Tiny", TENANT)
    b.resource_group(SUB, "rg-web", "westeurope")
    subnets = b.vnet(SUB, "rg-web", "vnet-web", "westeurope", ["10.41.0.0/16"], [("snet", "10.41.1.0/24", None)])
    pip = b.public_ip(SUB, "rg-web", "pip-lb-web", "westeurope", "127.10.9.10", zones=["1", "2", "3"])
    lb = b.load_balancer(SUB, "rg-web", "lb-web", "westeurope", pip, pools=["bepool"], lb_rules=[("http", 80, 80, "bepool")])
    for i, pooled in ((1, True), (2, True), (3, False)):
        b.vm(
            SUB,
            "rg-web",
            f"web-{i:02d}",
            "westeurope",
            image="ubuntu2204",
            size="Standard_D2s_v5",
            subnet_id=subnets["snet"],
            zones=[str(i)],
            lb_pools=[f"{lb}/backendAddressPools/bepool"] if pooled else [],
            tags={"tier": "web"},
        )
    path = tmp_path / "web.json"
    path.write_text(json.dumps(b.finish()))
    return str(path)


async def test_role_tag_finds_the_vm_outside_its_peers_load_balancer(tmp_path):
    path = web_estate(tmp_path)
    emu = start_emulator(path)
    try:
        backend = AzureBackend(demo_settings(emu), retry_total=0)
        try:
            _, by_tag = await evaluate(backend, roles=RoleSettings(tag="tier"))
            _, by_default = await evaluate(backend)  # the default tag "role" is not set: no roles, no finding
            _, by_name = await evaluate(backend, roles=RoleSettings(tag=None, pattern=r"^(?P<role>[a-z]+)-\d+$"))
        finally:
            await backend.close()
    finally:
        emu.stop()
    stray = [f for f in by_tag.findings if f.rule == "role-not-load-balanced"]
    assert [f.vm for f in stray] == ["web-03"]
    assert "tag tier=web" in stray[0].evidence and "web-01, web-02 are behind load balancer lb-web" in stray[0].evidence
    assert not any(f.rule == "role-not-load-balanced" for f in by_default.findings)
    assert [f.vm for f in by_name.findings if f.rule == "role-not-load-balanced"] == ["web-03"]


def test_size_table_agrees_with_the_emulator_sizes():
    from backend.emulator.estates._common import SIZES
    from backend.sizes import has_temp_disk, vcpus

    for size, (cpus, _memory, temp_gb, _accel) in SIZES.items():
        assert vcpus(size) == cpus, size
        assert has_temp_disk(size) is (temp_gb > 0), size
