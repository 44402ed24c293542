"""The names `aztriage serve` answers to, the checks of Host and Origin headers
against them, and the comparison of the per-launch secret. No aiohttp here:
the CLI builds the names before it imports the server."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import overload
from urllib.parse import urlsplit


@overload
def split_netloc(netloc: str, default_port: int) -> tuple[str, int] | None: ...
@overload
def split_netloc(netloc: str, default_port: int | None) -> tuple[str, int | None] | None: ...
def split_netloc(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    """("host", port) of a Host header or an origin's netloc, the host in lower case
    (an IPv6 address in brackets, compressed); None when it is malformed."""
    try:
        parts = urlsplit("//" + netloc)
        host, port = parts.hostname, parts.port
    except ValueError:  # "[::1", "x:99999", "x:abc"
        return None
    if not host or parts.username is not None or parts.password is not None or parts.path or parts.query or parts.fragment:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "-._:") for c in host):
        return None
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    return host.lower(), port if port is not None else default_port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostNames:
    """The names this server answers to: (host, port) pairs, and for a wildcard
    listening address without --public-url, the port on which any IP address is
    accepted (a Host that is a name is what DNS rebinding needs)."""

    exact: frozenset[tuple[str, int]] = frozenset()
    any_address_port: int | None = None

    def allows(self, host: str, port: int | None) -> bool:
        if port is None:  # a Host header without a port: the scheme's default, unknown here
            return any((host, p) in self.exact for p in (80, 443)) or (self.any_address_port in (80, 443) and _is_ip(host))
        return (host, port) in self.exact or (port == self.any_address_port and _is_ip(host))


def host_allowed(host: str | None, names: HostNames) -> bool:
    parsed = split_netloc(host or "", None)
    return parsed is not None and names.allows(*parsed)


def origin_allowed(origin: str | None, host: str | None, names: HostNames) -> bool:
    """An Origin header is acceptable when it names this server: one of its names, or,
    with a wildcard address, exactly the Host the request came to."""
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment:
        return False
    parsed = split_netloc(parts.netloc, 443 if parts.scheme == "https" else 80)
    if parsed is None:
        return False
    if parsed in names.exact:
        return True
    request_host = split_netloc(host or "", parsed[1])
    return names.any_address_port is not None and request_host == parsed and names.allows(*parsed)


def same_secret(given: str | None, secret: str) -> bool:
    """Constant-time comparison of what a browser sent with the per-launch secret."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode("ascii"))
