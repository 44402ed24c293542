"""What the domain needs from Azure, as small typed capability protocols.

Each protocol is one kind of work (k9s's ``internal/dao`` interfaces,
Harlequin's adapter base classes): the domain code is typed against the
narrowest one it uses, never against ``AzureBackend`` or ``Any``, so a
reader sees at a glance which calls a module can make, and mypy checks them.

``AzureBackend`` (backend/azure) implements them all; the demo points it at
the local emulator, so the demo and real Azure share one code path. The one
place that builds it is the composition root, ``backend.composition``.

Every method raises ``backend.errors.BackendError`` (one sentence for the
operator) when Azure or the network fails. Writes take the long-running
operation options of a recovery step (``Lro``): a continuation token to
resume, and callbacks for acceptance and progress.

The serial console (``SerialConsole``) opens an interactive stream on the
VM's serial port (``SerialStream``: raw terminal bytes both ways, plus the
gateway's admin commands). Azure Resource Graph (``ResourceGraph``) runs KQL over
every subscription in one request per page, within the caller's quota.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

from backend.errors import BackendError  # re-exported: the error every capability raises

if TYPE_CHECKING:
    from datetime import datetime

    from backend.backup import BackupBook
    from backend.checks import ComputeUsage, UsageKey
    from backend.models import ActivityEvent, BootDiagnosticsData, GraphResult, HealthStatus, Inventory, Maintenance, StorageAccount, Subscription, Vm
    from backend.network import ConnectivityCheck, PrivatePath
    from backend.settings import ConnectionSettings

__all__ = [
    "ActivityLog",
    "AvailabilitySets",
    "Backend",
    "BackendError",
    "BackupProtection",
    "BootDiagnostics",
    "CheckBackend",
    "ComputeOperations",
    "Connected",
    "ConnectivityBackend",
    "HealthHistory",
    "InventorySource",
    "Lro",
    "NetworkDiagnostics",
    "NetworkPathChanges",
    "NsgChanges",
    "Quota",
    "RecoveryBackend",
    "ReportBackend",
    "ResourceGraph",
    "ResourceReads",
    "RestorePoints",
    "SerialConsole",
    "SerialStream",
    "SerialTarget",
    "SizeCatalog",
    "StorageAccounts",
    "TimelineBackend",
]

Document = dict[str, Any]  # an ARM resource as the wire JSON (camelCase), secrets scrubbed
OnStarted = Callable[[str], Awaitable[None] | None]
OnProgress = Callable[[str, float], Awaitable[None] | None]


class Lro(TypedDict, total=False):
    """How a write runs as a long-running operation (``StepContext.lro`` makes these)."""

    continuation_token: str | None  # resume this operation instead of sending it again
    on_started: OnStarted | None  # called with the token the moment ARM accepts the operation
    on_progress: OnProgress | None  # called with (status, seconds) while it runs


class Connected(Protocol):
    """Every capability knows its connection (read-only, demo, endpoint)."""

    settings: ConnectionSettings


class InventorySource(Connected, Protocol):
    """Subscriptions and the estate's VMs, joined into ``backend.models``."""

    @property
    def identity(self) -> str:
        """Who is signed in, for the header (or DEMO)."""
        ...

    async def list_subscriptions(self) -> list[Subscription]: ...

    async def inventory(
        self,
        subscription_ids: list[str] | None = None,
        *,
        instance_views: int | None = ...,
        on_progress: Callable[[Inventory], None] | None = None,
        visible: Sequence[Subscription] | None = None,
        views_after_lists: bool = False,
    ) -> Inventory:
        """``on_progress``, when given, sees the inventory so far as each subscription's
        lists are joined (``Inventory.views_pending``: instance views still being read).
        ``visible``: the subscriptions the caller listed a moment ago (list_subscriptions),
        used instead of listing them again. ``views_after_lists``: no instance view is read
        before every list is in (a console that shows the whole table first)."""
        ...

    async def read_instance_views(self, vms: Iterable[Vm], *, concurrency: int = ...) -> tuple[dict[str, Vm], dict[str, str]]:
        """VMs enriched from their own instance views (agent, maintenance, fault domain),
        by lower-case id, and the reason for each VM whose read failed."""
        ...

    async def close(self) -> None: ...


class HealthHistory(Protocol):
    """Resource Health's history of one resource."""

    async def health_history(self, resource_id: str, *, limit: int = 50) -> list[HealthStatus]:
        """Up to ``limit`` availability statuses, newest first."""
        ...


class ActivityLog(Protocol):
    """Azure Monitor's activity log: who sent which write to which resource (90 days, one
    subscription a call)."""

    async def activity_log(
        self,
        subscription_id: str,
        *,
        start: datetime,
        end: datetime,
        resource_group: str | None = None,
        resource_uri: str | None = None,
        correlation_id: str | None = None,
    ) -> list[ActivityEvent]:
        """Every entry in [start, end], newest first, scoped to at most one of a resource
        group, a resource or a correlation id."""
        ...


