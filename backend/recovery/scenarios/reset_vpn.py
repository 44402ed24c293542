"""reset-vpn: bring back the site-to-site VPN connection a private-only VM is reached through.

For the no-public-path verdict whose private path names a connection that is not Connected.
Two resets, from lightest to heaviest, as Microsoft Learn ("Reset a VPN gateway or connection")
describes them:

- the connection (VirtualNetworkGatewayConnections – Reset Connection): its IPsec/IKE security
  associations are torn down and negotiated again; only traffic over that connection stops, for
  seconds to about a minute. Azure takes about a minute.
- with ``gateway``, the gateway (VirtualNetworkGateways – Reset), when the connection reset did
  not bring it back: the gateway's active instance reboots and the standby takes over. Every
  connection on the gateway (site-to-site and point-to-site) drops for up to a minute; Azure takes
  a few minutes. A second gateway reset right after the first reboots the other instance too: up
  to 30–45 minutes with no VPN at all. Destructive: the VM's name is typed.

The connection's status is read again after each reset; the run ends verified only when it is
Connected. When neither reset helps, the on-premises device is named (its address and its
network) as what to check next.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import RecoveryBackend
from backend.models import ResourceId, Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified
from backend.recovery.scenarios._common import plan
from backend.recovery.steps import poll_until
from backend.safetext import safe_line

CONNECTION_RESET = "Azure takes about a minute; traffic over this connection stops while its tunnels are negotiated again (seconds to a minute)"
GATEWAY_RESET = (
    "Azure takes a few minutes: the gateway's active instance reboots and the standby takes over, so every connection on the gateway "
    "(site-to-site and point-to-site) drops for up to a minute. A second gateway reset right after this one reboots the other instance "
    "too: up to 30-45 minutes with no VPN at all."
)


def _props(doc: dict[str, Any] | None) -> dict[str, Any]:
    return (doc or {}).get("properties") or {}


def _name(resource_id: str | None) -> str:
    return safe_line(ResourceId.parse(resource_id).name) if resource_id else ""


def _status(doc: dict[str, Any] | None) -> str:
    return safe_line(str(_props(doc).get("connectionStatus") or "Unknown"))


@dataclass(frozen=True)
class Layout:
    connection_id: str
    connection: str
    status: str  # as the plan saw it
    gateway_id: str
    gateway: str
    peer: str  # the local network gateway (on-premises device) or the other VNet's gateway
    peer_address: str | None
    peer_prefixes: tuple[str, ...]
    siblings: tuple[str, ...]  # every connection on the gateway, this one included
    vnet: str


def unavailable(vm: Vm) -> str | None:
    if not any(nic.subnet_id for nic in vm.nics):
        return f"the virtual network of {vm.name} is not known"
    return None


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The VPN connections serving the VM's virtual network (with their status), their gateways and peers."""
    vm = VmFacts.from_documents(documents).vm
    path = await backend.private_path(vm)
    documents["private_path"] = {"vnet_id": path.vnet_id, "error": path.error}
    connections: list[dict[str, Any]] = []
    gateways: dict[str, dict[str, Any] | None] = {}
    peers: dict[str, dict[str, Any] | None] = {}
    for conn in path.vpn_connections:
        doc = await backend.get_vpn_connection(conn.id)
        if doc is None:
            continue
        connections.append(doc)
        gateway_id = (_props(doc).get("virtualNetworkGateway1") or {}).get("id")
        if gateway_id and gateway_id.lower() not in gateways:
            gateways[gateway_id.lower()] = await backend.get_vpn_gateway(gateway_id)
        peer_id = (_props(doc).get("localNetworkGateway2") or {}).get("id")
        if peer_id and peer_id.lower() not in peers:
            peers[peer_id.lower()] = await backend.get_local_network_gateway(peer_id)
    documents["vpn_connections"] = connections
    documents["vpn_gateways"] = [g for g in gateways.values() if g]
    documents["vpn_peers"] = [p for p in peers.values() if p]


@dataclass(frozen=True)
class ConnectionChoice:
    """One VPN connection serving the VM's network, as the console offers it."""

    name: str
    status: str
    gateway: str
    siblings: tuple[str, ...]  # the other connections on its gateway (interrupted by a gateway reset)

    @property
    def connected(self) -> bool:
        return self.status.lower() == "connected"


