"""From ARM wire documents to the dataclasses of ``backend.models``.

The SDK's hybrid models are mappings over the wire JSON (camelCase keys), so
everything here reads plain mappings: an SDK model and an estate document go
through the same code. Nothing here imports the SDK.

Every document reaches these functions already made safe (``backend.safetext``:
``safe_json``, or a list page whose bytes ``json_is_clean`` vouches for): the
adapter does it where the JSON comes in, so the models built here hold only
text that is safe to show.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from backend.models import (
    ActivityEvent,
    BootDiagnostics,
    Disk,
    EventUpdate,
    Extension,
    HealthStatus,
    ImpactedRegion,
    ImpactedService,
    InboundNatRule,
    LoadBalancer,
    Maintenance,
    NetworkInterface,
    NetworkSecurityGroup,
    PublicIp,
    RecommendedAction,
    ResourceId,
    SecurityRule,
    ServiceEvent,
    StorageAccount,
    Subscription,
    Vm,
)

Doc = Mapping[str, Any]


def _get(doc: Any, *path: str, default: Any = None) -> Any:
    cur = doc
    for key in path:
        # Wire documents are dicts (orjson); SDK models are other Mappings. The exact-type
        # test first: isinstance against an ABC costs more than the lookup itself.
        if cur.__class__ is not dict and not isinstance(cur, Mapping):
            return default
        cur = cur.get(key)
        if cur is None:
            return default
    return cur


# The times parse_time has read, by their text: a list's times repeat (Resource Health reports
# every status of a list at the same time, events share their windows), and a datetime is
# immutable, so each is read once and one object serves. Bounded: emptied when full.
_TIMES: dict[str, datetime | None] = {}
_TIMES_KEPT = 4096


def parse_time(value: Any) -> datetime | None:
    """An ARM timestamp, always timezone-aware: '2026-12-07T05:28:00.0000000+00:00' (seven
    fraction digits, as Compute writes them), '...Z' (Resource Health), or no offset at all
    (UTC, as some ARM responses have it). None for anything else."""
    if value.__class__ is str:
        try:
            return _TIMES[value]
        except KeyError:
            if len(_TIMES) >= _TIMES_KEPT:
                _TIMES.clear()
            parsed = _TIMES[value] = _read_time(value)
            return parsed
    return _read_time(value)


def _read_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    # ARM sends up to seven fraction digits; Python takes six. Only the digits right after
    # the point are the fraction: the offset that follows must survive.
    if "." in text:
        head, _, rest = text.partition(".")
        count = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:count][:6].ljust(6, '0')}{rest[count:]}" if count else head + rest
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sym(value: Any) -> Any:
    """One shared string for a value that repeats across thousands of VMs (a size, a SKU, a
    health summary): orjson makes a new string for every occurrence."""
    return sys.intern(value) if value.__class__ is str else value


def _lower(value: str | None) -> str:
    return (value or "").lower()


def _as_tuple(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def subscription(doc: Doc) -> Subscription:
    return Subscription(
        subscription_id=doc.get("subscriptionId") or ResourceId.parse(doc["id"]).subscription_id,
        display_name=doc.get("displayName") or doc.get("subscriptionId") or "",
        state=doc.get("state") or "Enabled",
    )


def storage_account(doc: Doc) -> StorageAccount:
    """Microsoft.Storage/storageAccounts (GET, ``StorageAccount``): its firewall (``networkAcls``)."""
    props = doc.get("properties") or {}
    acls = props.get("networkAcls") or {}
    allowed = [r for r in acls.get("ipRules") or () if isinstance(r, Mapping) and str(r.get("action") or "Allow").lower() == "allow"]
    return StorageAccount(
        id=doc["id"],
        name=doc.get("name") or ResourceId.parse(doc["id"]).name,
        location=doc.get("location") or "",
        default_action=str(acls.get("defaultAction") or "Allow"),
        public_network_access=str(props.get("publicNetworkAccess") or "Enabled"),
        bypass=str(acls.get("bypass") or "None"),
        ip_rules=tuple(str(r.get("value") or "") for r in allowed if r.get("value")),
        virtual_network_rules=len(acls.get("virtualNetworkRules") or ()),
    )


# --- network -----------------------------------------------------------------


def public_ip(doc: Doc) -> PublicIp:
    props = doc.get("properties") or {}
    return PublicIp(
        id=doc["id"],
        name=doc.get("name") or ResourceId.parse(doc["id"]).name,
        ip_address=props.get("ipAddress"),
        fqdn=_get(props, "dnsSettings", "fqdn"),
        allocation=_sym(props.get("publicIPAllocationMethod")),
        sku=_sym(_get(doc, "sku", "name")),
        zones=_as_tuple(doc.get("zones")),
    )


def security_rule(doc: Doc, nsg_id: str | None, default: bool) -> SecurityRule:
    props = doc.get("properties") or {}

    def many(single: str, plural: str) -> tuple[str, ...]:
        values = list(props.get(plural) or [])
        if props.get(single):
            values.insert(0, props[single])
        return tuple(values) or ("*",)

    src = many("sourceAddressPrefix", "sourceAddressPrefixes")
    dst = many("destinationAddressPrefix", "destinationAddressPrefixes")
    # Application security groups stand in for addresses; keep their names visible.
    if props.get("sourceApplicationSecurityGroups") and src == ("*",):
        src = tuple("asg:" + ResourceId.parse(a["id"]).name for a in props["sourceApplicationSecurityGroups"])
    if props.get("destinationApplicationSecurityGroups") and dst == ("*",):
        dst = tuple("asg:" + ResourceId.parse(a["id"]).name for a in props["destinationApplicationSecurityGroups"])
    return SecurityRule(
        name=doc.get("name") or "",
        priority=int(props.get("priority") or 0),
        direction=props.get("direction") or "Inbound",
        access=props.get("access") or "Allow",
        protocol=props.get("protocol") or "*",
        source_prefixes=src,
        source_ports=many("sourcePortRange", "sourcePortRanges"),
        destination_prefixes=dst,
        destination_ports=many("destinationPortRange", "destinationPortRanges"),
        default=default,
        nsg_id=nsg_id,
    )


def network_security_group(doc: Doc) -> NetworkSecurityGroup:
    props = doc.get("properties") or {}
    nsg_id = doc["id"]
    return NetworkSecurityGroup(
        id=nsg_id,
        name=doc.get("name") or ResourceId.parse(nsg_id).name,
        location=doc.get("location") or "",
        rules=tuple(security_rule(r, nsg_id, False) for r in props.get("securityRules") or ()),
        default_rules=tuple(security_rule(r, nsg_id, True) for r in props.get("defaultSecurityRules") or ()),
    )


def subnet_nsgs(vnet_docs: Iterable[Doc]) -> dict[str, str]:
    """Lower-cased subnet id -> NSG id for every subnet that has one."""
    out: dict[str, str] = {}
    for vnet in vnet_docs:
        for subnet in _get(vnet, "properties", "subnets", default=()) or ():
            nsg = _get(subnet, "properties", "networkSecurityGroup", "id")
            if nsg and subnet.get("id"):
                out[subnet["id"].lower()] = nsg
    return out


def load_balancer(doc: Doc, public_ips: Mapping[str, PublicIp]) -> LoadBalancer:
    props = doc.get("properties") or {}
    frontends: dict[str, tuple[str | None, str | None]] = {}
    for fe in props.get("frontendIPConfigurations") or ():
        fe_props = fe.get("properties") or {}
        pip = public_ips.get(_lower(_get(fe_props, "publicIPAddress", "id")))
        ip = pip.ip_address if pip else fe_props.get("privateIPAddress")
        frontends[_lower(fe.get("id"))] = (ip, pip.fqdn if pip else None)
    rules = []
    for nat in props.get("inboundNatRules") or ():
        nat_props = nat.get("properties") or {}
        ip, fqdn = frontends.get(_lower(_get(nat_props, "frontendIPConfiguration", "id")), (None, None))
        rules.append(
            InboundNatRule(
                id=nat.get("id") or "",
                name=nat.get("name") or "",
                load_balancer_id=doc["id"],
                frontend_ip=ip,
                frontend_fqdn=fqdn,
                frontend_port=int(nat_props.get("frontendPort") or 0),
                backend_port=int(nat_props.get("backendPort") or 0),
                protocol=nat_props.get("protocol") or "Tcp",
                backend_ip_configuration_id=_get(nat_props, "backendIPConfiguration", "id"),
            )
        )
    return LoadBalancer(
        id=doc["id"],
        name=doc.get("name") or "",
        location=doc.get("location") or "",
        sku=_get(doc, "sku", "name"),
        backend_pool_ids=tuple(p.get("id") or "" for p in props.get("backendAddressPools") or ()),
        inbound_nat_rules=tuple(rules),
    )


class NicFacts(NamedTuple):
    """What a VM's NIC row takes from the NIC resource, before public IPs and subnets are joined."""

    id: str
    name: str
    nsg_id: str | None
    subnet_id: str | None
    private_ips: tuple[str, ...]
    public_ip_refs: tuple[tuple[str, str | None], ...]  # (public IP id, its deleteOption)
    ip_configuration_ids: tuple[str, ...]
    load_balancer_backend_pool_ids: tuple[str, ...]
    load_balancer_inbound_nat_rule_ids: tuple[str, ...]
    accelerated_networking: bool
    ip_forwarding: bool