class NetworkDiagnostics(Protocol):
    """Network Watcher checks and the private paths into a VM's network."""

    async def check_connectivity(self, source: Vm, port: int, *, destination: Vm | None = None, address: str | None = None) -> ConnectivityCheck:
        """Network Watcher's TCP check from ``source`` to a VM or an address."""
        ...

    async def private_path(self, vm: Vm) -> PrivatePath:
        """VPN connections and Bastion hosts serving the VM's virtual network (errors inside)."""
        ...

    async def vm_runtime(self, vm: Vm) -> tuple[str, Maintenance]:
        """(VM agent status, maintenance state) from the VM's instance view."""
        ...


class BootDiagnostics(Protocol):
    """The serial log and the console screenshot Azure captured."""

    async def boot_diagnostics(self, vm: Vm, *, serial_log: bool = True, screenshot: bool = True) -> BootDiagnosticsData:
        """Raises ``BootDiagnosticsOff`` when they are disabled; a blob that cannot
        be read is reported in the result, the other one is still returned."""
        ...

    async def enable_boot_diagnostics(self, vm_id: str, **lro: Unpack[Lro]) -> Document:
        """Turn them on (managed storage unless the VM names an account)."""
        ...


class Quota(Protocol):
    """Regional compute usage against its limits."""

    async def inventory_usages(self, inv: Inventory) -> tuple[dict[UsageKey, tuple[ComputeUsage, ...]], dict[UsageKey, str]]:
        """Usage rows of every (subscription, region) that holds a VM, and why a region failed."""
        ...


class ResourceReads(Connected, Protocol):
    """Single resources read in full, as wire documents (None: it does not exist)."""

    async def get_vm_document(self, vm_id: str) -> Document: ...

    async def get_vm_or_none(self, vm_id: str) -> Document | None:
        """The VM with its instance view, or None once it is deleted."""
        ...

    async def vm_documents(self, vm_id: str, *, sizes: bool = False) -> Document:
        """Everything a recovery plan is built from: the model, disks, NICs, IPs, locks, health."""
        ...

    async def find_vm_ids(self, name: str, subscription_ids: list[str] | None = None) -> list[str]: ...

    async def get_vm_health(self, vm_id: str) -> Document | None:
        """The VM's Resource Health availability status (None: Azure has none)."""
        ...

    async def get_vm_user_data(self, vm_id: str) -> str | None: ...

    async def list_extensions(self, vm_id: str) -> list[Document]: ...

    async def get_extension(self, vm_id: str, name: str) -> Document | None: ...

    async def get_disk_document(self, disk_id: str) -> Document | None: ...

    async def get_snapshot(self, snapshot_id: str) -> Document | None: ...

    async def list_snapshots(self, subscription_id: str) -> list[Document]:
        """Every snapshot of the subscription (Snapshots_List): what a disk can be restored from."""
        ...

    async def get_public_ip_document(self, pip_id: str) -> Document | None: ...

    async def get_nic(self, nic_id: str) -> Document | None: ...

    async def list_locks(self, resource_id: str) -> list[Document]: ...

    async def get_group(self, subscription_id: str, name: str) -> Document | None: ...

    async def group_resources(self, subscription_id: str, name: str) -> list[Document]:
        """Every resource in a group: what deleting the group would delete."""
        ...


