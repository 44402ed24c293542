"""Async TCP probes of RDP/SSH endpoints, many at once.

One probe = resolve the host (through the resolver the caller supplies, so a
demo or a test never sends a DNS query), connect with a per-attempt timeout,
and classify: open / refused / timeout / unreachable / dns-failed. On the
first successful connection the protocol is checked: an SSH server must send
its identification line (``SSH-2.0-...``, RFC 4253 4.2); an RDP server must
answer an X.224 Connection Request with a TPKT Connection Confirm
(MS-RDPBCGR 2.2.1.1 / 2.2.1.2). Further attempts measure latency (the
median is reported). A refusal is an answer and is not retried.

No Textual, no SDK: a script or a benchmark can drive it alone.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from backend.safetext import safe_line, safe_opt

OPEN = "open"
REFUSED = "refused"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
DNS_FAILED = "dns-failed"
STATUSES = (OPEN, REFUSED, TIMEOUT, UNREACHABLE, DNS_FAILED)

# Names under these suffixes are reserved (RFC 2606 / RFC 6761): they never
# exist in public DNS, so they are never sent to it.
RESERVED_SUFFIXES = (".test", ".invalid", ".example", ".localhost", ".local")

# --- the RDP and SSH wire formats --------------------------------------------

TPKT_VERSION = 3
X224_CONNECTION_REQUEST = 0xE0
X224_CONNECTION_CONFIRM = 0xD0
TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03

PROTOCOL_RDP = 0x0
PROTOCOL_SSL = 0x1
PROTOCOL_HYBRID = 0x2
PROTOCOL_RDSTLS = 0x4
PROTOCOL_HYBRID_EX = 0x8

RDP_PROTOCOL_NAMES = {
    PROTOCOL_RDP: "standard RDP security",
    PROTOCOL_SSL: "TLS",
    PROTOCOL_HYBRID: "CredSSP (NLA)",
    PROTOCOL_RDSTLS: "RDSTLS",
    PROTOCOL_HYBRID_EX: "CredSSP with early user authorization (NLA)",
}
RDP_FAILURE_NAMES = {
    1: "SSL_REQUIRED_BY_SERVER",
    2: "SSL_NOT_ALLOWED_BY_SERVER",
    3: "SSL_CERT_NOT_ON_SERVER",
    4: "INCONSISTENT_FLAGS",
    5: "HYBRID_REQUIRED_BY_SERVER",
    6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
}


def x224_connection_request(requested: int = PROTOCOL_SSL | PROTOCOL_HYBRID, cookie: str | None = None) -> bytes:
    """A TPKT-framed X.224 Connection Request carrying an RDP Negotiation Request."""
    body = b"\x00\x00" + b"\x00\x00" + b"\x00"  # dst-ref, src-ref, class 0
    if cookie:
        body += f"Cookie: mstshash={cookie}\r\n".encode("ascii")
    body += struct.pack("<BBHI", TYPE_RDP_NEG_REQ, 0, 8, requested)
    tpdu = bytes([len(body) + 1, X224_CONNECTION_REQUEST]) + body
    return struct.pack(">BBH", TPKT_VERSION, 0, len(tpdu) + 4) + tpdu


def x224_connection_confirm(selected: int = PROTOCOL_HYBRID, *, failure: int | None = None) -> bytes:
    """The server's TPKT-framed X.224 Connection Confirm with an RDP Negotiation Response (or Failure)."""
    if failure is not None:
        neg = struct.pack("<BBHI", TYPE_RDP_NEG_FAILURE, 0, 8, failure)
    else:
        neg = struct.pack("<BBHI", TYPE_RDP_NEG_RSP, 0, 8, selected)
    body = b"\x00\x00" + b"\x12\x34" + b"\x00" + neg
    tpdu = bytes([len(body) + 1, X224_CONNECTION_CONFIRM]) + body
    return struct.pack(">BBH", TPKT_VERSION, 0, len(tpdu) + 4) + tpdu


@dataclass(frozen=True)
class X224Request:
    cookie: str | None
    requested_protocols: int | None  # None: no negotiation request (old clients)