def nic_facts(doc: Doc) -> NicFacts:
    props = doc.get("properties") or {}
    private: list[str] = []
    pip_refs: list[tuple[str, str | None]] = []
    subnet_id = None
    ipconfig_ids: list[str] = []
    pools: list[str] = []
    nats: list[str] = []
    for cfg in props.get("ipConfigurations") or ():
        cfg_props = cfg.get("properties") or {}
        if cfg.get("id"):
            ipconfig_ids.append(cfg["id"])
        if cfg_props.get("privateIPAddress"):
            private.append(cfg_props["privateIPAddress"])
        subnet_id = subnet_id or _sym(_get(cfg_props, "subnet", "id"))
        pip_ref = cfg_props.get("publicIPAddress") or {}
        if pip_ref.get("id"):
            pip_refs.append((pip_ref["id"], _get(pip_ref, "properties", "deleteOption")))
        pools.extend(_sym(p.get("id")) for p in cfg_props.get("loadBalancerBackendAddressPools") or () if p.get("id"))
        nats.extend(n.get("id") for n in cfg_props.get("loadBalancerInboundNatRules") or () if n.get("id"))
    return NicFacts(
        id=doc["id"],
        name=doc.get("name") or ResourceId.parse(doc["id"]).name,
        nsg_id=_sym(_get(props, "networkSecurityGroup", "id")),  # the ids a resource group's VMs share: one string each
        subnet_id=subnet_id,
        private_ips=tuple(private),
        public_ip_refs=tuple(pip_refs),
        ip_configuration_ids=tuple(ipconfig_ids),
        load_balancer_backend_pool_ids=tuple(pools),
        load_balancer_inbound_nat_rule_ids=tuple(nats),
        accelerated_networking=bool(props.get("enableAcceleratedNetworking")),
        ip_forwarding=bool(props.get("enableIPForwarding")),
    )


