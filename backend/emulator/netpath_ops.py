"""Network path operations as Azure serves them: VPN resets and public IP writes.

- ``POST .../connections/{name}/resetconnection`` (VirtualNetworkGatewayConnections_ResetConnection):
  202 with ``Azure-AsyncOperation`` and ``Location``; the connection's tunnels are torn down and
  negotiated again, so while the operation runs its ``connectionStatus`` is ``Connecting``.
- ``POST .../virtualNetworkGateways/{name}/reset`` (VirtualNetworkGateways_Reset): 202, long-running,
  its final result the gateway (read from ``Location``). The gateway's active instance reboots and
  the standby takes over: every connection on the gateway is ``Connecting`` while it runs.
- ``PUT .../publicIPAddresses/{name}`` (PublicIPAddresses_CreateOrUpdate): long-running (201/200 with
  ``Azure-AsyncOperation``), ``Updating`` until it ends; a failed write leaves the IP as it was.
- ``PUT .../networkInterfaces/{name}`` (NetworkInterfaces_CreateOrUpdate): the same (``write_nic``);
  another write while one runs is refused with ``409 AnotherOperationInProgress``;
- ``PUT .../networkSecurityGroups/{name}`` (NetworkSecurityGroups_CreateOrUpdate): the same (``write_nsg``).

Why a connection is down is a fact of the estate, kept beside the connection in the guest facts
(``tunnel``), never in its document: ``stuck`` (a stale IKE/IPsec security association: a reset of
the connection or of its gateway brings it back), ``gateway`` (the gateway instance is wedged: only
a gateway reset does) and ``peer-down`` (the on-premises device does not answer: no reset helps).

Public IP rules, from Microsoft Learn ("Public IP addresses", "Upgrade a public IP address"):

- a Standard SKU address is always Static (400 ``StandardSkuPublicIPAddressesMustBeStatic``);
- the SKU of an IP that is associated with an IP configuration cannot change: Azure answers
  ``400 PublicIPAddressInUseCannotUpdate`` naming the configuration; disassociate it first;
- a Standard IP cannot go back to Basic (``400 PublicIPSkuDowngradeNotAllowed``);
- an address is kept when a Basic IP goes from Dynamic to Static while it has one, and when its
  SKU is upgraded; a Dynamic IP loses its address when it is disassociated (or its VM
  deallocated); a Static or Standard IP without an address gets a new one.

A NIC write that references a public IP associates it (the IP's ``ipConfiguration``); one that
drops the reference disassociates it. A public IP already used by another IP configuration is
refused with ``400 PublicIPAddressInUse``. Standard public IPs are closed to inbound traffic
unless an NSG allows it (``guest.py`` acts that out).
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import uuid
from collections.abc import Callable
from typing import Any

from .arm import ArmResponse, register_action
from .ids import ArmError, normalize_id
from .store import Store

CONNECTION_T = "microsoft.network/connections"
GATEWAY_T = "microsoft.network/virtualnetworkgateways"
PIP_T = "microsoft.network/publicipaddresses"
NIC_T = "microsoft.network/networkinterfaces"

# What a reset of each kind clears (the connection's ``tunnel`` fact).
CLEARED_BY = {"connection": ("stuck",), "gateway": ("stuck", "gateway")}
# Where the emulator hands out new public addresses when the estate's are on loopback (the demo).
LOOPBACK_POOL = "127.10.251."


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _lower(value: Any) -> str:
    return str(value or "").lower()


def tunnel_fact(store: Store, connection_id: str) -> str:
    return str(store.guest_facts(connection_id).get("tunnel") or "")


def _set_connection_status(store: Store, connection_id: str, status: str) -> None:
    if store.get(connection_id) is None:
        return
    store.own(connection_id).setdefault("properties", {})["connectionStatus"] = status
    store.touch(normalize_id(connection_id).lower())


def _connections_of(store: Store, gateway_id: str) -> list[dict]:
    gw = gateway_id.lower()
    return [
        c
        for c in store.all_of_type("Microsoft.Network/connections")
        if _lower((_props(c).get("virtualNetworkGateway1") or {}).get("id")) == gw or _lower((_props(c).get("virtualNetworkGateway2") or {}).get("id")) == gw
    ]


def _after_reset(store: Store, connection_id: str, kind: str) -> None:
    """The connection's status once a reset of `kind` has ended."""
    fact = tunnel_fact(store, connection_id)
    if fact in CLEARED_BY[kind] or not fact:
        if fact:
            store.own_guest(connection_id)["tunnel"] = "up"
        _set_connection_status(store, connection_id, "Connected")
    elif fact == "up":
        _set_connection_status(store, connection_id, "Connected")
    else:
        _set_connection_status(store, connection_id, "NotConnected")


