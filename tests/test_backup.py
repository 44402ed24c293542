"""Azure Backup protection read through Recovery Services (real adapter, emulator over HTTPS):
the vaults of each subscription and their protected VMs and policies in O(vaults) requests;
protected, unprotected and stale VMs as the checklist and the VM detail show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.backup import BackupBook, policy_from, subscription_book
from backend.checks import CheckContext, run_checks
from tests.support import arm_call, emulator_control

PROD = "3f2b8c1e-7a4d-4e2b-9c61-5d8a0f4b2e17"
SHARED = "8d14e6a2-2c5f-4b9e-a7d3-61f0c9e8b453"
DEV = "c7a95f30-91be-4d28-8e4f-2b6d3a7c9015"


def by_name(book: BackupBook) -> dict[str, object]:
    return {vm_id.rsplit("/", 1)[-1]: item for vm_id, item in book.items.items()}


async def test_protection_is_read_per_vault_not_per_vm(backend):
    before = backend.requests
    book = await backend.backup_protection([PROD, SHARED, DEV])
    used = backend.requests - before
    # 3 vault lists (one per subscription) + 2 lists per vault (5 vaults): never one per VM.
    assert book.vaults == 5 and used == 3 + 2 * 5, used
    assert book.read == {PROD, SHARED, DEV} and not book.errors
    items = by_name(book)
    assert {"web-prod-01", "sql-prod-02", "app-prod-ne-01", "erp-prod-eus-01", "dc-shared-01", "mon-shared-eus-01", "legacy-app-01"} <= set(items)
    assert "jump-prod-01" not in items and "api-dev-01" not in items
    web = items["web-prod-01"]
    assert web.vault == "rsv-prod-weu" and web.policy == "DefaultPolicy" and web.schedule == "daily at 02:00 UTC"
    assert web.protection_state == "Protected" and web.health == "Passed" and web.last_backup_status == "Completed"
    assert items["sql-prod-01"].schedule == "every 4 hours from 00:00 UTC" and items["sql-prod-01"].allowed_age == timedelta(hours=6)
    now = datetime.now(UTC)
    assert not web.stale(now) and web.problems(now) == []
    assert items["erp-prod-eus-01"].stale(now)
    assert "its last good backup is 3 days old, more than policy DefaultPolicy (daily at 02:00 UTC) allows (30 h)" in items["erp-prod-eus-01"].problems(now)
    assert any("last backup failed" in p for p in items["app-prod-ne-01"].problems(now))
    assert items["legacy-app-01"].stopped and "ProtectionStopped" in items["legacy-app-01"].problems(now)[0]
    # A VM of a subscription that was read and that no vault lists is known to be unprotected.
    jump = f"/subscriptions/{PROD}/resourceGroups/rg-jump-prod/providers/Microsoft.Compute/virtualMachines/jump-prod-01"
    assert book.known(jump) and book.item(jump) is None


async def test_a_subscription_whose_vaults_cannot_be_read_is_not_known(backend, fresh_emulator):
    emulator_control(
        fresh_emulator,
        "POST",
        "/_emulator/faults",
        {"match": f"/subscriptions/{SHARED}/providers/Microsoft.RecoveryServices/vaults", "status": 403, "code": "AuthorizationFailed", "count": -1},
    )
    book = await backend.backup_protection([PROD, SHARED])
    assert book.read == {PROD}
    assert SHARED in book.errors and "Recovery Services vaults" in book.errors[SHARED]
    dc = f"/subscriptions/{SHARED}/resourceGroups/rg-identity-shared/providers/Microsoft.Compute/virtualMachines/dc-shared-01"
    assert not book.known(dc) and book.item(dc) is None


def test_the_emulator_serves_the_real_shapes(emulator):
    vault = f"/subscriptions/{PROD}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-prod-weu"
    status, listed = arm_call(emulator, "GET", f"/subscriptions/{PROD}/providers/Microsoft.RecoveryServices/vaults?api-version=2026-11-01")
    assert status == 200 and {v["name"] for v in listed["value"]} == {"rsv-prod-weu", "rsv-prod-neu", "rsv-prod-eus"}
    status, items = arm_call(
        emulator, "GET", f"{vault}/backupProtectedItems?api-version=2026-10-01&$filter=backupManagementType%20eq%20'AzureIaasVM'%20and%20itemType%20eq%20'VM'"
    )
    assert status == 200
    item = items["value"][0]
    assert item["type"] == "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
    assert item["properties"]["protectedItemType"] == "Microsoft.Compute/virtualMachines"
    assert item["name"].startswith("VM;iaasvmcontainerv2;") and "/protectionContainers/IaasVMContainer;iaasvmcontainerv2;" in item["id"]
    status, got = arm_call(emulator, "GET", item["id"] + "?api-version=2026-10-01")
    assert status == 200 and got == item
    status, none = arm_call(emulator, "GET", f"{vault}/backupProtectedItems?api-version=2026-10-01&$filter=backupManagementType%20eq%20'AzureStorage'")
    assert status == 200 and none["value"] == []
    status, err = arm_call(emulator, "GET", f"{vault}/backupJobs/nope?api-version=2026-10-01")
    assert status == 404 and err["error"]["code"] == "BMSUserErrorJobNotFound"
    status, err = arm_call(
        emulator, "GET", f"/subscriptions/{PROD}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/nope/backupJobs/x?api-version=2026-10-01"
    )
    assert status == 404


def test_weekly_and_unknown_schedules_and_a_vm_protected_twice():
    weekly = policy_from(
        {
            "id": "p",
            "name": "Weekly",
            "properties": {"schedulePolicy": {"scheduleRunFrequency": "Weekly", "scheduleRunDays": ["Sunday"], "scheduleRunTimes": ["2020-01-01T23:00:00Z"]}},
        }
    )
    assert weekly.schedule == "weekly on Sunday at 23:00 UTC" and weekly.allowed_age == timedelta(days=7) + timedelta(days=7) / 4
    odd = policy_from({"id": "p", "name": "Odd", "properties": {"schedulePolicy": {"scheduleRunFrequency": "Monthly"}}})
    assert odd.period is None and odd.allowed_age == timedelta(hours=30)
    vm = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
    old = {"id": "/subscriptions/s/resourceGroups/b/providers/Microsoft.RecoveryServices/vaults/old", "name": "old"}
    new = {"id": "/subscriptions/s/resourceGroups/b/providers/Microsoft.RecoveryServices/vaults/new", "name": "new"}

    def item(vault, state):
        return {
            "id": vault["id"] + "/backupFabrics/Azure/protectionContainers/c/protectedItems/i",
            "name": "i",
            "properties": {"virtualMachineId": vm, "protectionState": state, "lastRecoveryPoint": "2026-01-01T00:00:00Z", "policyId": "x/backupPolicies/P"},
        }

    book = subscription_book("s", [(new, [item(new, "Protected")], []), (old, [item(old, "ProtectionStopped")], [])])
    assert book.item(vm).vault == "new" and book.item(vm).schedule == "policy not read"


def vm_named(inv, name):
    return next(vm for vm in inv.vms if vm.name == name)


async def test_the_checklist_flags_unprotected_and_stale_vms(backend):
    from backend import checks

    inv, result = await checks.evaluate(backend, instance_view_limit=0)
    backup = [f for f in result.findings if f.rule == "azure-backup"]
    stale = {f.vm: f for f in result.findings if f.rule == "backup-health"}
    unprotected = {f.vm for f in backup}
    assert "jump-prod-01" in unprotected and "api-dev-01" in unprotected and "web-prod-01" not in unprotected
    assert set(stale) == {"app-prod-ne-01", "erp-prod-eus-01", "mon-shared-eus-01", "legacy-app-01"}
    assert stale["erp-prod-eus-01"].severity == "high" and "3 days old" in stale["erp-prod-eus-01"].evidence
    assert "backup-now" in stale["erp-prod-eus-01"].fix
    assert not any(n.rule in ("azure-backup", "backup-health") for n in result.not_checked)
    rules = {r["rule"]: r["status"] for r in result.summary()["by_rule"]}
    assert rules["azure-backup"] == "findings" and rules["backup-health"] == "findings"


def test_without_a_backup_read_both_rules_say_not_checked():
    from tests.test_checks import good_vm, inventory

    result = run_checks(inventory(good_vm()), CheckContext())
    assert {n.rule for n in result.not_checked} >= {"azure-backup", "backup-health"}
