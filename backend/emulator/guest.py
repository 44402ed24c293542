"""The demo VMs' guests on the wire: real loopback listeners for RDP and SSH,
and Network Watcher's connectivity check.

Every demo VM has public addresses in 127.0.0.0/8 (its public IPs and the
frontends of load-balancer NAT rules that lead to it). For each guest port the
estate names (``guest.ports``: ssh / rdp / refused / silent) this module keeps
one real socket on that loopback address that behaves as Azure and the guest
would, evaluated again whenever the emulator's state changes:

- ``ssh``: a listener that sends an OpenSSH identification line;
- ``rdp``: a listener that answers an X.224 Connection Request with a TPKT
  Connection Confirm (MS-RDPBCGR 2.2.1.2);
- ``refused``: a socket bound but not listening, so the kernel answers a SYN
  with a RST (the guest runs, nothing listens);
- ``silent``: a listener with backlog 0 whose accept queue is filled by one
  connection of our own and never accepted, so new SYNs are dropped and a
  client times out for real. Used when the guest firewall drops the port, when
  an NSG denies it (Azure drops silently), when the VM is not running and when
  Resource Health says the platform made it unavailable.

NSGs are evaluated with the emulator's own evaluator (``nsg.py``, written from
Azure's documented rules, independent of the product's) for a source
somewhere on the Internet: the emulator cannot know where a loopback client
pretends to be. The RDP bytes and the SSH identification line are the
emulator's own too: nothing here imports the product's domain modules.

Ports below 1024 need root to bind, so the emulator never binds them: guest
port P < 1024 listens on P + 10000 (SSH 22 -> 10022); RDP 3389 and NAT
frontends keep their port. When that port is taken (another emulator on the
same machine), the kernel picks a free one. The demo (``--demo``) finds the
real port in ``GET /_emulator/guest`` (``endpoints[].listen_port``); root or
not, the demo behaves the same. The product reads that map in demo mode only:
with ``--arm-endpoint`` it probes each VM's own address and port. An estate
turns the stand-ins off for one VM with the guest fact ``"stand_ins": false``:
nothing is bound at its addresses, so a real server there (an OpenSSH, an
xrdp) is what answers.

Network Watcher: ``POST .../networkWatchers/{nw}/connectivityCheck`` is
long-running and answers from the same facts, evaluated for the source VM's
private address. The emulator shows one ``NetworkWatcher_<region>`` in
``NetworkWatcherRG`` per subscription and region with VMs (as Azure creates
them with the first virtual network) on the Network Watcher routes only; they
are not stored, so the estate's documents and resource groups stay as written.

Importing this module registers it with every emulator started afterwards.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import json
import logging
import select
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import nsg
from .arm import Arm, ArmRequest, ArmResponse, error_response
from .ids import ArmError, parse_id
from .routing import parse_route
from .server import EMULATOR_KEY, OPID_RKEY, ROUTE_RKEY, Emulator, arm_request, cancel_and_wait, to_web
from .store import VM_TYPE, Store

log = logging.getLogger("aztriage.emulator.guest")

MODES = ("ssh", "rdp", "refused", "silent")
SYNC_INTERVAL_S = 0.1
MAX_ENDPOINTS = 2048  # beyond this (scale estates) the guests stay off the wire
HOLD_S = 10.0  # an idle client connection is dropped after this long
WATCHER_RG = "NetworkWatcherRG"
LINGER_ABORT = struct.pack("ii", 1, 0)

# Ports below 1024 need root to bind: guest port P < 1024 listens on P + this (SSH 22 -> 10022).
LOW_PORT_OFFSET = 10000

SSH_BANNERS = {
    "canonical": "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5",
    "redhat": "SSH-2.0-OpenSSH_9.6 RHEL-9",
}
DEFAULT_SSH_BANNER = "SSH-2.0-OpenSSH_9.6"


def listen_port_for(port: int) -> int:
    """The loopback port a guest port listens on first (taken: the kernel picks another)."""
    return port + LOW_PORT_OFFSET if 0 < port < 1024 else port


# --- RDP's first exchange, as a Windows guest answers it ----------------------------
# MS-RDPBCGR 2.2.1.1 (Client X.224 Connection Request) and 2.2.1.2 (Server X.224
# Connection Confirm), framed by TPKT (RFC 1006: version 3, reserved, length of the packet).

TPKT_VERSION = 3
CR_CDT = 0xE0  # X.224 Connection Request
CC_CDT = 0xD0  # X.224 Connection Confirm
RDP_NEG_REQ = 0x01
RDP_NEG_RSP = 0x02
PROTOCOL_RDP, PROTOCOL_SSL, PROTOCOL_HYBRID = 0x0, 0x1, 0x2


def requested_protocols(packet: bytes) -> int | None:
    """The client's requestedProtocols from a whole Connection Request; None when it sent
    no negotiation request. Raises ValueError when the packet is not a Connection Request."""
    if len(packet) < 11 or packet[0] != TPKT_VERSION or int.from_bytes(packet[2:4], "big") != len(packet):
        raise ValueError("not a TPKT packet")
    if packet[5] & 0xF0 != CR_CDT:
        raise ValueError("not an X.224 Connection Request")
    # The RDP Negotiation Request, when there is one, is the last 8 bytes (after the cookie or token).
    neg = packet[-8:]
    if len(packet) >= 19 and neg[0] == RDP_NEG_REQ and int.from_bytes(neg[2:4], "little") == 8:
        return int.from_bytes(neg[4:8], "little")
    return None


RDP_NEG_FAILURE = 0x03
SSL_REQUIRED_BY_SERVER, SSL_NOT_ALLOWED_BY_SERVER, HYBRID_REQUIRED_BY_SERVER = 1, 2, 5


def connection_confirm(requested: int | None, *, user_authentication: int = 1, security_layer: int = 2) -> bytes:
    """A Connection Confirm as Windows answers it, from the RDP-Tcp listener's registry values:
    with UserAuthentication=1 (NLA required) a client that does not offer CredSSP gets
    HYBRID_REQUIRED_BY_SERVER; SecurityLayer 0 allows only standard RDP security, 2 requires TLS
    (or CredSSP), 1 negotiates. Otherwise CredSSP when offered, else TLS, else standard RDP security."""
    requested = requested or 0
    failure = None
    if user_authentication and not requested & PROTOCOL_HYBRID:
        failure = HYBRID_REQUIRED_BY_SERVER
    elif security_layer == 0 and requested & (PROTOCOL_SSL | PROTOCOL_HYBRID):
        failure = SSL_NOT_ALLOWED_BY_SERVER
    elif security_layer == 2 and not requested & (PROTOCOL_SSL | PROTOCOL_HYBRID):
        failure = SSL_REQUIRED_BY_SERVER
    if failure is not None:
        negotiation = bytes([RDP_NEG_FAILURE, 0]) + (8).to_bytes(2, "little") + failure.to_bytes(4, "little")
    else:
        selected = PROTOCOL_HYBRID if requested & PROTOCOL_HYBRID else PROTOCOL_SSL if requested & PROTOCOL_SSL else PROTOCOL_RDP
        negotiation = bytes([RDP_NEG_RSP, 0]) + (8).to_bytes(2, "little") + selected.to_bytes(4, "little")
    x224 = bytes([6 + len(negotiation), CC_CDT, 0, 0, 0x12, 0x34, 0]) + negotiation
    return bytes([TPKT_VERSION, 0]) + (4 + len(x224)).to_bytes(2, "big") + x224


def rdp_security(guest: dict) -> tuple[int, int]:
    """(UserAuthentication, SecurityLayer) of a Windows guest's RDP-Tcp listener: Windows' defaults
    (NLA required, TLS) unless the guest facts say otherwise (``rdp_security``)."""
    values = guest.get("rdp_security") or {}
    return int(values.get("UserAuthentication", 1)), int(values.get("SecurityLayer", 2))


# --- what each endpoint should do ----------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    mode: str  # ssh / rdp / refused / silent
    why: str  # one line: what made it so
    issue: str | None = None  # Network Watcher issue type when it does not connect
    rule: str | None = None  # the deciding NSG rule when one denies


@dataclass(frozen=True)
class Desired:
    address: str
    port: int  # the port Azure exposes (public IP: the guest port; NAT: the frontend port)
    guest_port: int
    kind: str  # public-ip / lb-nat
    vm_id: str
    vm_name: str
    behaviour: Behaviour
    banner: str = DEFAULT_SSH_BANNER
    rdp_reply: bytes | None = None  # an estate's hostile peer: sent instead of a Connection Confirm
    rdp_security: tuple[int, int] = (1, 2)  # the listener's UserAuthentication and SecurityLayer

    @property
    def mode(self) -> str:
        return self.behaviour.mode


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def guest_ports(store: Store, vm_doc: dict) -> dict[int, str]:
    """Guest port -> ssh / rdp / refused / silent, from the estate's guest facts."""
    facts = store.guest.get(vm_doc["id"].lower()) or {}
    ports = facts.get("ports")
    if not ports:
        os_type = (_props(vm_doc).get("storageProfile") or {}).get("osDisk", {}).get("osType") or "Linux"
        ports = {"3389": "rdp"} if os_type.lower() == "windows" else {"22": "ssh"}
    out = {}
    for port, mode in ports.items():
        try:
            out[int(port)] = mode if mode in MODES else "refused"
        except (TypeError, ValueError):
            continue
    return out