def _busy(doc: dict, what: str) -> None:
    state = _props(doc).get("provisioningState")
    if state in ("Updating", "Deleting"):
        raise ArmError(
            409,
            "AnotherOperationInProgress",
            f"Another operation on this or dependent resource is in progress ({what} {doc.get('name')}): retry when it has finished.",
        )


def _to_reset(arm: Any, req: Any, what: str) -> dict:
    """The resource a reset names: refused under a lock, or while another operation runs on it."""
    route = req.route
    doc = arm.store.must(route.resource_id)
    arm._check_writable(route.sub or "", route.rg)
    _busy(doc, what)
    return doc


def _reset_connection(arm: Any, req: Any) -> ArmResponse:
    store: Store = arm.store
    doc = _to_reset(arm, req, "connection")
    cid = doc["id"]
    before = _props(doc).get("connectionStatus") or "Unknown"
    make = arm.operation_factory(req, cid, namespace="Microsoft.Network", location=doc.get("location"), duration_key="connection.reset")
    _set_connection_status(store, cid, "Connecting")

    def success(op: Any) -> None:
        _after_reset(store, cid, "connection")

    def failure(op: Any) -> None:
        _set_connection_status(store, cid, before)

    op = make("resetconnection", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 202)


def _set_gateway_state(store: Store, gateway_id: str, state: str) -> None:
    if store.get(gateway_id) is None:
        return
    store.own(gateway_id).setdefault("properties", {})["provisioningState"] = state
    store.touch(normalize_id(gateway_id).lower())


def _reset_gateway(arm: Any, req: Any) -> ArmResponse:
    store: Store = arm.store
    doc = _to_reset(arm, req, "virtual network gateway")
    gid = doc["id"]
    before = {c["id"]: _props(c).get("connectionStatus") or "Unknown" for c in _connections_of(store, gid)}
    make = arm.operation_factory(req, gid, namespace="Microsoft.Network", location=doc.get("location"), duration_key="gateway.reset")
    _set_gateway_state(store, gid, "Updating")
    for cid in before:
        _set_connection_status(store, cid, "Connecting")

    def success(op: Any) -> None:
        _set_gateway_state(store, gid, "Succeeded")
        for cid in before:
            _after_reset(store, cid, "gateway")
        op.result = copy.deepcopy(store.get(gid))

    def failure(op: Any) -> None:
        _set_gateway_state(store, gid, "Failed" if op.forced == "Failed" else "Succeeded")
        for cid, status in before.items():
            _set_connection_status(store, cid, status)

    op = make("reset", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 202)


# --- public IP addresses -------------------------------------------------------------------------


def _sku(doc: dict | None) -> str:
    return _lower(((doc or {}).get("sku") or {}).get("name")) or "basic"


def _allocation(doc: dict | None) -> str:
    return _lower(_props(doc).get("publicIPAllocationMethod")) or "dynamic"


def new_address(store: Store, pip_id: str) -> str:
    """A fresh public address: on loopback when the estate's are (the demo's guests listen there)."""
    h = uuid.uuid5(uuid.NAMESPACE_URL, pip_id.lower()).int
    used = {_props(p).get("ipAddress") for p in store.all_of_type("Microsoft.Network/publicIPAddresses")}
    loopback = any(_is_loopback(a) for a in used if a)
    if not loopback:
        return f"20.{(h >> 16) & 255}.{(h >> 8) & 255}.{max(1, h & 255)}"
    for n in range(250):
        candidate = f"{LOOPBACK_POOL}{(h + n) % 250 + 1}"
        if candidate not in used:
            return candidate
    raise ArmError(409, "PublicIPCountLimitReached", "Cannot create more public IP addresses in this region.")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _vm_running(store: Store, ip_configuration_id: str | None) -> bool:
    """Whether the VM whose NIC holds this IP configuration is running (a dynamic IP has an address then)."""
    if not ip_configuration_id or "/ipconfigurations/" not in ip_configuration_id.lower():
        return False
    nic = store.get(ip_configuration_id[: ip_configuration_id.lower().index("/ipconfigurations/")])
    vm_id = str((_props(nic).get("virtualMachine") or {}).get("id") or "")
    return bool(vm_id) and store.get(vm_id) is not None and store.power_state(vm_id) == "running"