def parse_connection_request(data: bytes) -> X224Request | None:
    """A complete X.224 Connection Request, or None if `data` is not one."""
    if len(data) < 11 or data[0] != TPKT_VERSION:
        return None
    length = struct.unpack(">H", data[2:4])[0]
    if length != len(data) or data[5] & 0xF0 != X224_CONNECTION_REQUEST:
        return None
    rest = data[11:]
    cookie = None
    if rest.startswith(b"Cookie: ") or rest.startswith(b"mstshash="):
        end = rest.find(b"\r\n")
        if end < 0:
            return None
        line = rest[:end].decode("latin-1")
        cookie = line.split("=", 1)[-1]
        rest = rest[end + 2 :]
    requested = None
    if len(rest) >= 8 and rest[0] == TYPE_RDP_NEG_REQ:
        requested = struct.unpack("<I", rest[4:8])[0]
    return X224Request(cookie, requested)


@dataclass(frozen=True)
class RdpAnswer:
    ok: bool
    detail: str
    selected: int | None = None
    failure: int | None = None


def parse_connection_confirm(data: bytes) -> RdpAnswer:
    """Judge what came back after our Connection Request."""
    if len(data) < 4 or data[0] != TPKT_VERSION or data[1] != 0:
        return RdpAnswer(False, "the answer is not a TPKT packet")
    length = struct.unpack(">H", data[2:4])[0]
    if length < 11 or len(data) < length:
        return RdpAnswer(False, f"TPKT length {length} does not fit the {len(data)} bytes received")
    tpdu = data[4:length]
    if tpdu[1] & 0xF0 != X224_CONNECTION_CONFIRM:
        return RdpAnswer(False, f"X.224 answer is not a Connection Confirm (code 0x{tpdu[1]:02x})")
    neg = tpdu[7:]
    if len(neg) >= 8 and neg[0] == TYPE_RDP_NEG_RSP:
        selected = struct.unpack("<I", neg[4:8])[0]
        name = RDP_PROTOCOL_NAMES.get(selected, f"protocol 0x{selected:x}")
        return RdpAnswer(True, f"RDP: X.224 Connection Confirm, security {name}", selected=selected)
    if len(neg) >= 8 and neg[0] == TYPE_RDP_NEG_FAILURE:
        code = struct.unpack("<I", neg[4:8])[0]
        # The server is RDP and talking; it just wants other security settings.
        return RdpAnswer(True, f"RDP: X.224 Connection Confirm, negotiation failure {RDP_FAILURE_NAMES.get(code, code)}", failure=code)
    return RdpAnswer(True, "RDP: X.224 Connection Confirm (no negotiation response: standard RDP security)", selected=PROTOCOL_RDP)


# --- resolution ----------------------------------------------------------------


class DnsError(Exception):
    """The name cannot be resolved; str() is one sentence."""


class Resolver(Protocol):
    async def resolve(self, host: str) -> list[str]: ...


def is_reserved_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in ("test", "invalid", "example", "localhost") or name.endswith(RESERVED_SUFFIXES)


class StaticResolver:
    """Addresses pass through; known names come from a table (the inventory's
    FQDN -> public IP); reserved names never reach DNS. Other names go to the
    system resolver only when `system_dns` is on (real Azure, never the demo)."""

    def __init__(self, names: Mapping[str, str | Iterable[str]] | None = None, *, system_dns: bool = False):
        self.names: dict[str, list[str]] = {}
        for name, value in (names or {}).items():
            self.names[name.lower().rstrip(".")] = [value] if isinstance(value, str) else list(value)
        self.system_dns = system_dns

    async def resolve(self, host: str) -> list[str]:
        if _is_address(host):
            return [host]
        name = host.lower().rstrip(".")
        if name in self.names:
            found = self.names[name]
            if not found:
                raise DnsError(f"{host} has no address")
            return list(found)
        if name == "localhost":
            return ["127.0.0.1"]
        if is_reserved_name(name) or not self.system_dns:
            raise DnsError(f"{host} does not resolve (no such name)")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DnsError(f"{host} does not resolve: {exc.strerror}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- targets and results -------------------------------------------------------


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    port: int  # the port a client connects to (Azure's view)
    protocol: str = "tcp"  # ssh / rdp / tcp: what should answer
    vm: str = ""
    vm_id: str = ""
    kind: str = ""  # public-ip / fqdn / lb-nat / private
    guest_port: int | None = None
    via: str = ""

    @classmethod
    def from_endpoint(cls, endpoint: Any) -> ProbeTarget:
        return cls(
            host=endpoint.host,
            port=endpoint.port,
            protocol=endpoint.protocol,
            vm=endpoint.vm_name,
            vm_id=endpoint.vm_id,
            kind=endpoint.kind,
            guest_port=endpoint.guest_port,
            via=endpoint.via,
        )


@dataclass(frozen=True)
class ProbeResult:
    target: ProbeTarget
    status: str
    latency_ms: float | None = None
    address: str | None = None  # what the host resolved to
    connect_port: int | None = None  # the port really connected (demo port map)
    answered: str | None = None  # ssh / rdp / other / silent / closed; None: not checked
    banner: str | None = None
    detail: str = ""
    attempts: int = 0
    samples_ms: tuple[float, ...] = field(default=(), compare=False)

    @property
    def protocol_ok(self) -> bool | None:
        """Did the expected protocol answer? None when not checked."""
        if self.status != OPEN:
            return False
        if self.target.protocol == "tcp":
            return True
        if self.answered is None:
            return None
        return self.answered == self.target.protocol

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.target.vm,
            "host": self.target.host,
            "port": self.target.port,
            "protocol": self.target.protocol,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 2) if self.latency_ms is not None else None,
            "banner": self.banner,
            "answered": self.answered,
            "protocol_ok": self.protocol_ok,
            "kind": self.target.kind,
            "address": self.address,
            "connect_port": self.connect_port,
            "detail": self.detail,
        }


