"""textual-serve's Server with the guards a console that holds an Azure
sign-in needs, and aztriage's own page (no third-party resources).

- A request whose Host header is not one this server answers to gets 403:
  a DNS-rebinding page cannot reach the console under a name of its own.
  With a wildcard listening address (0.0.0.0, ::) and no --public-url the
  Host must be an IP address (no name at all) on the listening port.
- Every request needs the per-launch secret: the token in the URL that
  `aztriage serve` prints once, or the cookie it is exchanged for on the
  first visit (HttpOnly, SameSite=Strict; the browser is then sent to the
  same address without the token, so it leaves the address bar and the
  history). Without it: 403 and a short page, never the console. The token
  is compared in constant time and never logged (the access log has paths,
  not query strings).
- The websocket (/ws) that drives a console must come from this server's
  own page: its Origin must be one of this server's origins. Browsers do
  not apply the same-origin policy to websockets, so without this check
  any site the operator has open could type into the console.
- A malformed Host, Origin, cookie or query is refused like a wrong one:
  403 and one log line, never a 500 with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from multidict import MultiDict
from textual_serve.server import Server

from tui.web.names import HostNames, host_allowed, origin_allowed, same_secret

log = logging.getLogger("aztriage.serve")

TEMPLATES = Path(__file__).resolve().parent
TOKEN_PARAM = "token"
REFUSED = web.RequestKey("aztriage.refused", bool)  # set on a request the guard refused (and logged)

FORBIDDEN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>aztriage: forbidden</title></head>
<body><h1>403 Forbidden</h1><p>{reason}</p></body></html>
"""


def _short(value: str | None, limit: int = 120) -> str:
    """A header value for the log: repr (control characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class AccessLog(AbstractAccessLogger):
    """One line per answered request: address, method, path and status. No query
    string (the token travels in one) and nothing for requests the guard refused,
    which it logged itself."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.get(REFUSED):
            return
        self.logger.info("%s %s %s %s", request.remote, request.method, _short(request.path, 200), response.status)


class ConsoleServer(Server):
    def __init__(self, command: str, *, host: str, port: int, public_url: str, names: HostNames, token: str, title: str, note: str = "") -> None:
        super().__init__(command, host=host.strip("[]"), port=port, title=title, public_url=public_url, templates_path=TEMPLATES)
        self.names = names
        self.token = token
        self.cookie_name = f"aztriage-token-{port}"  # cookies ignore ports: one name per server
        self.secure_cookie = public_url.startswith("https://")
        self.note = note
        self.refused = 0  # requests refused by the guards (tests read it)

    @property
    def url_with_token(self) -> str:
        return f"{self.public_url}/?{TOKEN_PARAM}={self.token}"

    def _refuse(self, request: web.Request, reason: str, why: str, *args: Any) -> web.Response:
        self.refused += 1
        request[REFUSED] = True
        log.warning("refused %s %s from %s: " + why, request.method, _short(request.path, 80), request.remote, *args)
        return web.Response(status=403, text=FORBIDDEN_PAGE.format(reason=reason), content_type="text/html", charset="utf-8")

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        return _harden(await self._guarded(request, handler))

    async def _guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not host_allowed(host, self.names):
            return self._refuse(request, "This server does not answer to that host name.", "host %s is not this server's name", _short(host))
        if TOKEN_PARAM in request.query:
            if not same_secret(request.query.get(TOKEN_PARAM), self.token):
                return self._refuse(request, "The token in the address is wrong: open the address <code>aztriage serve</code> printed.", "a wrong token")
            if request.path != "/ws":
                # The token becomes a cookie; the address bar and the history lose it.
                query = MultiDict(request.query)
                query.popall(TOKEN_PARAM)
                response = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(query))})
                response.set_cookie(self.cookie_name, self.token, path="/", httponly=True, samesite="Strict", secure=self.secure_cookie)
                return response
        if not same_secret(request.cookies.get(self.cookie_name), self.token):
            return self._refuse(request, "Open the address with the token that <code>aztriage serve</code> printed when it started.", "no valid token cookie")
        if request.path == "/ws" and not origin_allowed(request.headers.get("Origin"), host, self.names):
            return self._refuse(request, "The console only accepts its own page.", "a websocket from origin %s", _short(request.headers.get("Origin")))
        return await handler(request)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app

    def serve(self, debug: bool = False) -> None:
        """textual-serve's serve() with aztriage's access log (no query strings: no token)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.add_signal_handler(signal.SIGINT, self.request_exit)
            loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        except NotImplementedError:
            pass
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=lambda *args: None,
            access_log_class=AccessLog,
        )

    async def on_startup(self, app: web.Application) -> None:
        # One line instead of textual-serve's banner, with the token: the one place it is shown.
        # Scripts and tests wait for it.
        self.console.print(f"aztriage console on {self.url_with_token} ({self.note}); Ctrl+C stops", highlight=False, soft_wrap=True, markup=False)


def _harden(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
