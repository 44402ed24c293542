"""The operator's source address as Azure sees it, found without sending anything.

The kernel is asked which local address it would send from to reach the VM: a UDP socket's
``connect()`` only chooses a route and a local address (no datagram leaves the machine), and
``getsockname()`` reads that address back. When it is globally routable, that is the address
Azure sees. When it is private, shared (carrier-grade NAT), loopback or link-local, the machine
sits behind a NAT and the address Azure sees is the NAT's: only a service outside could say
which, and aztriage never asks one (the operator gives it with --source-ip or AZTRIAGE_SOURCE_IP)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

Route = Callable[[str], str | None]

# RFC 6598: shared address space between a carrier's NAT and its customers.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
ASK = "give it with --source-ip ADDRESS (or a CIDR range), or set AZTRIAGE_SOURCE_IP"


@dataclass(frozen=True)
class SourceGuess:
    """The address to allow (None: not known) and where it came from, or why it is not known (a
    sentence without its end: the CLI adds how to give the address, the Recovery pane where to type it)."""

    address: str | None
    origin: str


def route_source(target: str) -> str | None:
    """The local address this machine would send from to reach `target` (None: no route).
    connect() on a UDP socket picks the route and sends no packet."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(target).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))  # the discard port; nothing is sent to it
            return str(probe.getsockname()[0]).split("%", 1)[0]
    except (OSError, ValueError):
        return None


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.version == 4 and address in CGNAT:
        return "a carrier-grade NAT address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def classify(local: str | None, target: str) -> SourceGuess:
    """What the local address on the route to `target` says about the address Azure sees."""
    if not local:
        return SourceGuess(None, f"This machine has no route to {target}, so the address Azure sees cannot be detected")
    try:
        address = ipaddress.ip_address(local)
    except ValueError:
        return SourceGuess(None, f"This machine's address on the route to {target} cannot be read")
    if address.is_global:
        return SourceGuess(str(address), f"detected: this machine's address on the route to {target}")
    return SourceGuess(
        None,
        f"This machine's address on the route to {target} is {address}, {_kind(address)}: Azure sees the address of a NAT "
        "in front of it, which cannot be known without asking an outside service",
    )


def detect(target: str, route: Route | None = None) -> SourceGuess:
    """The operator's address as Azure sees it on the way to `target`, asked of the kernel only
    (`route`: route_source unless a test gives its own)."""
    return classify((route or route_source)(target), target)