def stand_ins(store: Store, vm_doc: dict) -> bool:
    """Does the emulator act out this VM's ports on loopback? An estate says
    ``"stand_ins": false`` for a VM whose loopback address has a real server
    (an OpenSSH, an xrdp) that must not be shadowed by a fake."""
    return (store.guest.get(vm_doc["id"].lower()) or {}).get("stand_ins") is not False


def _ssh_banner(store: Store, vm_doc: dict) -> str:
    banner = (store.guest.get(vm_doc["id"].lower()) or {}).get("ssh_banner")
    if isinstance(banner, str):
        return banner
    image = (_props(vm_doc).get("storageProfile") or {}).get("imageReference") or {}
    return SSH_BANNERS.get(str(image.get("publisher", "")).lower(), DEFAULT_SSH_BANNER)


def _subnet_nsg_id(store: Store, subnet_id: str | None) -> str | None:
    if not subnet_id:
        return None
    vnet_id = subnet_id.rsplit("/subnets/", 1)[0]
    for subnet in _props(store.get(vnet_id)).get("subnets") or ():
        if (subnet.get("id") or "").lower() == subnet_id.lower():
            return (_props(subnet).get("networkSecurityGroup") or {}).get("id")
    return None


@dataclass
class NicFacts:
    nic_id: str
    private_ip: str | None
    subnet_id: str | None
    nsg_id: str | None
    subnet_nsg_id: str | None
    public_ips: list[tuple[str, str]] = field(default_factory=list)  # (address, pip name)
    nat: list[tuple[str, int, int, str]] = field(default_factory=list)  # (frontend address, fe port, be port, rule)
    asgs: set[str] = field(default_factory=set)  # application security groups of its IP configurations (lower-case ids)
    standard_ips: set[str] = field(default_factory=set)  # addresses of its Standard SKU public IPs (closed unless an NSG allows)

    def party(self) -> nsg.Party:
        """This NIC as one end of a flow inside Azure."""
        return nsg.Party(self.private_ip, frozenset(self.asgs))