def build_nic(
    facts: NicFacts,
    delete_option: str,
    primary: bool,
    public_ips: Mapping[str, PublicIp],
    subnet_nsg: Mapping[str, str],
) -> NetworkInterface:
    pips: list[PublicIp] = []
    for pip_id, pip_delete in facts.public_ip_refs:
        pip = public_ips.get(pip_id.lower())
        if pip is None:
            pips.append(PublicIp(id=pip_id, name=ResourceId.parse(pip_id).name, ip_address=None, delete_option=pip_delete))
        else:  # the address as this NIC holds it (dataclasses.replace, without its cost per call)
            pips.append(
                PublicIp(
                    id=pip.id,
                    name=pip.name,
                    ip_address=pip.ip_address,
                    fqdn=pip.fqdn,
                    allocation=pip.allocation,
                    sku=pip.sku,
                    zones=pip.zones,
                    delete_option=pip_delete,
                )
            )
    return NetworkInterface(
        id=facts.id,
        name=facts.name,
        delete_option=delete_option,
        primary=primary,
        nsg_id=facts.nsg_id,
        subnet_id=facts.subnet_id,
        subnet_nsg_id=subnet_nsg.get(facts.subnet_id.lower()) if facts.subnet_id else None,
        private_ips=facts.private_ips,
        public_ips=tuple(pips),
        ip_configuration_ids=facts.ip_configuration_ids,
        load_balancer_backend_pool_ids=facts.load_balancer_backend_pool_ids,
        load_balancer_inbound_nat_rule_ids=facts.load_balancer_inbound_nat_rule_ids,
        accelerated_networking=facts.accelerated_networking,
        ip_forwarding=facts.ip_forwarding,
    )


