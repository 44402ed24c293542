"""textual-serve's Server with the guards a console that holds an Azure
sign-in needs, and aztriage's own page (no third-party resources).

- A request whose Host header is not one this server answers to gets 403:
  a DNS-rebinding page cannot reach the console under a name of its own.
- The websocket (/ws) that drives a console must come from this server's
  own page: its Origin must be one of this server's origins. Browsers do
  not apply the same-origin policy to websockets, so without this check
  any site the operator has open could type into the console.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from textual_serve.server import Server

log = logging.getLogger("aztriage.serve")

TEMPLATES = Path(__file__).resolve().parent


def origin_allowed(origin: str | None, host: str, allowed: set[str] | None) -> bool:
    """An Origin header is acceptable when it names this server: one of `allowed`
    (host:port, lower case), or, when those are unknown, the Host the request came to."""
    if not origin:
        return False
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return False
    netloc = parsed.netloc.lower()
    if parsed.port is None:
        netloc += ":443" if parsed.scheme == "https" else ":80"
    candidates = allowed if allowed is not None else {host.lower()}
    normalized = set()
    for candidate in candidates:
        if ":" in candidate.rsplit("]", 1)[-1]:
            normalized.add(candidate)
        else:
            normalized |= {candidate + ":80", candidate + ":443"}
    return netloc in normalized


def host_allowed(host: str, allowed: set[str] | None) -> bool:
    if allowed is None:
        return True
    host = host.lower()
    return host in allowed or host + ":80" in allowed or host + ":443" in allowed or (host.endswith(":80") and host[:-3] in allowed) or (host.endswith(":443") and host[:-4] in allowed)


class ConsoleServer(Server):
    def __init__(self, command: str, *, host: str, port: int, public_url: str, allowed_hosts: set[str] | None, title: str, note: str = "") -> None:
        super().__init__(command, host=host.strip("[]"), port=port, title=title, public_url=public_url, templates_path=TEMPLATES)
        self.allowed_hosts = allowed_hosts
        self.note = note
        self.refused = 0  # requests refused by the guards (tests read it)

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not host_allowed(host, self.allowed_hosts):
            self.refused += 1
            log.warning("refused a request for host %r (not this server's name)", host)
            return web.Response(status=403, text="aztriage: this server does not answer to that host name.\n")
        if request.path == "/ws" and not origin_allowed(request.headers.get("Origin"), host, self.allowed_hosts):
            self.refused += 1
            log.warning("refused a websocket from origin %r", request.headers.get("Origin"))
            return web.Response(status=403, text="aztriage: the console only accepts its own page.\n")
        response = await handler(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app

    async def on_startup(self, app: web.Application) -> None:
        # One line instead of textual-serve's banner; scripts and tests wait for it.
        self.console.print(f"aztriage console on {self.public_url} ({self.note}); Ctrl+C stops", highlight=False, soft_wrap=True)