def connection_choices(facts: VmFacts) -> list[ConnectionChoice]:
    """Every connection gathered for the VM's network, those that are down first."""
    connections = facts.documents.get("vpn_connections") or []
    out = []
    for conn in connections:
        gateway_id = (_props(conn).get("virtualNetworkGateway1") or {}).get("id") or ""
        name = safe_line(conn.get("name") or _name(conn.get("id")))
        siblings = tuple(
            sorted(
                safe_line(c.get("name") or "")
                for c in connections
                if c is not conn and ((_props(c).get("virtualNetworkGateway1") or {}).get("id") or "").lower() == gateway_id.lower()
            )
        )
        out.append(ConnectionChoice(name, _status(conn), _name(gateway_id), siblings))
    return sorted(out, key=lambda c: c.connected)


def layout(facts: VmFacts, params: dict[str, Any]) -> tuple[Layout | None, str | None]:
    """The connection to reset, or why there is none."""
    docs = facts.documents
    path = docs.get("private_path") or {}
    vnet = _name(path.get("vnet_id")) or "its virtual network"
    if path.get("error"):
        return None, f"the VPN connections serving {vnet} could not be read: {safe_line(str(path['error']))}"
    connections = docs.get("vpn_connections") or []
    if not connections:
        return None, f"no VPN gateway connection serves {vnet}"
    wanted = params.get("connection")
    if wanted:
        chosen = [c for c in connections if (c.get("name") or "").lower() == str(wanted).lower()]
        if not chosen:
            raise PlanError(f"no VPN connection named {wanted!r} serves {vnet} (there: {', '.join(safe_line(c.get('name') or '') for c in connections)})")
    else:
        chosen = [c for c in connections if _status(c).lower() != "connected"]
        if not chosen:
            return None, f"every VPN connection serving {vnet} is Connected: a reset would only interrupt it"
    conn = chosen[0]
    props = _props(conn)
    gateway_id = (props.get("virtualNetworkGateway1") or {}).get("id") or ""
    peer_id = (props.get("localNetworkGateway2") or props.get("virtualNetworkGateway2") or {}).get("id")
    peer_doc = next((p for p in docs.get("vpn_peers") or () if (p.get("id") or "").lower() == (peer_id or "").lower()), None)
    siblings = sorted(
        safe_line(c.get("name") or "") for c in connections if ((_props(c).get("virtualNetworkGateway1") or {}).get("id") or "").lower() == gateway_id.lower()
    )
    return Layout(
        connection_id=conn["id"],
        connection=safe_line(conn.get("name") or _name(conn["id"])),
        status=_status(conn),
        gateway_id=gateway_id,
        gateway=_name(gateway_id),
        peer=_name(peer_id) or "the other side",
        peer_address=safe_line(str(_props(peer_doc).get("gatewayIpAddress"))) if _props(peer_doc).get("gatewayIpAddress") else None,
        peer_prefixes=tuple(safe_line(str(p)) for p in ((_props(peer_doc).get("localNetworkAddressSpace") or {}).get("addressPrefixes") or ())),
        siblings=tuple(siblings),
        vnet=vnet,
    ), None


# --- fresh reads -------------------------------------------------------------------------------


async def _connection(ctx: StepContext, lay: Layout) -> dict[str, Any]:
    doc = await ctx.backend.get_vpn_connection(lay.connection_id)
    if doc is None:
        raise StepFailed(f"VPN connection {lay.connection} no longer exists")
    return doc


async def _settled_status(ctx: StepContext, lay: Layout, *, gateway: bool = False) -> str:
    """The connection's status once it is no longer Connecting (and the gateway no longer Updating)."""

    async def read() -> tuple[str, bool]:
        status = _status(await _connection(ctx, lay))
        busy = status.lower() == "connecting"
        if gateway and not busy:
            gw = await ctx.backend.get_vpn_gateway(lay.gateway_id)
            busy = str(_props(gw).get("provisioningState") or "").lower() == "updating"
        return status, busy

    status, _ = await poll_until(read, lambda seen: not seen[1], ctx.settings)
    return status