def network_interface(
    doc: Doc,
    delete_option: str,
    primary: bool,
    public_ips: Mapping[str, PublicIp],
    subnet_nsg: Mapping[str, str],
) -> NetworkInterface:
    return build_nic(nic_facts(doc), delete_option, primary, public_ips, subnet_nsg)


# --- health ------------------------------------------------------------------


def health_status(doc: Doc) -> HealthStatus:
    # AvailabilityStatus is not flattened: everything sits under "properties".
    props = doc.get("properties") or {}
    resolved = props.get("recentlyResolved") or {}
    actions = tuple(
        RecommendedAction(action=_sym(a.get("action") or ""), url=_sym(a.get("actionUrl"))) for a in props.get("recommendedActions") or () if a.get("action")
    )
    return HealthStatus(
        availability_state=_sym(props.get("availabilityState") or "Unknown"),
        title=_sym(props.get("title")),
        summary=_sym(props.get("summary")),
        detailed_status=_sym(props.get("detailedStatus")),
        reason_type=_sym(props.get("reasonType")),
        reason_chronicity=_sym(props.get("reasonChronicity")),
        since=parse_time(props.get("occuredTime") or props.get("occurredTime")),
        reported_time=parse_time(props.get("reportedTime")),
        resolution_eta=parse_time(props.get("resolutionETA")),
        recommended_actions=actions,
        recently_resolved_summary=resolved.get("unavailableSummary") or resolved.get("unavailabilitySummary"),
        recently_resolved_at=parse_time(resolved.get("resolvedTime")),
        context=_sym(props.get("context")),
        category=_sym(props.get("category")),
    )


def _localized(value: Any) -> tuple[str, str]:
    """(value, localizedValue) of a LocalizableString (or a plain string)."""
    if isinstance(value, Mapping):
        raw = str(value.get("value") or "")
        return raw, str(value.get("localizedValue") or raw)
    text = str(value or "")
    return text, text


def activity_event(doc: Doc) -> ActivityEvent | None:
    """One activity-log EventData (wire JSON, already made safe); None without a readable time."""
    at = parse_time(doc.get("eventTimestamp"))
    if at is None:
        return None
    operation, label = _localized(doc.get("operationName"))
    status, _ = _localized(doc.get("status"))
    sub_status, _ = _localized(doc.get("subStatus"))
    http = doc.get("httpRequest") or {}
    return ActivityEvent(
        time=at,
        operation=_sym(operation),
        operation_label=_sym(label),
        status=_sym(status),
        caller=str(doc.get("caller") or ""),
        resource_id=str(doc.get("resourceId") or ""),
        correlation_id=str(doc.get("correlationId") or ""),
        sub_status=_sym(sub_status),
        client_ip=str(http.get("clientIpAddress") or "") if isinstance(http, Mapping) else "",
        level=_sym(str(doc.get("level") or "")),
        description=str(doc.get("description") or ""),
        event_id=str(doc.get("eventDataId") or ""),
    )