def nic_facts(store: Store, vm_doc: dict) -> list[NicFacts]:
    out = []
    for ref in (_props(vm_doc).get("networkProfile") or {}).get("networkInterfaces") or ():
        nic = store.get(ref.get("id") or "")
        if nic is None:
            continue
        props = _props(nic)
        facts = NicFacts(nic["id"], None, None, (props.get("networkSecurityGroup") or {}).get("id"), None)
        for cfg in props.get("ipConfigurations") or ():
            cprops = _props(cfg)
            facts.private_ip = facts.private_ip or cprops.get("privateIPAddress")
            facts.subnet_id = facts.subnet_id or (cprops.get("subnet") or {}).get("id")
            facts.asgs.update(str(a.get("id") or "").lower() for a in cprops.get("applicationSecurityGroups") or ())
            pip = store.get((cprops.get("publicIPAddress") or {}).get("id") or "")
            if pip is not None and _props(pip).get("ipAddress"):
                facts.public_ips.append((_props(pip)["ipAddress"], pip.get("name") or ""))
                if str((pip.get("sku") or {}).get("name") or "").lower() == "standard":
                    facts.standard_ips.add(_props(pip)["ipAddress"])
            for nat_ref in cprops.get("loadBalancerInboundNatRules") or ():
                nat_id = nat_ref.get("id") or ""
                lb = store.get(nat_id.rsplit("/inboundNatRules/", 1)[0])
                for rule in _props(lb).get("inboundNatRules") or ():
                    if (rule.get("id") or "").lower() != nat_id.lower():
                        continue
                    rprops = _props(rule)
                    fe_id = ((rprops.get("frontendIPConfiguration") or {}).get("id") or "").lower()
                    for fe in _props(lb).get("frontendIPConfigurations") or ():
                        if (fe.get("id") or "").lower() == fe_id:
                            fe_pip = store.get((_props(fe).get("publicIPAddress") or {}).get("id") or "")
                            address = _props(fe_pip).get("ipAddress")
                            if address:
                                facts.nat.append((address, int(rprops.get("frontendPort") or 0), int(rprops.get("backendPort") or 0), rule.get("name") or ""))
        facts.subnet_nsg_id = _subnet_nsg_id(store, facts.subnet_id)
        out.append(facts)
    return out