# Which of a port's results says the most (most_telling): how telling a status is, and an endpoint's kind.
STATUS_RANK = {OPEN: 0, REFUSED: 1, TIMEOUT: 2, UNREACHABLE: 3, DNS_FAILED: 4}
KIND_RANK = {"public-ip": 0, "lb-nat": 1, "fqdn": 2, "private": 3}


def most_telling(results: Iterable[ProbeResult]) -> ProbeResult | None:
    """Of one port's results, the one that says the most: a working endpoint first, then the
    most telling failure, a public endpoint before a private one. None when there is none."""

    def rank(r: ProbeResult) -> tuple[int, int, int]:
        good = 0 if (r.status == OPEN and r.protocol_ok) else 1
        return (good, STATUS_RANK.get(r.status, 9), KIND_RANK.get(r.target.kind, 9))

    return min(results, key=rank, default=None)


def port_of(result: ProbeResult) -> int:
    """The VM's port a result is about: the guest port behind a load balancer's NAT rule, else the one probed."""
    return result.target.guest_port if result.target.guest_port is not None else result.target.port


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 2.0  # per connection attempt, seconds
    attempts: int = 2  # connects per target: latency samples when open, retries when silent
    concurrency: int = 256
    check_protocol: bool = True
    banner_timeout: float | None = None  # default: `timeout`
    loopback_only: bool = False  # the demo: never send a packet beyond 127.0.0.0/8
    port_map: Callable[[str, int], int] | None = None  # (address, port) -> port to connect
    rdp_protocols: int = PROTOCOL_SSL | PROTOCOL_HYBRID  # what the RDP check offers (TLS alone: does the server demand NLA?)

    def validate(self) -> ProbeOptions:
        if not (0 < self.timeout <= 600):
            raise ValueError("--timeout must be between 0 and 600 seconds")
        if not (1 <= self.attempts <= 20):
            raise ValueError("attempts must be between 1 and 20")
        if not (1 <= self.concurrency <= 65536):
            raise ValueError("--concurrency must be between 1 and 65536")
        return self


_UNREACHABLE_ERRNOS = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.EADDRNOTAVAIL,
    errno.EAFNOSUPPORT,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.EACCES,
    errno.EPERM,
}


def _classify_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED, "connection refused (RST)"
    if isinstance(exc, ConnectionResetError):
        return REFUSED, "connection reset during the handshake"
    if isinstance(exc, TimeoutError):
        return TIMEOUT, "no answer"
    if isinstance(exc, OSError):
        text = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in _UNREACHABLE_ERRNOS:
            return UNREACHABLE, text.lower()
        return UNREACHABLE, text.lower()
    return UNREACHABLE, str(exc) or type(exc).__name__


