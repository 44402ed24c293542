"""The adapter's Azure Backup operations, on azure-mgmt-recoveryservices (vaults) and
azure-mgmt-recoveryservicesbackup (protected items, policies, on-demand backup, jobs).

- ``backup_protection``: per subscription, Vaults_ListBySubscriptionId, then per vault
  BackupProtectedItems_List (``backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'``)
  and BackupPolicies_List (AzureIaasVM): O(vaults) requests, never one per VM.
- ``trigger_backup``: Backups_Trigger (POST ``.../protectedItems/{item}/backup``, 202). The SDK
  returns nothing; the operation's id is the last segment of its ``Azure-AsyncOperation`` (or
  ``Location``) header, and BackupOperationStatuses_Get (``.../vaults/{v}/backupOperations/{id}``)
  is polled until it ends. The continuation token journaled for a resumed step is that status
  path, so a run killed mid-operation polls the same backup instead of taking a second one.
- ``list_backup_jobs``: BackupJobs_List (operation Backup, from a start time): how a step killed
  between sending a backup and journaling it finds the job that send started.
- ``get_backup_job``: JobDetails_Get, the job the operation started (its "Take Snapshot" and
  "Transfer data to vault" tasks).

A mixin of ``AzureBackend``; the SDK modules are imported when a client is first built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.azure.operations import _maybe_await, to_wire
from backend.errors import BackendError
from backend.mapping import parse_time
from backend.models import ResourceId

if TYPE_CHECKING:  # imported where used: every command builds an AzureBackend, few read backups
    from backend.backup import BackupBook

FABRIC = "Azure"


def _vault_parts(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, vault) of a vault or anything under it."""
    parts = resource_id.split("/")
    lower = [p.lower() for p in parts]
    try:
        vault = parts[lower.index("vaults") + 1]
    except (ValueError, IndexError):
        raise BackendError(f"{resource_id!r} is not under a Recovery Services vault") from None
    rid = ResourceId.parse(resource_id)
    return rid.subscription_id, rid.resource_group, vault


def _item_parts(item_id: str) -> tuple[str, str]:
    parts = item_id.split("/")
    lower = [p.lower() for p in parts]
    try:
        return parts[lower.index("protectioncontainers") + 1], parts[lower.index("protecteditems") + 1]
    except (ValueError, IndexError):
        raise BackendError(f"{item_id!r} is not a protected item id") from None