def health_target_id(doc: Doc) -> str:
    """The resource an availability status belongs to (its id minus the RH suffix)."""
    raw = doc.get("id") or ""
    marker = "/providers/microsoft.resourcehealth/"
    idx = raw.lower().find(marker)
    return raw[:idx] if idx >= 0 else raw


def impacted_target(doc: Doc) -> str | None:
    """The resource id an impactedResources entry names (entries with only 'info' name none)."""
    target = (doc.get("properties") or {}).get("targetResourceId")
    return target if isinstance(target, str) and target.startswith("/subscriptions/") else None


def camel_keys(value: Any) -> Any:
    """Resource Graph's servicehealthresources properties (EventType, Status, Impact, ...) with
    the first letter of each key lowered: the keys of Resource Health's own event documents."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def service_event(doc: Doc, subscription_id: str) -> ServiceEvent:
    props = doc.get("properties") or {}
    impact = []
    for svc in props.get("impact") or ():
        regions = []
        for reg in svc.get("impactedRegions") or ():
            updates = tuple(EventUpdate(summary=u.get("summary") or "", time=parse_time(u.get("updateDateTime"))) for u in reg.get("updates") or ())
            regions.append(ImpactedRegion(region=reg.get("impactedRegion") or "", status=reg.get("status"), updates=updates))
        impact.append(ImpactedService(service=svc.get("impactedService") or "", regions=tuple(regions)))
    return ServiceEvent(
        id=doc.get("name") or ResourceId.parse(doc.get("id") or f"/subscriptions/{subscription_id}").name,
        subscription_id=subscription_id,
        type=props.get("eventType") or "",
        status=props.get("status") or "",
        level=props.get("eventLevel") or props.get("level"),
        title=props.get("title") or "",
        summary=props.get("summary") or props.get("description"),
        impact_start=parse_time(props.get("impactStartTime")),
        impact_mitigation=parse_time(props.get("impactMitigationTime")),
        last_update=parse_time(props.get("lastUpdateTime")),
        impact=tuple(impact),
    )


# --- compute -----------------------------------------------------------------

_POWER_PREFIX = "powerstate/"
UNIFORM_INSTANCE_TYPE = "microsoft.compute/virtualmachinescalesets/virtualmachines"
_PROVISIONING_PREFIX = "provisioningstate/"


def power_and_provisioning(instance_view: Doc | None, model_state: str | None) -> tuple[str, str]:
    power = "unknown"
    provisioning = model_state or "Unknown"
    for status in (instance_view or {}).get("statuses") or ():
        code = _lower(status.get("code"))
        if code.startswith(_POWER_PREFIX):
            power = code[len(_POWER_PREFIX) :]
        elif code.startswith(_PROVISIONING_PREFIX):
            state = code[len(_PROVISIONING_PREFIX) :]
            provisioning = state.split("/", 1)[0].capitalize()
    return power, provisioning


def agent_status(instance_view: Doc | None) -> tuple[str, str | None]:
    agent = (instance_view or {}).get("vmAgent")
    if not agent:
        return "Unknown", None
    status = "Unknown"
    for s in agent.get("statuses") or ():
        if s.get("displayStatus"):
            status = s["displayStatus"]
            break
    return status, agent.get("vmAgentVersion")


_NO_MAINTENANCE = Maintenance()  # frozen: one object serves every VM without pending maintenance


def maintenance(instance_view: Doc | None) -> Maintenance:
    m = (instance_view or {}).get("maintenanceRedeployStatus") or {}
    if not m:
        return _NO_MAINTENANCE
    return Maintenance(
        self_service_allowed=bool(m.get("isCustomerInitiatedMaintenanceAllowed")),
        window_start=parse_time(m.get("preMaintenanceWindowStartTime")),
        window_end=parse_time(m.get("preMaintenanceWindowEndTime")),
        maintenance_window_start=parse_time(m.get("maintenanceWindowStartTime")),
        maintenance_window_end=parse_time(m.get("maintenanceWindowEndTime")),
        last_result=m.get("lastOperationResultCode"),
        last_message=m.get("lastOperationMessage"),
    )


class DiskFacts(NamedTuple):
    """What a VM's disk row takes from the disk resource."""

    sku: str | None = None
    size_gb: int | None = None
    zones: tuple[str, ...] = ()
    hyper_v_generation: str | None = None
    security_type: str | None = None
    disk_state: str | None = None