def _vnet_prefixes(store: Store, subnet_id: str | None) -> list[str]:
    """What the VirtualNetwork service tag holds for a NIC in this subnet: its virtual
    network's address space and its peers' (private ranges when the estate gives none)."""
    props = _props(store.get(_vnet_of(subnet_id))) if subnet_id else {}
    prefixes = list((props.get("addressSpace") or {}).get("addressPrefixes") or ())
    for peering in props.get("virtualNetworkPeerings") or ():
        prefixes += (_props(peering).get("remoteAddressSpace") or {}).get("addressPrefixes") or ()
    return prefixes or list(nsg.PRIVATE_RANGES)


def behaviour(store: Store, vm_doc: dict, nic: NicFacts | None, port: int, source: nsg.Party, *, ports: dict[int, str] | None = None) -> Behaviour:
    """What a connection from `source` (address None: somewhere on the Internet) to the VM's guest `port` meets."""
    vm_id = vm_doc["id"]
    power = store.power_state(vm_id)
    if power != "running":
        return Behaviour("silent", f"the VM is {power}", "Platform")
    status = _props(store.statuses.get(vm_id.lower()))
    if status.get("availabilityState") == "Unavailable" and status.get("reasonType") != "UserInitiated":
        return Behaviour("silent", "Resource Health: the platform made the VM unavailable", "Platform")
    if nic is not None:
        decisions = nsg.evaluate(
            store.get(nic.subnet_nsg_id) if nic.subnet_nsg_id else None,
            store.get(nic.nsg_id) if nic.nsg_id else None,
            source,
            nic.party(),
            port,
            _vnet_prefixes(store, nic.subnet_id),
        )
        denied = nsg.blocking(decisions)
        if denied is not None:
            name = denied.rule or ""
            return Behaviour("silent", f"{denied.level} NSG {denied.nsg_name} denies port {port} ({name})", "NetworkSecurityRule", name)
    mode = (ports if ports is not None else guest_ports(store, vm_doc)).get(port, "refused")
    if mode == "silent":
        return Behaviour("silent", f"the guest drops port {port} (firewall, or the OS is not up)", "GuestFirewall")
    if mode == "refused":
        return Behaviour("refused", f"nothing listens on port {port} in the guest", "SocketBind")
    return Behaviour(mode, f"{mode} answers on port {port}")


def _cached_behaviour(
    cache: dict[tuple[str, int], Behaviour], store: Store, vm_doc: dict, nic: NicFacts, source: nsg.Party, ports: dict[int, str], port: int
) -> Behaviour:
    """`behaviour` once per (NIC, port): a VM's public IPs and its NAT rules reach the same guest port."""
    key = (nic.nic_id, port)
    if key not in cache:
        cache[key] = behaviour(store, vm_doc, nic, port, source, ports=ports)
    return cache[key]


# Where the demo's operator connects from, as the VMs' NSGs see it: one public address
# (from 192.88.99.0/24, the retired 6to4 relay block, so it is nobody's real client).
# It is in the Internet service tag like any client; an NSG rule for exactly this address
# (fix-nsg's temporary allow rule) admits the demo's probes. GET /_emulator/guest tells it.
CLIENT_ADDRESS = "192.88.99.10"
STANDARD_IP_CLOSED = Behaviour("silent", "a Standard public IP is closed to inbound traffic until an NSG allows it", "NetworkSecurityRule")


def desired_endpoints(store: Store) -> dict[tuple[str, int], Desired]:
    internet = nsg.Party(CLIENT_ADDRESS)
    out: dict[tuple[str, int], Desired] = {}
    for vm_doc in store.all_of_type(VM_TYPE):
        if not stand_ins(store, vm_doc):
            continue
        ports = guest_ports(store, vm_doc)
        banner = _ssh_banner(store, vm_doc)
        facts = store.guest.get(vm_doc["id"].lower()) or {}
        reply = facts.get("rdp_reply")
        rdp_reply = reply.encode() if isinstance(reply, str) else None
        security = rdp_security(facts)
        cache: dict[tuple[str, int], Behaviour] = {}
        for nic in nic_facts(store, vm_doc):
            decide = functools.partial(_cached_behaviour, cache, store, vm_doc, nic, internet, ports)
            for address, _name in nic.public_ips:
                if not _is_loopback(address):
                    continue
                # A Standard SKU public IP is secure by default: with no NSG on the NIC or its subnet, nothing comes in.
                closed = address in nic.standard_ips and nic.nsg_id is None and nic.subnet_nsg_id is None
                for port in ports:
                    behaviour = STANDARD_IP_CLOSED if closed else decide(port)
                    out[(address, port)] = Desired(
                        address, port, port, "public-ip", vm_doc["id"], vm_doc.get("name") or "", behaviour, banner, rdp_reply, security
                    )
            for address, fe_port, be_port, _rule in nic.nat:
                if _is_loopback(address) and fe_port:
                    out[(address, fe_port)] = Desired(
                        address, fe_port, be_port, "lb-nat", vm_doc["id"], vm_doc.get("name") or "", decide(be_port), banner, rdp_reply, security
                    )
    return out