def write_public_ip(arm: Any, req: Any, doc: dict, existing: dict | None) -> ArmResponse:
    """PublicIPAddresses_CreateOrUpdate (and a PATCH that reaches here): validated, Updating until it ends."""
    store: Store = arm.store
    props = doc.setdefault("properties", {})
    if not (doc.get("sku") or {}).get("name"):
        doc["sku"] = copy.deepcopy((existing or {}).get("sku") or {"name": "Basic"})
    # Azure's defaults (the example's request names only a location).
    props.setdefault("publicIPAllocationMethod", "Static" if _sku(doc) == "standard" else "Dynamic")
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    sku, allocation = _sku(doc), _allocation(doc)
    name = doc.get("name")
    if sku == "standard" and allocation != "static":
        raise ArmError(400, "StandardSkuPublicIPAddressesMustBeStatic", f"Standard sku publicIp {doc['id']} must have AllocationMethod set to Static.")
    if existing is not None:
        _busy(existing, "public IP address")
        old_sku = _sku(existing)
        configuration = (_props(existing).get("ipConfiguration") or {}).get("id")
        if old_sku == "standard" and sku == "basic":
            raise ArmError(400, "PublicIPSkuDowngradeNotAllowed", f"Public IP address {doc['id']} cannot be changed from Standard to Basic SKU.")
        if old_sku != sku and configuration:
            raise ArmError(
                400, "PublicIPAddressInUseCannotUpdate", f"Public IP address {doc['id']} is in use by ipconfig {configuration} and cannot be updated."
            )
    address = _props(existing).get("ipAddress") if existing is not None else None
    configuration = (_props(existing).get("ipConfiguration") or {}).get("id") if existing is not None else None
    if not address and (allocation == "static" or (configuration and _vm_running(store, configuration))):
        address = new_address(store, doc["id"])
    props.pop("ipAddress", None)
    if address:
        props["ipAddress"] = address
    return long_running_put(arm, req, doc, existing, duration_key="publicip.put", what=f"public IP {name}")


def long_running_put(
    arm: Any, req: Any, doc: dict, existing: dict | None, *, duration_key: str, what: str, on_success: Callable[[dict, dict | None], None] | None = None
) -> ArmResponse:
    """A network resource's CreateOrUpdate as Azure serves it: 201 (new) or 200 (update) with
    Azure-AsyncOperation, ``Updating`` until the operation ends; ``on_success(doc, previous)``
    applies its effects then, and a failed operation leaves the resource as it was (a new one goes)."""
    store: Store = arm.store
    props = doc.setdefault("properties", {})
    if existing is None:
        props.setdefault("resourceGuid", str(uuid.uuid4()))
    previous = copy.deepcopy(existing)
    props["provisioningState"] = "Updating"
    store.put(doc)
    rid = doc["id"]
    make = arm.operation_factory(req, rid, namespace="Microsoft.Network", location=doc.get("location"), duration_key=duration_key)

    def success(op: Any) -> None:
        current = store.get(rid)
        if current is None:
            return
        store.own(rid).setdefault("properties", {})["provisioningState"] = "Succeeded"
        if on_success is not None:
            on_success(current, previous)
        store.touch(normalize_id(rid).lower())

    def failure(op: Any) -> None:
        if previous is None:
            store.remove(rid, reason=f"the create of {what} failed")
        else:
            store.put(previous)

    op = make("put", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 200 if existing is not None else 201, copy.deepcopy(doc))


# --- NIC writes associate and disassociate public IPs ---------------------------------------------


def _referenced_ips(nic: dict | None) -> dict[str, str]:
    """public IP id (lower) -> the id of the IP configuration that references it."""
    out = {}
    for cfg in _props(nic).get("ipConfigurations") or ():
        pip = (_props(cfg).get("publicIPAddress") or {}).get("id")
        if pip:
            out[normalize_id(pip).lower()] = cfg.get("id") or f"{(nic or {}).get('id')}/ipConfigurations/{cfg.get('name')}"
    return out