async def _connect(address: str, port: int, timeout: float) -> tuple[socket.socket, float]:
    """A non-blocking connect with a deadline: (socket, milliseconds). Raises the OSError
    the kernel reported (ConnectionRefusedError for a RST) or TimeoutError."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    started = time.perf_counter()
    try:
        err = sock.connect_ex((address, port))
        if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
            # Wait for writability directly (no task, no semaphore): this is the hot path of
            # ten thousand probes, and asyncio's sock_connect costs several times more.
            fut = loop.create_future()
            fd = sock.fileno()

            def writable() -> None:
                if not fut.done():
                    fut.set_result(None)

            def expired() -> None:
                if not fut.done():
                    fut.set_exception(TimeoutError())

            loop.add_writer(fd, writable)
            timer = loop.call_later(timeout, expired)
            try:
                await fut
            finally:
                loop.remove_writer(fd)
                timer.cancel()
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))  # PEP 3151 picks the subclass (ConnectionRefusedError, ...)
    except BaseException:
        sock.close()
        raise
    return sock, (time.perf_counter() - started) * 1000.0


async def _recv_some(sock: socket.socket, limit: int, deadline: float) -> bytes:
    loop = asyncio.get_running_loop()
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise TimeoutError
    async with asyncio.timeout(remaining):
        return await loop.sock_recv(sock, limit)


# RFC 4253 4.2: the identification line is at most 255 bytes, CR LF included; lines that do
# not begin with "SSH-" may come before it. OpenSSH reads at most 1024 such lines and 8 KiB.
SSH_IDENT_MAX = 255
SSH_PRE_LINES_MAX = 1024
SSH_PRE_BYTES_MAX = 8192


async def check_ssh(sock: socket.socket, timeout: float) -> tuple[str, str | None, str]:
    """(answered, banner, detail) after reading what the server sends first.

    "ssh" only for an identification line as RFC 4253 4.2 has it (at most 255 bytes with
    its CR LF): a longer line that begins with "SSH-" is a peer OpenSSH refuses, so it is
    not working SSH. A server still in the middle of a line that could become one when the
    time is up (it sent "SS") did not answer in time: "silent", not "other"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    received = b""  # everything, for the report when it is not SSH
    buffer = b""  # the line being read
    lines_before = 0
    try:
        while True:
            chunk = await _recv_some(sock, 4096, deadline)
            if not chunk:
                break
            received += chunk
            buffer += chunk
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if line.startswith(b"SSH-"):
                    if len(line) + 1 > SSH_IDENT_MAX:
                        return "other", _printable(line[:SSH_IDENT_MAX]), _IDENT_TOO_LONG
                    text = line.rstrip(b"\r").decode("utf-8", "replace")
                    return "ssh", text, f"SSH server: {text}"
                # RFC 4253 lets a server send other lines first; keep reading, within bounds.
                lines_before += 1
                if lines_before > SSH_PRE_LINES_MAX:
                    return "other", _printable(received), f"not SSH: more than {SSH_PRE_LINES_MAX} lines before an SSH identification"
            if buffer.startswith(b"SSH-") and len(buffer) >= SSH_IDENT_MAX:
                return "other", _printable(buffer[:SSH_IDENT_MAX]), _IDENT_TOO_LONG
            if received[:1] == bytes([TPKT_VERSION]) and len(received) >= 4:
                return "rdp", None, "the port speaks RDP, not SSH"
            if len(received) - len(buffer) > SSH_PRE_BYTES_MAX or len(buffer) > SSH_PRE_BYTES_MAX:
                return "other", _printable(received), f"not SSH: more than {SSH_PRE_BYTES_MAX // 1024} KiB before an SSH identification"
    except TimeoutError:
        if not received:
            return "silent", None, f"connected, but no SSH identification within {timeout:g} s"
        if buffer and _could_become_ident(buffer):
            return "silent", None, f"connected, but no complete SSH identification within {timeout:g} s ({len(buffer)} bytes of one so far)"
        return "other", _printable(received), "an unknown service answered (not SSH)"
    except OSError:
        if not received:
            return "closed", None, "the connection was reset before an SSH identification"
    if received:
        return "other", _printable(received), "an unknown service answered (not SSH)"
    return "closed", None, "the connection was closed before an SSH identification"


_IDENT_TOO_LONG = f"not SSH: an identification line longer than {SSH_IDENT_MAX} bytes (RFC 4253 4.2), which OpenSSH refuses"


