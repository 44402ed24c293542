"""The demo estate's Azure Backup: Recovery Services vaults (one per subscription and region, as a
vault protects VMs of its own region only), their VM backup policies and protected VMs.

The story: production's web and SQL tiers are protected and current; app-prod-ne-01's backups
have failed for four days and erp-prod-eus-01's last good backup is three days old under a daily
policy (both stale); mon-shared-eus-01 is protected, but its VM agent does not answer, so its last
backup failed and an on-demand one fails too; legacy-app-01's protection was stopped; every other
VM (the jump host, the dev/test subscription) is not protected at all."""

from __future__ import annotations

import zlib
from typing import Any

from ._common import DAY, HOUR, MINUTE, Clock, EstateBuilder

RG_BACKUP = "rg-backup"


def _vm_id(sub: str, group: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def _time_of_day(c: Clock, hour: int) -> str:
    """A schedule time as Azure writes it: only the time of day counts, the date is the day the
    policy was written (today's, so the estate's every timestamp follows its now)."""
    return f"{c.now:%Y-%m-%d}T{hour:02d}:00:00Z"


def _policy(vault_id: str, name: str, c: Clock, *, policy_type: str, instant_days: int, schedule: dict[str, Any], hour: int) -> dict[str, Any]:
    """A VM backup policy: SCHEDULE says when it backs up; the daily recovery point, taken at HOUR, is kept 30 days."""
    return {
        "id": f"{vault_id}/backupPolicies/{name}",
        "name": name,
        "type": "Microsoft.RecoveryServices/vaults/backupPolicies",
        "properties": {
            "backupManagementType": "AzureIaasVM",
            "policyType": policy_type,
            "instantRpRetentionRangeInDays": instant_days,
            "timeZone": "UTC",
            "protectedItemsCount": 0,
            "schedulePolicy": schedule,
            "retentionPolicy": {
                "retentionPolicyType": "LongTermRetentionPolicy",
                "dailySchedule": {"retentionTimes": [_time_of_day(c, hour)], "retentionDuration": {"count": 30, "durationType": "Days"}},
            },
        },
    }


def _daily(vault_id: str, c: Clock) -> dict[str, Any]:
    schedule = {
        "schedulePolicyType": "SimpleSchedulePolicy",
        "scheduleRunFrequency": "Daily",
        "scheduleRunTimes": [_time_of_day(c, 2)],
        "scheduleWeeklyFrequency": 0,
    }
    return _policy(vault_id, "DefaultPolicy", c, policy_type="V1", instant_days=2, schedule=schedule, hour=2)


def _every_4_hours(vault_id: str, c: Clock) -> dict[str, Any]:
    schedule = {
        "schedulePolicyType": "SimpleSchedulePolicyV2",
        "scheduleRunFrequency": "Hourly",
        "hourlySchedule": {"interval": 4, "scheduleWindowStartTime": _time_of_day(c, 0), "scheduleWindowDuration": 24},
    }
    return _policy(vault_id, "EnhancedPolicy-4h", c, policy_type="V2", instant_days=7, schedule=schedule, hour=0)


def _item(
    c: Clock,
    vault_id: str,
    vm_id: str,
    policy: dict,
    *,
    last: int | None,
    good: int | None,
    status: str = "Completed",
    state: str = "Protected",
    health: str = "Passed",
) -> dict[str, Any]:
    parts = vm_id.split("/")
    group, name = parts[4], parts[-1]
    container = f"iaasvmcontainerv2;{group.lower()};{name.lower()}"
    props: dict[str, Any] = {
        "protectedItemType": "Microsoft.Compute/virtualMachines",
        "backupManagementType": "AzureIaasVM",
        "workloadType": "VM",
        "containerName": container,
        "sourceResourceId": vm_id,
        "virtualMachineId": vm_id,
        "friendlyName": name,
        "policyId": policy["id"],
        "policyName": policy["name"],
        "protectionStatus": "Healthy" if health == "Passed" else "Unhealthy",
        "protectionState": state,
        "healthStatus": health,
        "lastBackupStatus": status,
        "protectedItemDataId": str(zlib.crc32(vm_id.lower().encode()) * 1_000_003 % 10**15),  # the same in every process (hash() is not)
        "isScheduledForDeferredDelete": False,
        "extendedInfo": {"recoveryPointCount": 12 if good is not None else 0, "policyInconsistent": False},
    }
    if last is not None:
        props["lastBackupTime"] = c.z(last)
    if good is not None:
        props["lastRecoveryPoint"] = c.z(good)
        props["extendedInfo"]["oldestRecoveryPoint"] = c.z(good - 30 * DAY)
    return {
        "id": f"{vault_id}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}/protectedItems/VM;{container}",
        "name": f"VM;{container}",
        "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems",
        "properties": props,
    }


def add_backup(b: EstateBuilder, prod: str, shared: str) -> dict[str, Any]:
    """The vaults (resources of ``b``) and what they hold (the estate's ``backup``)."""
    c = b.clock
    backup: dict[str, Any] = {}
    groups: set[str] = set()

    def vault(sub: str, name: str, location: str, env: str) -> str:
        tags = {"env": env, "owner": "backup-team", "app": "azure-backup"}
        if sub not in groups:
            b.resource_group(sub, RG_BACKUP, "westeurope", tags)
            groups.add(sub)
        vault_id = f"/subscriptions/{sub}/resourceGroups/{RG_BACKUP}/providers/Microsoft.RecoveryServices/vaults/{name}"
        b.add(
            {
                "id": vault_id,
                "name": name,
                "type": "Microsoft.RecoveryServices/vaults",
                "location": location,
                "tags": tags,
                "etag": "W/\"datetime'2026-01-01T00%3A00%3A00Z'\"",
                "sku": {"name": "RS0", "tier": "Standard"},
                "properties": {"provisioningState": "Succeeded", "publicNetworkAccess": "Enabled"},
            }
        )
        return vault_id

    def protect(vault_id: str, policies: list[dict], items: list[dict]) -> None:
        for policy in policies:
            policy["properties"]["protectedItemsCount"] = sum(1 for i in items if i["properties"]["policyId"] == policy["id"])
        backup[vault_id] = {"policies": policies, "items": items}

    weu = vault(prod, "rsv-prod-weu", "westeurope", "prod")
    daily, hourly = _daily(weu, c), _every_4_hours(weu, c)
    items = [_item(c, weu, _vm_id(prod, "rg-web-prod", f"web-prod-0{n}"), daily, last=-21 * HOUR, good=-21 * HOUR + 14 * MINUTE) for n in (1, 2, 3)]
    items += [_item(c, weu, _vm_id(prod, "rg-sql-prod", f"sql-prod-0{n}"), hourly, last=-2 * HOUR, good=-2 * HOUR + 9 * MINUTE) for n in (1, 2, 3)]
    protect(weu, [daily, hourly], items)

    def daily_vault(sub: str, name: str, location: str, env: str, *vms: tuple[str, str, dict[str, Any]]) -> None:
        """A vault whose one daily policy protects VMS: (resource group, VM name, how its backups went)."""
        vault_id = vault(sub, name, location, env)
        daily = _daily(vault_id, c)
        protect(vault_id, [daily], [_item(c, vault_id, _vm_id(sub, group, vm), daily, **backups) for group, vm, backups in vms])

    failing = {"status": "Failed", "health": "ActionRequired"}
    daily_vault(prod, "rsv-prod-neu", "northeurope", "prod", ("rg-app-prod", "app-prod-ne-01", {"last": -22 * HOUR, "good": -4 * DAY - 22 * HOUR, **failing}))
    daily_vault(
        prod, "rsv-prod-eus", "eastus", "prod", ("rg-erp-prod", "erp-prod-eus-01", {"last": -3 * DAY - 1 * HOUR, "good": -3 * DAY - 1 * HOUR + 20 * MINUTE})
    )
    daily_vault(
        shared,
        "rsv-shared-weu",
        "westeurope",
        "shared",
        ("rg-identity-shared", "dc-shared-01", {"last": -20 * HOUR, "good": -20 * HOUR + 11 * MINUTE}),
        ("rg-files-shared", "files-shared-01", {"last": -20 * HOUR, "good": -20 * HOUR + 48 * MINUTE}),
        ("rg-legacy-shared", "legacy-app-01", {"last": -41 * DAY, "good": -41 * DAY + 30 * MINUTE, "state": "ProtectionStopped", "health": "Passed"}),
    )
    daily_vault(
        shared,
        "rsv-shared-eus",
        "eastus",
        "shared",
        ("rg-monitoring-shared", "mon-shared-eus-01", {"last": -22 * HOUR, "good": -2 * DAY - 22 * HOUR, **failing}),
    )
    return backup