class ComputeOperations(Connected, Protocol):
    """The writes of recoveries. Each is refused under ``--read-only`` before any request."""

    async def vm_action(self, vm_id: str, action: str, **lro: Unpack[Lro]) -> None:
        """start, restart, power_off, deallocate, redeploy, reapply, perform_maintenance."""
        ...

    async def update_vm(self, vm_id: str, patch: Document, **lro: Unpack[Lro]) -> Document: ...

    async def put_vm(self, vm_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def delete_vm(self, vm_id: str, **lro: Unpack[Lro]) -> None:
        """Azure honours each disk's, NIC's and IP's deleteOption: set Detach first."""
        ...

    async def put_extension(self, vm_id: str, name: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def run_command(
        self, vm_id: str, command_id: str, *, script: list[str] | None = None, parameters: dict[str, str] | None = None, **lro: Unpack[Lro]
    ) -> Document: ...

    async def create_snapshot(self, snapshot_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def delete_snapshot(self, snapshot_id: str, **lro: Unpack[Lro]) -> None: ...

    async def create_disk(self, disk_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def delete_disk(self, disk_id: str, **lro: Unpack[Lro]) -> None: ...

    async def put_nic(self, nic_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def create_group(self, subscription_id: str, name: str, body: Document) -> Document: ...

    async def delete_group(self, subscription_id: str, name: str, **lro: Unpack[Lro]) -> None: ...


class SizeCatalog(Protocol):
    """The VM sizes a region offers a subscription (Resource SKUs): capabilities, zones, restrictions."""

    async def list_vm_skus(self, subscription_id: str, location: str) -> list[Document]:
        """Every VM size of the region as Azure lists it (``resourceType`` virtualMachines), restrictions included."""
        ...


class BackupProtection(Protocol):
    """Azure Backup through Recovery Services: which VMs a vault protects, and an on-demand backup."""

    async def backup_protection(self, subscription_ids: Sequence[str]) -> BackupBook:
        """Every VM protected in a vault of these subscriptions (vaults, then each vault's
        protected VMs and policies: O(vaults) requests); a subscription that cannot be read
        is in ``errors``, never raised."""
        ...

    async def get_protected_item(self, item_id: str) -> Document | None: ...

    async def trigger_backup(self, item_id: str, retain_until: str, **lro: Unpack[Lro]) -> Document:
        """Back the VM up now (kept until ``retain_until``, ISO UTC); returns the finished
        operation, whose ``properties.jobId`` is the backup job. Refused under ``--read-only``."""
        ...

    async def list_backup_jobs(self, vault_id: str, *, since: datetime | None = None) -> list[Document]:
        """The vault's backup jobs, those started at or after ``since`` when given."""
        ...

    async def get_backup_job(self, job_id: str) -> Document | None:
        """A backup job by its full id (``.../vaults/{v}/backupJobs/{name}``)."""
        ...


class RestorePoints(Protocol):
    """Compute restore points: a collection per VM, and restore points of all its disks at once."""

    async def get_restore_point_collection(self, collection_id: str, *, restore_points: bool = False) -> Document | None:
        """The collection; with ``restore_points``, its restore points in ``properties.restorePoints``
        (``$expand=restorePoints``), each with the disk restore points of its disks."""
        ...

    async def list_restore_point_collections(self, subscription_id: str) -> list[Document]:
        """Every restore point collection of the subscription (RestorePointCollections_ListAll)."""
        ...

    async def delete_restore_point_collection(self, collection_id: str, **lro: Unpack[Lro]) -> None:
        """Delete the collection and every restore point in it (the caller checked it holds none it must keep)."""
        ...

    async def put_restore_point_collection(self, collection_id: str, body: Document) -> Document:
        """Create the collection (not long-running); refused under ``--read-only``."""
        ...

    async def get_restore_point(self, restore_point_id: str) -> Document | None: ...

    async def create_restore_point(self, restore_point_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def delete_restore_point(self, restore_point_id: str, **lro: Unpack[Lro]) -> None: ...

    async def get_disk_restore_point(self, disk_restore_point_id: str) -> Document | None:
        """One disk of a restore point (DiskRestorePoint_Get): what a disk is restored from."""
        ...


class AvailabilitySets(Protocol):
    """Availability sets: read one, create one (move-to-set)."""

    async def get_availability_set(self, set_id: str) -> Document | None: ...

    async def put_availability_set(self, set_id: str, body: Document) -> Document:
        """Create or update the set (not long-running); refused under ``--read-only``."""
        ...


class NsgChanges(Connected, Protocol):
    """NSGs and their security rules (fix-nsg)."""

    async def get_nsg(self, nsg_id: str) -> Document | None: ...

    async def get_subnet(self, subnet_id: str) -> Document | None: ...

    async def put_security_rule(self, rule_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def delete_security_rule(self, rule_id: str, **lro: Unpack[Lro]) -> None: ...


class NetworkPathChanges(Connected, Protocol):
    """Site-to-site VPN connections and gateways (reset-vpn), public IP addresses (upgrade-public-ip)."""

    async def private_path(self, vm: Vm) -> PrivatePath:
        """VPN connections and Bastion hosts serving the VM's virtual network (errors inside)."""
        ...

    async def get_vpn_connection(self, connection_id: str) -> Document | None: ...

    async def get_vpn_gateway(self, gateway_id: str) -> Document | None: ...

    async def get_local_network_gateway(self, gateway_id: str) -> Document | None:
        """The on-premises side of a site-to-site connection: its address and address space."""
        ...

    async def reset_vpn_connection(self, connection_id: str, **lro: Unpack[Lro]) -> None:
        """Tear the connection's tunnels down and negotiate them again (VirtualNetworkGatewayConnections_ResetConnection)."""
        ...

    async def reset_vpn_gateway(self, gateway_id: str, **lro: Unpack[Lro]) -> Document:
        """Reboot the gateway's active instance; the standby takes over (VirtualNetworkGateways_Reset)."""
        ...

    async def put_public_ip(self, pip_id: str, body: Document, **lro: Unpack[Lro]) -> Document: ...

    async def put_nsg(self, nsg_id: str, body: Document, **lro: Unpack[Lro]) -> Document:
        """Create or replace a network security group (the one a Standard public IP needs)."""
        ...


class SerialTarget(TypedDict):
    """What the serial console preflight learned about a VM it can open."""

    vm_id: str
    vm_name: str
    os_type: str  # Linux / Windows: SAC on Windows, SysRq only on Linux


class SerialStream(Protocol):
    """One open serial console session: raw terminal bytes both ways.

    Azure's gateway has no window-size channel (the CLI sends keystrokes only),
    so the size of the operator's terminal stays on the operator's side."""

    @property
    def closed(self) -> bool: ...

    async def send(self, data: bytes) -> None:
        """Keystrokes to the guest; raises SerialConsoleClosed when the socket is gone."""
        ...

    async def receive(self) -> bytes:
        """The guest's next output (never empty); raises SerialConsoleClosed when the socket closes."""
        ...

    async def admin(self, command: str, sysrq_key: str | None = None) -> None:
        """An admin command beside the socket: ``nmi``, ``reset`` or ``sysrq`` (Linux, with a key)."""
        ...

    async def close(self) -> None: ...


class StorageAccounts(Protocol):
    """Storage accounts (Microsoft.Storage): what the serial console preflight reads of a
    custom boot-diagnostics account (its firewall)."""

    async def storage_account(self, subscription_id: str, resource_group: str, name: str) -> StorageAccount | None:
        """The account, or None when it is not in that resource group (404); raises BackendError otherwise."""
        ...


class SerialConsole(Protocol):
    """Azure Serial Console (Microsoft.SerialConsole): preflight, then connect."""

    async def serial_preflight(self, vm_id: str) -> SerialTarget:
        """Raises SerialConsoleRefused naming the one failing condition."""
        ...

    async def serial_connect(self, vm_id: str) -> SerialStream:
        """Preflight, the connect call and the websocket; raises SerialConsoleRefused or BackendError."""
        ...


class ResourceGraph(Connected, Protocol):
    """Azure Resource Graph: KQL over the tenant's resources, a page per request.

    Scope: ``subscriptions`` or ``management_groups``, or neither for the whole tenant
    (only the first 10,000 subscriptions: ``GraphResult.subscription_limit_hit``). Every
    page is fetched (``max_rows`` stops early); a query that pages must ``order by id``.
    The caller's quota is honoured by waiting for its reset, not by drawing a 429. ARG
    lags ARM by up to a minute: anything that acts on a resource reads it again first.
    A query ARG rejects raises ``BackendError`` (code ``InvalidQuery``) with ARG's reason."""

    async def graph_query(
        self,
        query: str,
        *,
        subscriptions: Sequence[str] | None = None,
        management_groups: Sequence[str] | None = None,
        page_size: int = ...,
        max_rows: int | None = None,
    ) -> GraphResult: ...

    async def graph_vms(self, vm_ids: Sequence[str]) -> Inventory:
        """These VMs (ids as Resource Graph gave them), read whole from Resource Graph: an
        inventory of them alone, with the NSGs, public IPs, load balancers, availability
        statuses and service events their panes need. A few queries, whatever the tenant's size."""
        ...


class TimelineBackend(ActivityLog, HealthHistory, ResourceGraph, Protocol):
    """What a VM's incident timeline reads from Azure: the activity log, Resource Health's
    history and Resource Graph's resourcechanges."""


class ConnectivityBackend(NetworkDiagnostics, BootDiagnostics, Connected, Protocol):
    """What a connectivity run asks Azure beside its own probes: private paths, the VM
    agent and maintenance, the serial log of a VM that does not answer, Network Watcher."""


class RecoveryBackend(
    InventorySource,
    ResourceReads,
    ComputeOperations,
    ConnectivityBackend,
    NsgChanges,
    NetworkPathChanges,
    SizeCatalog,
    AvailabilitySets,
    BackupProtection,
    RestorePoints,
    Protocol,
):
    """What a recovery plan and its steps use: the final check reads the inventory again and
    makes the connectivity diagnosis the Connectivity pane makes (so a connectivity run's
    capabilities, boot diagnostics among them)."""


class CheckBackend(InventorySource, Quota, BackupProtection, Protocol):
    """What the high-availability checklist reads beyond the inventory: compute usage, Azure Backup."""


class ReportBackend(CheckBackend, TimelineBackend, ConnectivityBackend, Protocol):
    """What an incident report reads: the checklist, the health history and the activity log
    (the timeline), a connectivity run."""


class Backend(ReportBackend, RecoveryBackend, SerialConsole, StorageAccounts, ResourceGraph, Protocol):
    """Every capability: what the console, the CLI and the benchmarks hold."""