_NO_DISK = DiskFacts()
_IMAGE_PARTS = ("publisher", "offer", "sku", "version")


def disk_facts(doc: Doc) -> DiskFacts:
    props = doc.get("properties") or {}
    return DiskFacts(
        sku=_sym(_get(doc, "sku", "name")),
        size_gb=props.get("diskSizeGB"),
        zones=_as_tuple(doc.get("zones")),
        hyper_v_generation=_sym(props.get("hyperVGeneration")),
        security_type=_sym(_get(props, "securityProfile", "securityType")),
        disk_state=_sym(props.get("diskState")),
    )


def _disk(ref: Doc, disks: Mapping[str, DiskFacts], lun: int | None) -> Disk:
    managed = ref.get("managedDisk") or {}
    disk_id = managed.get("id")
    facts = (disks.get(disk_id.lower()) if disk_id else None) or _NO_DISK
    vhd = _get(ref, "vhd", "uri")
    return Disk(
        name=ref.get("name") or (ResourceId.parse(disk_id).name if disk_id else "") or (vhd or "").rsplit("/", 1)[-1],
        id=disk_id,
        sku=facts.sku or _sym(managed.get("storageAccountType")),
        managed=bool(disk_id) or not vhd,
        delete_option=_sym(ref.get("deleteOption") or "Detach"),
        vhd_uri=vhd,
        lun=lun,
        size_gb=ref.get("diskSizeGB") or facts.size_gb,
        caching=_sym(ref.get("caching")),
        create_option=_sym(ref.get("createOption")),
        ephemeral=bool(ref.get("diffDiskSettings")),
        zones=facts.zones,
        hyper_v_generation=facts.hyper_v_generation,
        security_type=facts.security_type,
        disk_state=facts.disk_state,
    )


# One frozen BootDiagnostics per setting (managed storage on or off, or a storage account):
# thousands of VMs share a handful of them.
_BOOT_DIAGNOSTICS: dict[tuple[bool, Any], BootDiagnostics] = {}


def _boot_diagnostics(enabled: bool, storage_uri: Any) -> BootDiagnostics:
    if storage_uri is not None and storage_uri.__class__ is not str:  # not what ARM sends: made as it is, not shared
        return BootDiagnostics(enabled=enabled, storage_uri=storage_uri)
    key = (enabled, storage_uri)
    found = _BOOT_DIAGNOSTICS.get(key)
    if found is None:
        found = BootDiagnostics(enabled=enabled, storage_uri=storage_uri)
        if len(_BOOT_DIAGNOSTICS) < 1024:  # bounded: storage URIs come from the tenant
            _BOOT_DIAGNOSTICS[key] = found
    return found