def _could_become_ident(partial: bytes) -> bool:
    """Whether an unfinished line may still turn out to be an SSH identification."""
    return b"SSH-".startswith(partial[:4]) and len(partial) < SSH_IDENT_MAX


async def check_rdp(sock: socket.socket, timeout: float, requested: int = PROTOCOL_SSL | PROTOCOL_HYBRID) -> tuple[str, str | None, str]:
    """Send an X.224 Connection Request offering `requested`; (answered, banner, detail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    buffer = b""
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_sendall(sock, x224_connection_request(requested))
        while True:
            chunk = await _recv_some(sock, 4096, deadline)
            if not chunk:
                break
            buffer += chunk
            if buffer.startswith(b"SSH-"):
                line = buffer.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
                return "ssh", line[:255], "the port speaks SSH, not RDP"
            if len(buffer) >= 4 and buffer[0] == TPKT_VERSION:
                length = struct.unpack(">H", buffer[2:4])[0]
                if len(buffer) >= length:
                    break
            elif len(buffer) >= 4:
                break
            if len(buffer) > 65536:
                break
    except TimeoutError:
        if not buffer:
            return "silent", None, f"connected, but no answer to the RDP Connection Request within {timeout:g} s"
    except (ConnectionResetError, BrokenPipeError, OSError):
        if not buffer:
            return "closed", None, "the connection was reset after the RDP Connection Request"
    if not buffer:
        return "closed", None, "the connection was closed after the RDP Connection Request"
    answer = parse_connection_confirm(buffer)
    if answer.ok:
        return "rdp", answer.detail, answer.detail
    return "other", _printable(buffer), f"not RDP: {answer.detail}"


def _printable(data: bytes) -> str:
    text = data[:64].decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "." for c in text)


async def probe_one(target: ProbeTarget, options: ProbeOptions, resolver: Resolver | None = None) -> ProbeResult:
    """Resolve, connect (with retries), check the protocol, measure latency."""
    resolver = resolver or StaticResolver()
    try:
        addresses = await resolver.resolve(target.host)
    except DnsError as exc:
        return ProbeResult(target, DNS_FAILED, detail=str(exc))
    if not addresses:
        return ProbeResult(target, DNS_FAILED, detail=f"{target.host} has no address")
    address = addresses[0]
    connect_port = options.port_map(address, target.port) if options.port_map else target.port
    if options.loopback_only and not _is_loopback(address):
        return ProbeResult(
            target,
            UNREACHABLE,
            address=address,
            connect_port=connect_port,
            detail=f"not probed: {address} is outside 127.0.0.0/8 and this session only probes loopback",
        )
    samples: list[float] = []
    statuses: list[tuple[str, str]] = []
    answered = banner = None
    detail = ""
    attempts = 0
    for _ in range(options.attempts):
        attempts += 1
        try:
            sock, elapsed = await _connect(address, connect_port, options.timeout)
        except (OSError, TimeoutError) as exc:
            status, why = _classify_error(exc)
            statuses.append((status, why))
            if status == REFUSED:
                break  # an answer: the host is there and says no
            continue
        samples.append(elapsed)
        try:
            if answered is None and options.check_protocol and target.protocol in ("ssh", "rdp"):
                wait = options.banner_timeout or options.timeout
                if target.protocol == "ssh":
                    answered, banner, detail = await check_ssh(sock, wait)
                else:
                    answered, banner, detail = await check_rdp(sock, wait, options.rdp_protocols)
        finally:
            sock.close()
    if samples:
        from statistics import median  # here: every verdict imports this module, few probe (statistics brings fractions and decimal)

        return ProbeResult(
            target,
            OPEN,
            latency_ms=median(samples),
            address=address,
            connect_port=connect_port,
            answered=answered,
            # The peer wrote the banner (and the detail quotes it): stored only made safe.
            banner=safe_opt(banner),
            detail=safe_line(detail) if detail else "connected",
            attempts=attempts,
            samples_ms=tuple(samples),
        )
    refused = next((s for s in statuses if s[0] == REFUSED), None)
    status, why = refused or statuses[-1]
    if status == TIMEOUT:
        why = f"no answer within {options.timeout:g} s ({attempts} attempt{'s' if attempts != 1 else ''})"
    return ProbeResult(target, status, address=address, connect_port=connect_port, detail=why, attempts=attempts)


@lru_cache(maxsize=65536)
def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=65536)
def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


async def iter_probes(targets: Iterable[ProbeTarget], options: ProbeOptions | None = None, resolver: Resolver | None = None) -> AsyncIterator[ProbeResult]:
    """Probe everything with at most `concurrency` at once; yield results as they finish."""
    options = (options or ProbeOptions()).validate()
    resolver = resolver or StaticResolver()
    targets = list(targets)
    pending = iter(targets)
    queue: asyncio.Queue[ProbeResult] = asyncio.Queue()

    async def worker() -> None:
        # A fixed pool pulling from one iterator: no task and no semaphore wait per target.
        for target in pending:
            try:
                result = await probe_one(target, options, resolver)
            except Exception as exc:  # a probe must always report, never vanish
                result = ProbeResult(target, UNREACHABLE, detail=f"probe failed: {exc}")
            queue.put_nowait(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(options.concurrency, len(targets)))]
    try:
        for _ in range(len(targets)):
            yield await queue.get()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def probe_many(
    targets: Iterable[ProbeTarget],
    options: ProbeOptions | None = None,
    resolver: Resolver | None = None,
    on_result: Callable[[ProbeResult], Any] | None = None,
) -> list[ProbeResult]:
    """All results, in the order of `targets`."""
    targets = list(targets)
    order = {id(t): i for i, t in enumerate(targets)}
    results: list[tuple[int, ProbeResult]] = []
    async for result in iter_probes(targets, options, resolver):
        if on_result is not None:
            on_result(result)
        results.append((order.get(id(result.target), 0), result))
    results.sort(key=lambda pair: pair[0])
    return [r for _, r in results]


# --- ready-to-use connection lines --------------------------------------------


def connect_host(best: ProbeResult, results: Iterable[ProbeResult] = ()) -> str:
    """Where an .rdp file or an ssh line should point for the endpoint that answered: the DNS
    name Azure gives that public IP or load-balancer frontend when it has one (the next change of
    address does not make the file stale), the address otherwise. A name comes from a result of
    kind ``fqdn`` through the same public IP or NAT rule (``via``) and port."""
    target = best.target
    if target.kind == "fqdn":
        return target.host
    for other in results:
        t = other.target
        if t.kind == "fqdn" and t.vm_id == target.vm_id and t.via == target.via and t.port == target.port:
            return t.host
    return best.address or target.host


def ssh_command(host: str, port: int = 22, user: str | None = None) -> str:
    """The ssh line to paste: the destination (a user name and an address from the tenant) is
    one quoted word, after ``--`` when it would read as an option."""
    from backend.shellcmd import sh

    who = f"{user}@{host}" if user else host
    options = ["-p", str(port)] if port != 22 else []
    return str(sh("ssh", *options, *(["--"] if who.startswith("-") else []), who))


def mstsc_command(host: str, port: int = 3389) -> str:
    """The mstsc line to paste (cmd or PowerShell): ``/v:`` and the address, single-quoted
    unless it is only what an address is made of."""
    from backend.shellcmd import ps_quote

    target = f"/v:{host}:{port}" if port != 3389 else f"/v:{host}"
    return "mstsc " + (target if re.fullmatch(r"/v:[A-Za-z0-9.:\[\]-]+", target) else ps_quote(target))


def rdp_file_text(host: str, port: int = 3389, user: str | None = None) -> str:
    """A minimal .rdp file (CRLF lines as mstsc writes them). No password, ever."""
    address = host if port == 3389 else f"{host}:{port}"
    lines = [
        f"full address:s:{address}",
        "prompt for credentials:i:1",
        "authentication level:i:2",
        "enablecredsspsupport:i:1",
        "screen mode id:i:1",
    ]
    if user:
        lines.append(f"username:s:{user}")
    return "\r\n".join(lines) + "\r\n"


def write_rdp_file(directory: str | Path, name: str, host: str, port: int = 3389, user: str | None = None) -> Path:
    """Write DIR/NAME.rdp atomically (a half-written file never appears), readable only by the user."""
    from backend.escape import safe_filename
    from backend.files import write_private_atomically

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    path = directory / f"{safe_filename(name)}.rdp"
    write_private_atomically(path, rdp_file_text(host, port, user))
    return path