def _peer_hint(lay: Layout) -> str:
    where = f" at {lay.peer_address}" if lay.peer_address else ""
    nets = f" ({', '.join(lay.peer_prefixes)})" if lay.peer_prefixes else ""
    return f"check the on-premises VPN device {lay.peer}{where}{nets}: that it is up, reachable, and uses the same shared key and IPsec/IKE settings"


async def _send_reset(ctx: StepContext, operation: str, send: Callable[..., Awaitable[Any]], resource_id: str, what: str) -> str:
    """Send one reset as a long-running operation (a resumed run polls the one already sent) and say how long Azure took."""
    started = time.monotonic()
    await send(resource_id, **await ctx.lro(operation))
    return f"Azure reset {what} in {time.monotonic() - started:.0f} s"


# --- steps ---------------------------------------------------------------------------------------


def status_step(lay: Layout) -> Step:
    async def run(ctx: StepContext) -> str:
        doc = await _connection(ctx, lay)
        for resource_id, what in ((lay.connection_id, "connection"), (lay.gateway_id, "gateway")):
            try:
                locks = await ctx.backend.list_locks(resource_id)
            except Exception as exc:
                await ctx.log(f"the management locks of the {what} could not be read: {exc}")
                locks = []
            frozen = [lock for lock in locks if str(_props(lock).get("level") or "").lower() == "readonly"]
            if frozen:
                raise StepFailed(f"a ReadOnly lock ('{safe_line(str(frozen[0].get('name')))}') covers the {what}: Azure refuses a reset while it is there")
        await ctx.save(status=_status(doc))
        return f"{lay.connection} is {_status(doc)} (gateway {lay.gateway}, peer {lay.peer})"

    return Step(
        key="vpn-status",
        title=f"Read VPN connection {lay.connection}",
        why="The connection's status and the locks over it, read right before anything is reset: a connection that came back needs no reset.",
        changes="nothing (reads the connection and the management locks)",
        kind=Kind.CHECK,
        run=run,
    )