# --- sockets -----------------------------------------------------------------------


class _Endpoint:
    """One (address, port): the socket(s) acting out its current mode."""

    def __init__(self, desired: Desired, listen_port: int):
        self.desired = desired
        self.listen_port = listen_port
        self.sock: socket.socket | None = None
        self.filler: socket.socket | None = None
        self.connections: set[asyncio.Task] = set()
        self.error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = self.desired
        return {
            "address": d.address,
            "port": d.port,
            "listen_port": self.listen_port,
            "guest_port": d.guest_port,
            "kind": d.kind,
            "vm": d.vm_name,
            "vm_id": d.vm_id,
            "mode": d.mode,
            "why": d.behaviour.why,
            "error": self.error,
        }


class GuestNet:
    """Keeps the loopback sockets in step with the emulator's state."""

    def __init__(self, store: Store):
        self.store = store
        self.endpoints: dict[tuple[str, int], _Endpoint] = {}
        self.enabled = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._resources_seen: int | None = None
        self._seen: tuple | None = None

    # lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.store.operation_listeners.append(self._on_operation)
        self.sync()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        for key in list(self.endpoints):
            self._close(self.endpoints.pop(key))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S)
            try:
                fingerprint = self._fingerprint()
                if fingerprint != self._seen or fingerprint is None:
                    self.sync()
            except Exception:
                log.exception("guest endpoint sync failed")

    def _fingerprint(self) -> tuple | None:
        """Cheap: changes whenever a document, a guest fact or the set of operations does."""
        st = self.store
        versions = getattr(st, "_versions", None)
        owned = getattr(st, "_guest_owned", None)
        if versions is None or owned is None:
            return None  # a store without these counters: evaluate every tick
        return (id(st.resources), sum(versions.values()), len(owned), len(st.operations), len(st.statuses))

    def _on_operation(self, store: Store, op: Any) -> None:
        # Power changes, NSG writes, run-command fixes: follow at once, not at the next tick.
        try:
            self.sync()
        except Exception:
            log.exception("guest endpoint sync after an operation failed")

    # the diff
    def sync(self) -> None:
        if self._loop is None:
            return
        self._seen = self._fingerprint()
        resources = id(self.store.resources)
        if resources != self._resources_seen:
            self._resources_seen = resources  # a reset: decide again whether the estate is small enough
            vm_count = len(self.store.all_of_type(VM_TYPE))
            self.enabled = vm_count * 2 <= MAX_ENDPOINTS
            if not self.enabled:
                log.info("guest endpoints off: %d VMs is more than the demo's listeners are for", vm_count)
        desired = desired_endpoints(self.store) if self.enabled else {}
        if len(desired) > MAX_ENDPOINTS:
            desired = {}
        for key in [k for k in self.endpoints if k not in desired]:
            self._close(self.endpoints.pop(key))
        for key, want in desired.items():
            current = self.endpoints.get(key)
            if current is not None and current.desired.mode == want.mode:
                current.desired = want  # same behaviour (a failed bind is not retried every tick)
                continue
            listen_port = current.listen_port if current is not None else listen_port_for(want.port)
            if current is not None:
                self._close(current)
            self.endpoints[key] = self._open(want, listen_port)

    def _close(self, ep: _Endpoint) -> None:
        for task in list(ep.connections):
            task.cancel()
        ep.connections.clear()
        if ep.sock is not None:
            if ep.desired.mode in ("ssh", "rdp") and self._loop is not None:
                self._loop.remove_reader(ep.sock.fileno())
            ep.sock.close()
            ep.sock = None
        if ep.filler is not None:
            ep.filler.close()
            ep.filler = None

    def _bind(self, address: str, port: int) -> socket.socket:
        # No SO_REUSEADDR: a port held by another emulator must fail here, not be shared.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _open(self, want: Desired, listen_port: int) -> _Endpoint:
        assert self._loop is not None, "endpoints are opened once the guest network has started"
        ep = _Endpoint(want, listen_port)
        try:
            try:
                sock = self._bind(want.address, listen_port)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                sock = self._bind(want.address, 0)  # taken (another emulator?): let the kernel choose
            ep.listen_port = sock.getsockname()[1]
            ep.sock = sock
            if want.mode == "refused":
                return ep  # bound, never listening: the kernel answers RST
            if want.mode == "silent":
                sock.listen(0)
                ep.filler = self._fill(want.address, ep.listen_port)
                return ep
            sock.listen(64)
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, ep)
        except OSError as exc:
            ep.error = f"cannot bind {want.address}:{listen_port}: {exc.strerror or exc}"
            log.warning("guest endpoint %s:%s (%s): %s", want.address, want.port, want.vm_name, ep.error)
            if ep.sock is not None:
                ep.sock.close()
                ep.sock = None
        return ep

    @staticmethod
    def _fill(address: str, port: int) -> socket.socket:
        """Occupy the only slot of a backlog-0 accept queue; later SYNs are dropped."""
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        rc = filler.connect_ex((address, port))
        if rc not in (0, errno.EINPROGRESS):
            filler.close()
            raise OSError(rc, "cannot fill the accept queue")
        select.select([], [filler], [], 1.0)
        return filler

    def _accept(self, ep: _Endpoint) -> None:
        sock = ep.sock
        if sock is None or self._loop is None:
            return
        while True:
            try:
                conn, _peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            # Close with RST: the guest side never sits in TIME_WAIT on the demo port.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
            handler = self._serve_ssh if ep.desired.mode == "ssh" else self._serve_rdp
            task = self._loop.create_task(handler(conn, ep.desired))
            ep.connections.add(task)
            task.add_done_callback(ep.connections.discard)

    async def _serve_ssh(self, conn: socket.socket, want: Desired) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(conn, (want.banner + "\r\n").encode())
            await self._until_closed(conn)
        except (TimeoutError, OSError):
            pass
        finally:
            conn.close()

    async def _serve_rdp(self, conn: socket.socket, want: Desired) -> None:
        loop = asyncio.get_running_loop()
        data = b""
        try:
            async with asyncio.timeout(HOLD_S):
                while len(data) < 4 or len(data) < int.from_bytes(data[2:4], "big"):
                    chunk = await loop.sock_recv(conn, 4096)
                    if not chunk or len(data) > 4096:
                        return
                    data += chunk
            try:
                requested = requested_protocols(data)
            except ValueError:
                return  # not RDP: a real server drops the connection
            await loop.sock_sendall(
                conn,
                want.rdp_reply
                if want.rdp_reply is not None
                else connection_confirm(requested, user_authentication=want.rdp_security[0], security_layer=want.rdp_security[1]),
            )
            await self._until_closed(conn)
        except (TimeoutError, OSError):
            pass
        finally:
            conn.close()

    @staticmethod
    async def _until_closed(conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(HOLD_S):
            while await loop.sock_recv(conn, 4096):
                pass

    def snapshot(self) -> list[dict[str, Any]]:
        return [ep.to_json() for ep in self.endpoints.values()]


# --- Network Watcher -----------------------------------------------------------------


def watcher_documents(store: Store, subscription: str | None = None) -> list[dict]:
    """One NetworkWatcher_<region> per subscription and region that has VMs (as Azure
    creates them with the first virtual network). Made up on request, never stored,
    so the estate's resource groups and documents stay as the estate says."""
    seen: dict[tuple[str, str], dict] = {}
    for vm_doc in store.all_of_type(VM_TYPE):
        sub = parse_id(vm_doc["id"]).subscription
        if subscription is not None and sub.lower() != subscription.lower():
            continue
        region = (vm_doc.get("location") or "").lower()
        if not region or (sub.lower(), region) in seen:
            continue
        wid = f"/subscriptions/{sub}/resourceGroups/{WATCHER_RG}/providers/Microsoft.Network/networkWatchers/NetworkWatcher_{region}"
        seen[(sub.lower(), region)] = {
            "id": wid,
            "name": f"NetworkWatcher_{region}",
            "type": "Microsoft.Network/networkWatchers",
            "location": region,
            "tags": {},
            "properties": {"provisioningState": "Succeeded"},
        }
    return list(seen.values())


def _hop(hop_id: str, hop_type: str, address: str | None, resource_id: str | None, next_ids: list[str], issues: list[dict]) -> dict:
    return {
        "type": hop_type,
        "id": hop_id,
        "address": address,
        "resourceId": resource_id,
        "nextHopIds": next_ids,
        "issues": issues,
    }


def _vm_from_address(store: Store, address: str) -> tuple[dict, NicFacts | None, int | None] | None:
    """The VM (and NIC) an address leads to; NAT frontends need the port, returned as None here."""
    for vm_doc in store.all_of_type(VM_TYPE):
        for nic in nic_facts(store, vm_doc):
            if address in (nic.private_ip, *(a for a, _ in nic.public_ips)):
                return vm_doc, nic, None
            for fe, _fe_port, be_port, _rule in nic.nat:
                if fe == address:
                    return vm_doc, nic, be_port
    return None


def _fqdn_address(store: Store, name: str) -> str | None:
    low = name.lower().rstrip(".")
    for pip in store.all_of_type("Microsoft.Network/publicIPAddresses"):
        props = _props(pip)
        if ((props.get("dnsSettings") or {}).get("fqdn") or "").lower() == low:
            return props.get("ipAddress")
    return None


def _vnet_of(subnet_id: str | None) -> str:
    return (subnet_id or "").rsplit("/subnets/", 1)[0].lower()


def connectivity(store: Store, body: dict) -> dict:
    """ConnectivityInformation for a TCP check from a source VM to a destination."""
    source = body.get("source") or {}
    destination = body.get("destination") or {}
    src_id = source.get("resourceId") or ""
    src_doc = store.get(src_id) if src_id else None
    if src_doc is None or (src_doc.get("type") or "").lower() != VM_TYPE:
        raise ArmError(400, "InvalidSource", f"The source resource '{src_id}' is not a virtual machine in this subscription.")
    if store.power_state(src_doc["id"]) != "running":
        raise ArmError(400, "SourceVmNotRunning", f"The source virtual machine '{src_doc['name']}' is not running; start it or pick another source.")
    try:
        port = int(destination.get("port") or 0)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise ArmError(400, "InvalidDestinationPort", "destination.port must be a TCP port between 1 and 65535.")
    src_nics = nic_facts(store, src_doc)
    src_nic = src_nics[0] if src_nics else None
    src_address = src_nic.private_ip if src_nic else None

    dest_doc = None
    dest_nic: NicFacts | None = None
    address = destination.get("address")
    guest_port = port
    issues: list[dict] = []
    if destination.get("resourceId"):
        dest_doc = store.get(destination["resourceId"])
        if dest_doc is None:
            raise ArmError(400, "InvalidDestination", f"The destination resource '{destination['resourceId']}' was not found.")
        nics = nic_facts(store, dest_doc)
        dest_nic = nics[0] if nics else None
        address = dest_nic.private_ip if dest_nic else None
    elif address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            resolved = _fqdn_address(store, address)
            if resolved is None:
                issues.append({"origin": "Local", "severity": "Error", "type": "DnsResolution", "context": [{"key": "Name", "value": address}]})
            address = resolved
        if address:
            found = _vm_from_address(store, address)
            if found:
                dest_doc, dest_nic, nat_backend = found
                guest_port = nat_backend if nat_backend is not None else port
    else:
        raise ArmError(400, "InvalidDestination", "Give destination.resourceId or destination.address.")

    private_path = bool(dest_nic and src_nic and address == dest_nic.private_ip and _vnet_of(dest_nic.subnet_id) == _vnet_of(src_nic.subnet_id))
    if dest_nic is not None and address == dest_nic.private_ip and not private_path:
        issues.append(
            {
                "origin": "Outbound",
                "severity": "Error",
                "type": "UserDefinedRoute",
                "context": [{"key": "Reason", "value": "the destination's virtual network is not the source's and is not peered"}],
            }
        )
    hop_src = "00000000-0000-0000-0000-00000000a001"
    hop_dst = "00000000-0000-0000-0000-00000000a002"
    dest_issues = list(issues)
    connected = False
    if dest_doc is not None and not issues:
        src = src_nic.party() if private_path and src_nic and src_address else nsg.Party(None)
        met = behaviour(store, dest_doc, dest_nic, guest_port, src)
        if met.mode in ("ssh", "rdp"):
            connected = True
        else:
            origin = "Inbound"
            context = [{"key": "RuleName", "value": met.rule}] if met.rule else [{"key": "Reason", "value": met.why}]
            dest_issues.append({"origin": origin, "severity": "Error", "type": met.issue or "Unknown", "context": context})
    elif dest_doc is None and not issues:
        dest_issues.append(
            {
                "origin": "Outbound",
                "severity": "Error",
                "type": "Unknown",
                "context": [{"key": "Reason", "value": f"nothing in the emulated estate answers at {address}"}],
            }
        )
    hops = [
        _hop(hop_src, "Source", src_address, (src_nic.nic_id + "/ipConfigurations/ipconfig1") if src_nic else src_id, [hop_dst], []),
        _hop(
            hop_dst,
            "VirtualNetwork" if private_path else "Internet",
            address,
            (dest_nic.nic_id + "/ipConfigurations/ipconfig1") if dest_nic else None,
            [],
            dest_issues,
        ),
    ]
    sent = 66
    return {
        "hops": hops,
        "connectionStatus": "Connected" if connected else "Disconnected",
        "avgLatencyInMs": 1 if connected else None,
        "minLatencyInMs": 1 if connected else None,
        "maxLatencyInMs": 3 if connected else None,
        "probesSent": sent,
        "probesFailed": 0 if connected else sent,
    }


def _connectivity_check(arm: Arm, req: ArmRequest, watcher: dict) -> ArmResponse:
    store = arm.store
    if not isinstance(req.body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: expected a JSON object.")
    body = req.body
    connectivity(store, body)  # bad input fails now, as ARM validates before accepting the operation
    make = arm.operation_factory(req, watcher["id"], namespace="Microsoft.Network", location=watcher.get("location"), duration_key="connectivitycheck")

    def done(op: Any) -> None:
        # Evaluated when the check completes, against the state at that moment.
        op.result = connectivity(store, body)

    op = make("connectivityCheck", on_success=done)
    return arm.lro_response(req, op, 202)


# --- wiring ----------------------------------------------------------------------------

GUEST_KEY = web.AppKey("guest", GuestNet)


def install(app: web.Application, store: Store) -> None:
    """Route extension: loopback guests, GET /_emulator/guest, network watchers."""
    guest = GuestNet(store)
    app[GUEST_KEY] = guest

    async def on_startup(_app: web.Application) -> None:
        await guest.start()

    async def on_cleanup(_app: web.Application) -> None:
        await guest.stop()

    async def guest_route(request: web.Request) -> web.Response:
        store.apply_due()
        guest.sync()
        vms = {}
        for vm_id, facts in store.guest.items():
            entry = {k: facts[k] for k in ("previous_public_ip", "ports", "boot", "stand_ins", "account") if k in facts}
            if entry:
                vms[vm_id] = entry
        return web.json_response({"enabled": guest.enabled, "endpoints": guest.snapshot(), "vms": vms, "client_address": CLIENT_ADDRESS})

    async def watchers_route(request: web.Request) -> web.StreamResponse:
        sub = request.match_info["sub"]
        try:
            arm_method(request, "GET")
            store.subscription(sub)
        except ArmError as exc:
            return to_web(error_response(exc))
        return to_web(ArmResponse(200, {"value": watcher_documents(store, sub)}))

    async def check_route(request: web.Request) -> web.StreamResponse:
        emulator = request.app[EMULATOR_KEY]
        info = request.match_info
        try:
            arm_method(request, "POST")
            store.subscription(info["sub"])
            watcher = next(
                (w for w in watcher_documents(store, info["sub"]) if w["name"].lower() == info["nw"].lower() and info["rg"].lower() == WATCHER_RG.lower()),
                None,
            )
            if watcher is None:
                raise ArmError(
                    404, "ResourceNotFound", f"The Resource 'Microsoft.Network/networkWatchers/{info['nw']}' under resource group '{info['rg']}' was not found."
                )
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                raise ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: '{exc}'.") from None
            req = arm_request(request, body, method="POST", endpoint=emulator.endpoint, route=request.get(ROUTE_RKEY) or parse_route(request.path))
            response = _connectivity_check(emulator.arm, req, watcher)
            request[OPID_RKEY] = req.operation_id
            return to_web(response)
        except ArmError as exc:
            return to_web(error_response(exc))

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/_emulator/guest", guest_route)
    # Network Watcher's routes sit before the ARM catch-all; ARM paths are case-insensitive.
    ns = r"{ns:(?i:microsoft\.network)}"
    app.router.add_route("*", "/subscriptions/{sub}/providers/" + ns + "/{t:(?i:networkwatchers)}", watchers_route)
    app.router.add_route(
        "*",
        "/subscriptions/{sub}/{g:(?i:resourcegroups)}/{rg}/providers/" + ns + "/{t:(?i:networkwatchers)}/{nw}/{a:(?i:connectivitycheck)}",
        check_route,
    )


def arm_method(request: web.Request, *allowed: str) -> None:
    if request.method.upper() not in allowed:
        raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{request.method.upper()}'.")


Emulator.add_routes(install)