def virtual_machine(
    doc: Doc,
    instance_view: Doc | None,
    *,
    disks: Mapping[str, DiskFacts],
    nics: Mapping[str, NicFacts],
    public_ips: Mapping[str, PublicIp],
    subnet_nsg: Mapping[str, str],
    health: HealthStatus | None,
) -> Vm:
    """One VM from its model document and instance view; ``disks`` and ``nics`` hold the
    facts of the subscription's disk and NIC resources (``disk_facts``, ``nic_facts``)."""
    rid = ResourceId.parse(doc["id"])
    props = doc.get("properties") or {}
    # An instance of a Uniform scale set: its size is the scale set's SKU, its scale set is in its id.
    uniform = _lower(doc.get("type")) == UNIFORM_INSTANCE_TYPE
    storage = props.get("storageProfile") or {}
    os_ref = storage.get("osDisk") or {}
    view = instance_view if instance_view is not None else props.get("instanceView")
    seen = view or {}
    power, provisioning = power_and_provisioning(view, props.get("provisioningState"))
    agent, agent_version = agent_status(view)
    boot = _get(props, "diagnosticsProfile", "bootDiagnostics") or {}

    vm_nics = []
    for ref in _get(props, "networkProfile", "networkInterfaces", default=()) or ():
        ref_props = ref.get("properties") or {}
        facts = nics.get(_lower(ref.get("id")))
        delete_option = ref_props.get("deleteOption") or "Detach"
        primary = bool(ref_props.get("primary", True))
        if facts is None:
            # The NIC list did not have it (vanished, or no access): keep the reference visible.
            vm_nics.append(NetworkInterface(id=ref.get("id") or "", name=ResourceId.parse(ref["id"]).name, delete_option=delete_option, primary=primary))
            continue
        vm_nics.append(build_nic(facts, delete_option, primary, public_ips, subnet_nsg))

    extensions = []
    views = {e.get("name"): e for e in seen.get("extensions") or ()}
    for ext in doc.get("resources") or ():
        ext_props = ext.get("properties") or {}
        ev = views.get(ext.get("name")) or {}
        status = next((s.get("displayStatus") for s in ev.get("statuses") or () if s.get("displayStatus")), None)
        extensions.append(
            Extension(
                name=ext.get("name") or "",
                type=_sym(ext_props.get("type")),
                publisher=_sym(ext_props.get("publisher")),
                version=_sym(ext_props.get("typeHandlerVersion")),
                provisioning_state=_sym(ext_props.get("provisioningState")),
                status=_sym(status),
            )
        )
    known = {e.name for e in extensions}
    for name, ev in views.items():
        if name and name not in known:
            status = next((s.get("displayStatus") for s in ev.get("statuses") or () if s.get("displayStatus")), None)
            extensions.append(
                Extension(name=name, type=ev.get("type"), publisher=None, version=ev.get("typeHandlerVersion"), provisioning_state=None, status=status)
            )

    os_profile = props.get("osProfile") or {}
    image = storage.get("imageReference") or {}
    image_text = ":".join([str(image[k]) for k in _IMAGE_PARTS if image.get(k)]) or None
    data_refs = storage.get("dataDisks")
    tags = doc.get("tags")
    return Vm(
        id=doc["id"],
        name=doc.get("name") or rid.name,
        subscription_id=_sym(rid.subscription_id),
        resource_group=_sym(rid.resource_group),
        location=_sym(doc.get("location") or ""),
        size=_sym(_get(props, "hardwareProfile", "vmSize") or (_get(doc, "sku", "name") if uniform else None) or ""),
        os_type=_sym(os_ref.get("osType") or ("Windows" if os_profile.get("windowsConfiguration") else "Linux")),
        power_state=_sym(power),
        provisioning_state=_sym(provisioning),
        os_disk=_disk(os_ref, disks, None),
        data_disks=tuple([_disk(d, disks, d.get("lun")) for d in data_refs]) if data_refs else (),
        nics=tuple(vm_nics),
        health=health,
        zones=_as_tuple(doc.get("zones")),
        availability_set=_sym(_get(props, "availabilitySet", "id")),
        platform_fault_domain=seen.get("platformFaultDomain"),
        platform_update_domain=seen.get("platformUpdateDomain"),
        vmss_id=_sym(_get(props, "virtualMachineScaleSet", "id")) or (doc["id"].rsplit("/virtualMachines/", 1)[0] if uniform else None),
        uniform_instance=uniform,
        priority=_sym(props.get("priority")),
        agent_status=_sym(agent),
        agent_version=_sym(agent_version),
        boot_diagnostics=_boot_diagnostics(bool(boot.get("enabled")), _sym(boot.get("storageUri"))),
        maintenance=maintenance(view),
        extensions=tuple(extensions),
        tags=tuple(sorted([(_sym(k), _sym(v)) for k, v in tags.items()])) if tags else (),
        computer_name=os_profile.get("computerName") or seen.get("computerName"),
        admin_username=os_profile.get("adminUsername"),
        hyper_v_generation=_sym(seen.get("hyperVGeneration")),
        security_type=_sym(_get(props, "securityProfile", "securityType")),
        image=image_text,
        time_created=parse_time(props.get("timeCreated")),
    )