class BackupOperations:
    settings: Any
    client: Callable[..., Any]
    call: Callable[..., Awaitable[Any]]
    _get_or_none: Callable[..., Awaitable[Any]]
    refuse_write: Callable[[str], None]
    progress_interval: float

    async def _vault_reads(self, subscription_id: str) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
        from backend.backup import VM_ITEMS_FILTER, VM_POLICIES_FILTER

        vaults_client = self.client("recoveryservices", subscription_id)
        backup = self.client("recoveryservicesbackup", subscription_id)

        async def vaults() -> list[dict[str, Any]]:
            return [to_wire(v) async for v in vaults_client.vaults.list_by_subscription_id()]

        listed = await self.call(f"listing the Recovery Services vaults of subscription {subscription_id}", vaults)

        async def one(vault: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
            _, rg, name = _vault_parts(vault.get("id") or "")

            async def items() -> list[dict[str, Any]]:
                return [to_wire(i) async for i in backup.backup_protected_items.list(name, rg, filter=VM_ITEMS_FILTER)]

            async def policies() -> list[dict[str, Any]]:
                return [to_wire(p) async for p in backup.backup_policies.list(name, rg, filter=VM_POLICIES_FILTER)]

            got_items, got_policies = await asyncio.gather(
                self.call(f"listing the protected VMs of vault {name}", items), self.call(f"listing the backup policies of vault {name}", policies)
            )
            return vault, got_items, got_policies

        return list(await asyncio.gather(*(one(v) for v in listed)))

    async def backup_protection(self, subscription_ids: Sequence[str]) -> BackupBook:
        from backend.backup import BackupBook, subscription_book

        async def one(sub: str) -> BackupBook:
            try:
                return subscription_book(sub, await self._vault_reads(sub))
            except BackendError as exc:
                return BackupBook(errors={sub.lower(): str(exc)})

        book = BackupBook()
        for part in await asyncio.gather(*(one(s) for s in dict.fromkeys(subscription_ids))):
            book = book.merged(part)
        return book

    async def get_protected_item(self, item_id: str) -> dict[str, Any] | None:
        sub, rg, vault = _vault_parts(item_id)
        container, item = _item_parts(item_id)
        backup = self.client("recoveryservicesbackup", sub)
        doc = await self._get_or_none(f"reading protected item {item} of vault {vault}", lambda: backup.protected_items.get(vault, rg, FABRIC, container, item))
        return to_wire(doc)

    async def trigger_backup(self, item_id: str, retain_until: str, **lro: Any) -> dict[str, Any]:
        """An on-demand backup of a protected VM, kept until ``retain_until`` (ISO UTC); returns
        the finished operation's status (its ``properties.jobId`` names the backup job)."""
        sub, rg, vault = _vault_parts(item_id)
        container, item = _item_parts(item_id)
        what = f"backing up {item} in vault {vault}"
        self.refuse_write(what)
        backup = self.client("recoveryservicesbackup", sub)
        token = lro.get("continuation_token")
        if not token:
            body = {"properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": retain_until}}

            def headers(pipeline_response: Any, _: Any, __: Any) -> Any:
                return pipeline_response.http_response.headers

            sent = await self.call(what, lambda: backup.backups.trigger(vault, rg, FABRIC, container, item, body, cls=headers))
            url = str(sent.get("Azure-AsyncOperation") or sent.get("Location") or "")
            operation_id = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if not operation_id:
                raise BackendError(f"{what}: Azure accepted the backup but named no operation to follow")
            token = f"{item_id.split('/backupFabrics/')[0]}/backupOperations/{operation_id}"
            on_started = lro.get("on_started")
            if on_started is not None:
                await _maybe_await(on_started(token))
        return await self._wait_backup_operation(token, what, lro.get("on_progress"))

    async def _wait_backup_operation(self, status_path: str, what: str, on_progress: Any) -> dict[str, Any]:
        sub, rg, vault = _vault_parts(status_path)
        operation_id = status_path.rstrip("/").rsplit("/", 1)[-1]
        backup = self.client("recoveryservicesbackup", sub)
        interval = float(self.settings.polling_interval or 5.0)
        started = time.monotonic()
        while True:
            doc = to_wire(await self.call(what, lambda: backup.backup_operation_statuses.get(vault, rg, operation_id))) or {}
            status = str(doc.get("status") or "")
            if on_progress is not None:
                await _maybe_await(on_progress(status, time.monotonic() - started))
            if status.lower() == "succeeded":
                return doc
            if status.lower() in ("failed", "canceled", "invalid"):
                error = doc.get("error") or {}
                raise BackendError(f"{what}: {error.get('message') or 'the backup operation ' + status.lower()}", code=str(error.get("code") or status))
            await asyncio.sleep(interval)

    async def list_backup_jobs(self, vault_id: str, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """The vault's backup jobs (BackupJobs_List, operation Backup), those started at or after
        ``since`` when given (the filter Azure takes, and again here: its times are to the second)."""
        sub, rg, vault = _vault_parts(vault_id)
        backup = self.client("recoveryservicesbackup", sub)
        query = "operation eq 'Backup'"
        if since is not None:
            fmt = "%Y-%m-%d %I:%M:%S %p"
            query += f" and startTime eq '{since.astimezone(UTC).strftime(fmt)}' and endTime eq '{datetime.now(UTC).strftime(fmt)}'"

        async def fetch() -> list[dict[str, Any]]:
            return [to_wire(j) async for j in backup.backup_jobs.list(vault, rg, filter=query)]

        jobs = await self.call(f"listing the backup jobs of vault {vault}", fetch)
        if since is None:
            return jobs
        cutoff = since.astimezone(UTC).replace(microsecond=0)
        return [j for j in jobs if (parse_time((j.get("properties") or {}).get("startTime")) or cutoff) >= cutoff]

    async def get_backup_job(self, job_id: str) -> dict[str, Any] | None:
        """A backup job by its full id (``.../vaults/{v}/backupJobs/{name}``)."""
        sub, rg, vault = _vault_parts(job_id)
        name = job_id.rstrip("/").rsplit("/", 1)[-1]
        backup = self.client("recoveryservicesbackup", sub)
        doc = await self._get_or_none(f"reading backup job {name} of vault {vault}", lambda: backup.job_details.get(vault, rg, name))
        return to_wire(doc)
