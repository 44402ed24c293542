"""Plain data the whole app shares. No SDK types, no Textual.

Every class is a frozen dataclass so it can be cached, compared and passed
between the event loop and worker threads without copying. ``to_json``
helpers give the stable JSON shape the CLI prints and scripts rely on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.quickinit import quick_init_all

_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}  # a dataclass type's field names (None: not one)


def _field_names(value: Any) -> tuple[str, ...] | None:
    cls = type(value)
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value)) if dataclasses.is_dataclass(value) else None
        return names


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields, one level, as they are."""
    return {name: getattr(value, name) for name in _field_names(value) or ()}


def named_fields(value: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of a ``to_json`` that writes attributes under their own names:
    ``names`` of ``value``, in that order, tuples as lists."""
    return {name: list(v) if (v := getattr(value, name)).__class__ is tuple else v for name in names}


def _as_is(value: Any) -> Any:
    return value


def to_jsonable(value: Any) -> Any:
    """Turn models (and containers of them) into JSON-ready values."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    if not isinstance(value, type):
        names = _field_names(value)
        if names is not None:
            return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


_ID_KEYWORDS = frozenset(("subscriptions", "resourcegroups", "providers"))


@dataclass(frozen=True, slots=True)
class ResourceId:
    """An ARM resource id split into the parts the app uses."""

    subscription_id: str
    resource_group: str
    provider: str
    type: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> ResourceId:
        # The shape of nearly every id the inventory reads (a VM, a disk, a NIC, a public IP):
        # /subscriptions/S/resourceGroups/G/providers/P/T/N, read without lower-casing every part.
        # It gives what read_any gives (tests/test_fuzz.py holds them equal).
        parts = (resource_id or "").split("/")
        if (
            len(parts) == 9
            and not parts[0]
            and all(parts[1:])
            and parts[1].lower() == "subscriptions"
            and parts[3].lower() == "resourcegroups"
            and parts[5].lower() == "providers"
            and parts[2].lower() not in _ID_KEYWORDS
            and parts[4].lower() not in _ID_KEYWORDS
        ):
            return cls(parts[2], parts[4], parts[6], parts[7], parts[8])
        return cls.read_any(resource_id)

    @classmethod
    def read_any(cls, resource_id: str) -> ResourceId:
        """Any ARM id: a child resource, one without a group, odd case, doubled slashes."""
        parts = [p for p in (resource_id or "").split("/") if p]
        lower = [p.lower() for p in parts]
        try:
            sub = parts[lower.index("subscriptions") + 1]
        except (ValueError, IndexError):
            raise ValueError(f"not an ARM resource id: {resource_id!r}") from None
        rg = ""
        if "resourcegroups" in lower:
            i = lower.index("resourcegroups")
            rg = parts[i + 1] if i + 1 < len(parts) else ""
        provider = rtype = ""
        name = ""
        if "providers" in lower:
            i = lower.index("providers")
            rest = parts[i + 1 :]
            if rest:
                provider = rest[0]
                tail = rest[1:]
                rtype = "/".join(tail[0::2])
                name = tail[-1] if len(tail) % 2 == 0 and tail else ""
        return cls(sub, rg, provider, rtype, name)


def id_name(resource_id: str | None) -> str:
    """The last segment of an ARM id ('' for None)."""
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    display_name: str
    state: str = "Enabled"


@dataclass(frozen=True, slots=True)
class Disk:
    """An OS or data disk as the VM sees it, joined with the disk resource."""

    name: str
    id: str | None  # managed disk id; None for an unmanaged (VHD) disk
    sku: str | None  # Premium_LRS, StandardSSD_ZRS, ...; None when unknown (VHD)
    managed: bool
    delete_option: str  # "Delete" or "Detach"
    vhd_uri: str | None = None
    lun: int | None = None  # None for the OS disk
    size_gb: int | None = None
    caching: str | None = None
    create_option: str | None = None
    ephemeral: bool = False
    zones: tuple[str, ...] = ()
    hyper_v_generation: str | None = None
    security_type: str | None = None
    disk_state: str | None = None  # Attached, Unattached, Reserved, ...

    @property
    def storage_account(self) -> str | None:
        """The storage account of an unmanaged VHD (``https://ACCOUNT.blob...``)."""
        if not self.vhd_uri:
            return None
        host = self.vhd_uri.split("://", 1)[-1].split("/", 1)[0]
        return host.split(".", 1)[0].lower()

    @property
    def data_loss_risk(self) -> bool:
        """Deleting the VM deletes this disk."""
        return self.delete_option.lower() == "delete"


@dataclass(frozen=True, slots=True)
class SecurityRule:
    name: str
    priority: int
    direction: str  # Inbound / Outbound
    access: str  # Allow / Deny
    protocol: str  # Tcp, Udp, Icmp, *, ...
    source_prefixes: tuple[str, ...] = ("*",)
    source_ports: tuple[str, ...] = ("*",)
    destination_prefixes: tuple[str, ...] = ("*",)
    destination_ports: tuple[str, ...] = ("*",)
    default: bool = False  # one of Azure's default rules
    nsg_id: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkSecurityGroup:
    id: str
    name: str
    location: str
    rules: tuple[SecurityRule, ...] = ()
    default_rules: tuple[SecurityRule, ...] = ()

    def all_rules(self, direction: str = "Inbound") -> tuple[SecurityRule, ...]:
        """Custom and default rules for one direction, in the order Azure applies them."""
        chosen = [r for r in self.rules + self.default_rules if r.direction.lower() == direction.lower()]
        return tuple(sorted(chosen, key=lambda r: r.priority))


@dataclass(frozen=True, slots=True)
class PublicIp:
    id: str
    name: str
    ip_address: str | None
    fqdn: str | None = None
    allocation: str | None = None  # Static / Dynamic
    sku: str | None = None
    zones: tuple[str, ...] = ()
    delete_option: str | None = None  # from the NIC ip configuration that holds it


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    id: str
    name: str
    delete_option: str  # Delete / Detach (from the VM's reference)
    primary: bool = True
    nsg_id: str | None = None
    subnet_id: str | None = None
    subnet_nsg_id: str | None = None
    private_ips: tuple[str, ...] = ()
    public_ips: tuple[PublicIp, ...] = ()
    ip_configuration_ids: tuple[str, ...] = ()
    load_balancer_backend_pool_ids: tuple[str, ...] = ()
    load_balancer_inbound_nat_rule_ids: tuple[str, ...] = ()
    accelerated_networking: bool = False
    ip_forwarding: bool = False


@dataclass(frozen=True, slots=True)
class InboundNatRule:
    id: str
    name: str
    load_balancer_id: str
    frontend_ip: str | None
    frontend_fqdn: str | None
    frontend_port: int
    backend_port: int
    protocol: str
    backend_ip_configuration_id: str | None


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    id: str
    name: str
    location: str
    sku: str | None
    backend_pool_ids: tuple[str, ...] = ()
    inbound_nat_rules: tuple[InboundNatRule, ...] = ()


@dataclass(frozen=True, slots=True)
class RecommendedAction:
    action: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """Resource Health's availability status of one resource."""

    availability_state: str  # Available / Unavailable / Degraded / Unknown
    title: str | None = None
    summary: str | None = None
    detailed_status: str | None = None
    reason_type: str | None = None  # Planned / Unplanned / UserInitiated
    reason_chronicity: str | None = None
    since: datetime | None = None  # occuredTime
    reported_time: datetime | None = None
    resolution_eta: datetime | None = None
    recommended_actions: tuple[RecommendedAction, ...] = ()
    recently_resolved_summary: str | None = None
    recently_resolved_at: datetime | None = None
    context: str | None = None  # Customer Initiated / Platform Initiated / Not Applicable: who caused the change
    category: str | None = None  # Planned / Unplanned / Not Applicable

    @property
    def reason(self) -> str:
        parts = [p for p in (self.reason_type, self.summary or self.title) if p]
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """One entry of the activity log (Azure Monitor's management events): who sent which
    operation to which resource, and how it ended. Every string is already safe to show."""

    time: datetime  # eventTimestamp
    operation: str  # operationName.value: Microsoft.Compute/virtualMachines/deallocate/action
    operation_label: str  # operationName.localizedValue: Deallocate Virtual Machine
    status: str  # Started / Accepted / Succeeded / Failed
    caller: str  # a user's UPN, a service principal's app id, or empty
    resource_id: str
    correlation_id: str = ""
    sub_status: str = ""
    client_ip: str = ""
    level: str = ""  # Informational / Warning / Error / Critical
    description: str = ""
    event_id: str = ""  # eventDataId


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A VM's planned-maintenance state from its instance view."""

    self_service_allowed: bool = False
    window_start: datetime | None = None
    window_end: datetime | None = None
    maintenance_window_start: datetime | None = None
    maintenance_window_end: datetime | None = None
    last_result: str | None = None
    last_message: str | None = None

    @property
    def pending(self) -> bool:
        return bool(self.self_service_allowed or self.window_start or self.maintenance_window_start) and (self.last_result not in ("MaintenanceCompleted",))


@dataclass(frozen=True, slots=True)
class Extension:
    name: str
    type: str | None
    publisher: str | None
    version: str | None
    provisioning_state: str | None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class BootDiagnostics:
    enabled: bool
    storage_uri: str | None = None  # None with enabled=True means managed storage

    @property
    def managed_storage(self) -> bool:
        return self.enabled and not self.storage_uri


@dataclass(frozen=True, slots=True)
class StorageAccount:
    """A storage account's firewall, as far as a service that reaches it (the serial console's
    gateway reading boot diagnostics) cares: Microsoft.Storage/storageAccounts ``networkAcls``."""

    id: str
    name: str
    location: str
    default_action: str = "Allow"  # networkAcls.defaultAction: Deny turns the firewall on
    public_network_access: str = "Enabled"  # Disabled: only private endpoints reach it
    bypass: str = "AzureServices"
    ip_rules: tuple[str, ...] = ()  # the addresses and CIDR ranges an Allow rule lets in
    virtual_network_rules: int = 0

    @property
    def firewalled(self) -> bool:
        return self.default_action.lower() == "deny" or self.public_network_access.lower() == "disabled"


@dataclass(frozen=True, slots=True)
class Vm:
    id: str
    name: str
    subscription_id: str
    resource_group: str
    location: str
    size: str
    os_type: str  # Linux / Windows
    power_state: str  # running, stopped, deallocated, starting, stopping, deallocating, unknown
    provisioning_state: str
    os_disk: Disk
    data_disks: tuple[Disk, ...] = ()
    nics: tuple[NetworkInterface, ...] = ()
    health: HealthStatus | None = None
    zones: tuple[str, ...] = ()
    availability_set: str | None = None  # availability set id
    platform_fault_domain: int | None = None
    platform_update_domain: int | None = None
    vmss_id: str | None = None
    # An instance of a Uniform scale set (Resource Graph's computeresources): Azure acts on it
    # through the scale set's API only, so no recovery of aztriage applies to it.
    uniform_instance: bool = False
    priority: str | None = None  # Regular / Spot / Low
    agent_status: str = "Unknown"  # Ready / Not Ready / Unknown
    agent_version: str | None = None
    boot_diagnostics: BootDiagnostics = BootDiagnostics(False)
    maintenance: Maintenance = Maintenance()
    extensions: tuple[Extension, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    computer_name: str | None = None
    admin_username: str | None = None
    hyper_v_generation: str | None = None
    security_type: str | None = None
    image: str | None = None
    time_created: datetime | None = None
    # True once the VM's own instance view was read (agent, maintenance, fault domain known).
    instance_view_read: bool = False

    @property
    def availability_state(self) -> str:
        return self.health.availability_state if self.health else "Unknown"

    @property
    def health_reason(self) -> str:
        return self.health.reason if self.health else ""

    @property
    def private_ips(self) -> tuple[str, ...]:
        return tuple(ip for nic in self.nics for ip in nic.private_ips)

    @property
    def public_ips(self) -> tuple[str, ...]:
        return tuple(p.ip_address for nic in self.nics for p in nic.public_ips if p.ip_address)

    @property
    def vnet_id(self) -> str | None:
        """The virtual network of the primary NIC's subnet (else of any NIC's), None when no
        subnet is known."""
        subnet_id = next((n.subnet_id for n in self.nics if n.primary and n.subnet_id), None) or next((n.subnet_id for n in self.nics if n.subnet_id), None)
        if not subnet_id or "/subnets/" not in subnet_id.lower():
            return None
        return subnet_id[: subnet_id.lower().rindex("/subnets/")]

    @property
    def fqdn(self) -> str | None:
        for nic in self.nics:
            for p in nic.public_ips:
                if p.fqdn:
                    return p.fqdn
        return None

    @property
    def sla_shape(self) -> str:
        """zone / set / none: what protects this VM against a host or datacenter failure."""
        if self.zones:
            return "zone " + ",".join(self.zones)
        if self.availability_set:
            return "set"
        if self.vmss_id:
            return "vmss"
        return "none"

    @property
    def disks(self) -> tuple[Disk, ...]:
        return (self.os_disk,) + self.data_disks

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)

    @property
    def portal_url(self) -> str:
        return f"https://portal.azure.com/#@/resource{self.id}/overview"

    def to_json(self, *, native: bool = False) -> dict[str, Any]:
        """The stable JSON shape of `aztriage inventory --format json`.

        ``native``: nested models (health, public IPs, extensions) and datetimes are left
        as they are, for ``backend.jsonout.dumps_bytes(..., native=True)``: orjson writes
        them as ``to_jsonable`` would, several times faster."""
        conv = _as_is if native else to_jsonable

        def disk(d: Disk) -> dict[str, Any]:
            out = {
                "id": d.id,
                "name": d.name,
                "sku": d.sku,
                "managed": d.managed,
                "delete_option": d.delete_option,
                "vhd_uri": d.vhd_uri,
                "size_gb": d.size_gb,
            }
            if d.lun is not None:
                out["lun"] = d.lun
            return out

        return {
            "id": self.id,
            "name": self.name,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "location": self.location,
            "size": self.size,
            "os_type": self.os_type,
            "power_state": self.power_state,
            "provisioning_state": self.provisioning_state,
            "availability_state": self.availability_state,
            "health_reason": self.health_reason,
            "health": conv(self.health),
            "zones": list(self.zones),
            "availability_set": self.availability_set,
            "sla_shape": self.sla_shape,
            "vmss_id": self.vmss_id,
            "uniform_instance": self.uniform_instance,
            "priority": self.priority,
            "private_ips": list(self.private_ips),
            "public_ips": list(self.public_ips),
            "fqdn": self.fqdn,
            "os_disk": disk(self.os_disk) | {"ephemeral": self.os_disk.ephemeral},
            "data_disks": [disk(d) for d in self.data_disks],
            "nics": [
                {
                    "id": n.id,
                    "name": n.name,
                    "delete_option": n.delete_option,
                    "nsg_id": n.nsg_id,
                    "subnet_nsg_id": n.subnet_nsg_id,
                    "private_ips": list(n.private_ips),
                    "public_ips": [conv(p) for p in n.public_ips],
                }
                for n in self.nics
            ],
            "agent_status": self.agent_status if self.instance_view_read or self.power_state == "deallocated" else "not checked",
            "agent_version": self.agent_version,
            "instance_view_read": self.instance_view_read,
            "boot_diagnostics": {
                "enabled": self.boot_diagnostics.enabled,
                "managed_storage": self.boot_diagnostics.managed_storage,
                "storage_uri": self.boot_diagnostics.storage_uri,
            },
            "maintenance": (_fields(self.maintenance) if native else to_jsonable(self.maintenance)) | {"pending": self.maintenance.pending},
            "extensions": [conv(e) for e in self.extensions],
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class EventUpdate:
    summary: str
    time: datetime | None


@dataclass(frozen=True, slots=True)
class ImpactedRegion:
    region: str
    status: str | None = None
    updates: tuple[EventUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class ImpactedService:
    service: str
    regions: tuple[ImpactedRegion, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """A Service Health event (service issue, planned maintenance, advisory)."""

    id: str  # tracking id
    subscription_id: str
    type: str  # ServiceIssue / PlannedMaintenance / HealthAdvisory / SecurityAdvisory / ...
    status: str  # Active / Resolved
    level: str | None
    title: str
    summary: str | None = None
    impact_start: datetime | None = None
    impact_mitigation: datetime | None = None
    last_update: datetime | None = None
    impact: tuple[ImpactedService, ...] = ()

    @property
    def regions(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for svc in self.impact:
            for r in svc.regions:
                seen.setdefault(r.region, None)
        return tuple(seen)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.service for s in self.impact))

    @property
    def updates(self) -> tuple[EventUpdate, ...]:
        """Every update once, newest first: an event that impacts several services (or
        regions) carries the same update under each of them."""
        return merge_updates(u for s in self.impact for r in s.regions for u in r.updates)


def merge_updates(updates: Any) -> tuple[EventUpdate, ...]:
    """Updates without repeats (same time and text), newest first."""
    unique = {(u.time, u.summary): u for u in updates}
    return tuple(sorted(unique.values(), key=lambda u: u.time.timestamp() if u.time else float("-inf"), reverse=True))


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    subscription_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class GraphResult:
    """One Azure Resource Graph query, every page of it. ``rows`` are ARG's objects (made
    safe to show); ``truncated``: ARG cut rows it could not page (``take``, ``summarize``,
    no ``id`` column); ``subscription_limit_hit``: a tenant or management-group scope held
    more than 10,000 subscriptions and only the first 10,000 were searched."""

    rows: tuple[dict[str, Any], ...]
    total_records: int
    truncated: bool = False
    subscription_limit_hit: bool = False
    pages: int = 0
    quota_waited_s: float = 0.0  # time spent waiting for the quota to reset instead of drawing a 429
    read: int = 0  # rows received over every page (``rows`` is empty when a caller took them page by page)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one refresh saw, joined. Lookup tables are keyed by lower-case id."""

    subscriptions: tuple[Subscription, ...]
    vms: tuple[Vm, ...]
    errors: tuple[SubscriptionError, ...] = ()
    events: tuple[ServiceEvent, ...] = ()
    nsgs: dict[str, NetworkSecurityGroup] = field(default_factory=dict)
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    public_ips: dict[str, PublicIp] = field(default_factory=dict)
    availability_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Resource Health's impacted resources of active service issues: tracking id (lower) -> resource ids.
    # An issue missing here lists none (its VMs are those "in the region").
    impacted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    requests: int = 0
    elapsed_s: float = 0.0
    fetched_at: datetime | None = None
    # A load still under way (the console's first load shows it as it comes): lower-case ids
    # of the VMs whose instance view is chosen to be read and not read yet (shown as "…").
    views_pending: frozenset[str] = frozenset()
    # ... and how many subscriptions' lists are still being read (0: every VM is listed).
    lists_pending: int = 0
    engine: str = "arm"  # what read it: "arm" (the subscription-wide lists) or "arg" (Azure Resource Graph)
    # What the operator must know about this answer's completeness (Resource Graph cut a
    # result short, searched only part of the scope, or changed while paged): one sentence each.
    warnings: tuple[str, ...] = ()

    def to_json(self, *, native: bool = False) -> dict[str, Any]:
        """The document of `aztriage inventory --format json` and the console's export
        (``native``: see ``Vm.to_json``)."""
        return {
            "vms": [vm.to_json(native=native) for vm in self.vms],
            "errors": [{"subscription_id": e.subscription_id, "code": e.code, "message": e.message} for e in self.errors],
            "warnings": list(self.warnings),
            "stats": {"requests": self.requests, "elapsed_s": round(self.elapsed_s, 3), "subscriptions": len(self.subscriptions), "engine": self.engine},
        }

    def vm_by_name(self, name: str) -> list[Vm]:
        return [v for v in self.vms if v.name.lower() == name.lower()]

    def vm_by_id(self, vm_id: str) -> Vm | None:
        low = vm_id.lower()
        for v in self.vms:
            if v.id.lower() == low:
                return v
        return None

    def nsg(self, nsg_id: str | None) -> NetworkSecurityGroup | None:
        return self.nsgs.get(nsg_id.lower()) if nsg_id else None


@dataclass(frozen=True)
class BootDiagnosticsData:
    """A VM's serial log and console screenshot as boot diagnostics captured them."""

    vm_id: str
    vm_name: str
    storage: str  # "managed storage" or "storage account NAME"
    serial_log: str | None  # the text (page-blob padding removed); None when it could not be read
    screenshot: bytes | None  # as the blob holds it (BMP from Azure)
    serial_error: str | None = None
    screenshot_error: str | None = None
    fetched_at: datetime | None = None
    sas_fetches: int = 0  # retrieve calls made: 0 (cached URLs), 1, or 2 when they had expired

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm_name,
            "vm_id": self.vm_id,
            "storage": self.storage,
            "serial_log_bytes": len(self.serial_log.encode()) if self.serial_log is not None else None,
            "screenshot_bytes": len(self.screenshot) if self.screenshot is not None else None,
            "serial_error": self.serial_error,
            "screenshot_error": self.screenshot_error,
            "fetched_at": self.fetched_at.isoformat(timespec="seconds") if self.fetched_at else None,
        }


# Every frozen, slotted model above sets its fields through its slots: about half the cost of a
# frozen dataclass's own __init__, for the ~100,000 objects of a 10,000-VM inventory (backend/quickinit.py).
quick_init_all(globals())