def assign_private_ips(store: Store, doc: dict, existing: dict | None) -> None:
    """ARM gives every IP configuration a private address from its subnet: one it already had
    (the same configuration), a static one asked for, or the next free host of the subnet
    (Azure keeps the first four and the broadcast address for itself)."""
    before = {str(c.get("name") or "").lower(): _props(c).get("privateIPAddress") for c in _props(existing).get("ipConfigurations") or ()}
    for cfg in _props(doc).get("ipConfigurations") or ():
        props = cfg.setdefault("properties", {})
        kept = before.get(str(cfg.get("name") or "").lower())
        if str(props.get("privateIPAllocationMethod") or "Dynamic").lower() == "dynamic" and kept:
            props["privateIPAddress"] = kept
        if props.get("privateIPAddress"):
            continue
        subnet_id = str((props.get("subnet") or {}).get("id") or "")
        if "/subnets/" not in subnet_id.lower():
            continue
        vnet = store.get(subnet_id[: subnet_id.lower().index("/subnets/")])
        subnet_name = subnet_id.rsplit("/", 1)[-1].lower()
        prefix = next((_props(s).get("addressPrefix") for s in _props(vnet).get("subnets") or () if str(s.get("name") or "").lower() == subnet_name), None)
        if not prefix:
            continue
        used = {
            _props(c).get("privateIPAddress")
            for nic in store.all_of_type("Microsoft.Network/networkInterfaces")
            for c in _props(nic).get("ipConfigurations") or ()
        }
        network = ipaddress.ip_network(str(prefix), strict=False)
        for host in itertools.islice(network.hosts(), 3, None):
            if str(host) not in used:
                props["privateIPAddress"] = str(host)
                break
        else:
            raise ArmError(400, "SubnetIsFull", f"Subnet {subnet_id} has no free address.")
        props.setdefault("privateIPAllocationMethod", "Dynamic")


def check_nic_write(store: Store, doc: dict) -> None:
    """Refuse a NIC write that takes a public IP another IP configuration holds."""
    for pip_l, cfg_id in _referenced_ips(doc).items():
        pip = store.get(pip_l)
        if pip is None:
            raise ArmError(400, "InvalidResourceReference", f"Resource {pip_l} referenced by resource {doc['id']} was not found.")
        holder = (_props(pip).get("ipConfiguration") or {}).get("id")
        if holder and holder.lower() != cfg_id.lower():
            raise ArmError(400, "PublicIPAddressInUse", f"Resource {pip['id']} is in use by {holder}; it cannot be referenced by {cfg_id}.")


def write_nic(arm: Any, req: Any, doc: dict, existing: dict | None) -> ArmResponse:
    """NetworkInterfaces_CreateOrUpdate: long-running as Azure serves it (201 for a new NIC, 200 for an
    update, with Azure-AsyncOperation), ``Updating`` until the operation ends. The public IPs it
    references are associated (and those it dropped disassociated) when it succeeds; a failed write
    leaves the NIC, and its public IPs, as they were."""
    store: Store = arm.store
    if existing is not None:
        _busy(existing, "network interface")
    check_nic_write(store, doc)
    assign_private_ips(store, doc, existing)
    return long_running_put(
        arm,
        req,
        doc,
        existing,
        duration_key="nic.put",
        what=f"network interface {doc.get('name')}",
        on_success=lambda current, previous: sync_nic_public_ips(store, current, previous),
    )


def sync_nic_public_ips(store: Store, doc: dict, existing: dict | None) -> None:
    """After a NIC write: the public IPs it references are associated, those it dropped are not."""
    now = _referenced_ips(doc)
    before = _referenced_ips(existing)
    for pip_l, cfg_id in now.items():
        pip = store.get(pip_l)
        if pip is None:
            continue
        props = store.own(pip_l).setdefault("properties", {})
        props["ipConfiguration"] = {"id": cfg_id}
        if not props.get("ipAddress") and _vm_running(store, cfg_id):
            props["ipAddress"] = new_address(store, pip["id"])
        store.touch(normalize_id(pip_l).lower())
    for pip_l in before.keys() - now.keys():
        pip = store.get(pip_l)
        if pip is None:
            continue
        props = store.own(pip_l).setdefault("properties", {})
        props.pop("ipConfiguration", None)
        if _allocation(pip) == "dynamic":
            props.pop("ipAddress", None)  # a dynamic address is released with its association
        store.touch(normalize_id(pip_l).lower())


def write_nsg(arm: Any, req: Any, doc: dict, existing: dict | None) -> ArmResponse:
    """NetworkSecurityGroups_CreateOrUpdate: long-running as Azure serves it (201 for a new NSG, 200
    for an update, with Azure-AsyncOperation), ``Updating`` until it ends; another write while one
    runs is refused with 409; a failed create leaves no NSG, a failed update the NSG as it was."""
    if existing is not None:
        _busy(existing, "network security group")
    return long_running_put(arm, req, doc, existing, duration_key="nsg.put", what=f"network security group {doc.get('name')}")


register_action("Microsoft.Network/connections", "resetconnection", _reset_connection)
register_action("Microsoft.Network/virtualNetworkGateways", "reset", _reset_gateway)