def connection_step(lay: Layout, *, gateway_follows: bool) -> Step:
    async def precondition(ctx: StepContext) -> Check:
        if ctx.operation_token("reset-connection"):
            return ready("resuming the reset sent before the interruption")
        status = _status(await _connection(ctx, lay))
        if ctx.unconfirmed_send("reset-connection") and status.lower() == "connecting":
            return already_done("the reset sent before the interruption is running")
        if status.lower() == "connected":
            return already_done(f"{lay.connection} is Connected: no reset needed")
        return ready(f"{lay.connection} is {status}")

    async def run(ctx: StepContext) -> str:
        return await _send_reset(ctx, "reset-connection", ctx.backend.reset_vpn_connection, lay.connection_id, lay.connection)

    async def verify(ctx: StepContext) -> Verification:
        status = await _settled_status(ctx, lay)
        if status.lower() == "connected":
            return verified(f"{lay.connection} is Connected", status=status)
        if gateway_follows:
            return verified(f"{lay.connection} is still {status} after the connection reset: the gateway reset follows", status=status)
        return not_verified(
            f"{lay.connection} is still {status} after the reset: reset its gateway {lay.gateway} (scenario reset-vpn with the gateway option), or {_peer_hint(lay)}",
            status=status,
        )

    return Step(
        key="reset-connection",
        title=f"Reset VPN connection {lay.connection}",
        why="A stale IPsec/IKE security association keeps a site-to-site connection down though both ends are up: resetting the connection negotiates it again.",
        changes=f"resets connection {lay.connection} on gateway {lay.gateway} (its tunnels to {lay.peer} are negotiated again); nothing else on the gateway",
        kind=Kind.CHANGE,
        warnings=(CONNECTION_RESET + (f"; it is {lay.status} now, so nothing that works is interrupted" if lay.status.lower() != "connected" else "") + ".",),
        undo="nothing to undo: a reset changes no setting",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def gateway_step(lay: Layout) -> Step:
    others = [s for s in lay.siblings if s != lay.connection]

    async def precondition(ctx: StepContext) -> Check:
        if ctx.operation_token("reset-gateway"):
            return ready("resuming the gateway reset sent before the interruption")
        status = _status(await _connection(ctx, lay))
        gw = await ctx.backend.get_vpn_gateway(lay.gateway_id)
        updating = str(_props(gw).get("provisioningState") or "").lower() == "updating"
        if ctx.unconfirmed_send("reset-gateway") and updating:
            return already_done("the gateway reset sent before the interruption is running")
        if status.lower() == "connected":
            return already_done(f"{lay.connection} is Connected again: the gateway reset is not needed")
        if updating:
            return blocked(f"another operation is running on gateway {lay.gateway}: resume when it has finished")
        return ready(f"{lay.connection} is {status}")

    async def run(ctx: StepContext) -> str:
        return await _send_reset(ctx, "reset-gateway", ctx.backend.reset_vpn_gateway, lay.gateway_id, f"gateway {lay.gateway}")

    async def verify(ctx: StepContext) -> Verification:
        status = await _settled_status(ctx, lay, gateway=True)
        if status.lower() == "connected":
            return verified(f"{lay.connection} is Connected after the gateway reset", status=status)
        return not_verified(f"{lay.connection} is still {status} after the gateway reset: {_peer_hint(lay)}", status=status)

    names = f"connections {lay.connection} and {', '.join(others)} are" if others else f"connection {lay.connection} is"
    return Step(
        key="reset-gateway",
        title=f"Reset VPN gateway {lay.gateway}",
        why="When the connection reset does not bring the tunnel back, the gateway instance itself may be stuck: a gateway reset reboots it.",
        changes=f"reboots the active instance of gateway {lay.gateway}; the standby takes over; {names} re-established",
        kind=Kind.DESTRUCTIVE,
        warnings=(GATEWAY_RESET,),
        undo="nothing to undo: a reset changes no setting",
        precondition=precondition,
        run=run,
        verify=verify,
    )


def connected_step(lay: Layout, vm: Vm) -> Step:
    async def verify(ctx: StepContext) -> Verification:
        status = await _settled_status(ctx, lay)
        if status.lower() != "connected":
            return not_verified(f"{lay.connection} is {status}: {_peer_hint(lay)}", status=status)
        nets = f" from {', '.join(lay.peer_prefixes)}" if lay.peer_prefixes else ""
        private = ", ".join(vm.private_ips) or "its private address"
        return verified(f"{lay.connection} is Connected: {vm.name} ({private}) can be reached over it{nets}; probe it with --private", status=status)

    return Step(
        key="vpn-connected",
        title=f"Check that {lay.connection} is Connected",
        why=f"{vm.name} has no public path: the VPN is how people reach it, so the run ends verified only when the connection is Connected.",
        changes="nothing (reads the connection's status)",
        kind=Kind.CHECK,
        verify=verify,
    )


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    vm = facts.vm
    with_gateway = bool(params.get("gateway"))
    lay, why_not = layout(facts, params)
    if lay is None:
        # Nothing to reset: a plan with the reason as its blocker (shown, never run).
        return plan(
            "reset-vpn",
            "Reset the site-to-site VPN",
            facts,
            [],
            f"No VPN connection to reset for {vm.name}.",
            blockers=[why_not or "no VPN connection to reset"],
            params={"gateway": with_gateway},
        )
    steps: list[Step | None] = [status_step(lay), connection_step(lay, gateway_follows=with_gateway)]
    warnings = [f"Resetting {lay.connection}: {CONNECTION_RESET}."]
    if with_gateway:
        steps.append(gateway_step(lay))
        others = [s for s in lay.siblings if s != lay.connection]
        warnings.append(
            f"Resetting gateway {lay.gateway} (only if the connection reset did not help): {GATEWAY_RESET}"
            + (f" Also interrupted: {', '.join(others)}." if others else "")
        )
    else:
        warnings.append(
            f"If the connection reset does not bring it back, plan again with the gateway option (--gateway) to reset gateway {lay.gateway}: heavier, it interrupts every connection on it."
        )
    steps.append(connected_step(lay, vm))
    what = "the connection, then if needed its gateway" if with_gateway else "the connection"
    return plan(
        "reset-vpn",
        "Reset the site-to-site VPN",
        facts,
        steps,
        f"Reset {what}: {lay.connection} ({lay.status}) on gateway {lay.gateway} to {lay.peer}, the path to {vm.name} in {lay.vnet}.",
        warnings=warnings,
        details=((f"VPN connection {lay.connection}", lay.status, "Connected"),),
        params={"gateway": with_gateway, "connection": lay.connection},
    )
