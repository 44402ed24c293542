"""The local Azure Resource Manager emulator: an aiohttp HTTPS server on 127.0.0.1.

    emu = Emulator(estate, page_size=1000, acceleration=300)
    await emu.start()            # emu.endpoint == "https://127.0.0.1:PORT", emu.ca_file
    ...
    await emu.stop()

or, from synchronous code (demo mode, tests)::

    with EmulatorThread(estate) as emu:
        ...                      # emu.endpoint, emu.ca_file, emu.store

Control routes under /_emulator/ need no auth and are never counted:
GET stats | requests | operations | writes | resources[?type=] | faults,
POST faults | reset | advance {"seconds": N}, DELETE faults.

Later features add routes with ``Emulator.add_routes(fn)`` / ``ROUTE_EXTENSIONS``
(``fn(app, store)`` is called at start, before the ARM catch-all route) or
``arm.register_action(type, action, fn)`` for ``POST .../{type}/{name}/{action}``.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import os
import ssl
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

import trustme
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from . import changes
from .activitylog import caller_from
from .activitylog import install as activity_routes
from .arm import Arm, ArmRequest, ArmResponse, error_response
from .faults import FaultSet, corrupt, fault_error, rbac_action
from .ids import ArmError
from .lro import iso
from .routing import parse_route
from .store import Store

log = logging.getLogger("aztriage.emulator")

RouteExtension = Callable[[web.Application, Store], None]
ROUTE_EXTENSIONS: list[RouteExtension] = []

EMULATOR_KEY: web.AppKey[Any] = web.AppKey("aztriage_emulator", object)
STORE_KEY: web.AppKey[Store] = web.AppKey("aztriage_store", Store)
ROUTE_RKEY: web.RequestKey[Any] = web.RequestKey("aztriage_route", object)
FAULT_RKEY: web.RequestKey[Any] = web.RequestKey("aztriage_fault", object)
OPID_RKEY: web.RequestKey[Any] = web.RequestKey("aztriage_operation_id", object)

WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
# POST actions that only read (e.g. retrieveBootDiagnosticsData, lower-case): not counted as writes.
READ_ACTIONS: set[str] = set()
READ_PATHS: set[str] = set()  # lower-case paths of POSTs that only read (Resource Graph queries)
TICK_S = 0.05


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


def _rbac_type(route: Any) -> str:
    """The resource type an RBAC check of this route is about."""
    kind = route.kind
    if kind.startswith("rh_"):
        return "Microsoft.ResourceHealth/" + ("events" if "event" in kind else "availabilityStatuses")
    if route.ns:
        return route.type if route.types else route.ns
    if kind in ("rg", "rg_list"):
        return "Microsoft.Resources/subscriptions/resourceGroups"
    return "Microsoft.Resources/subscriptions"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def to_web(resp: ArmResponse) -> web.Response:
    body = resp.body
    if body is None:
        data = None
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = _dumps(body)
    out = web.Response(status=resp.status, body=data, headers=resp.headers)
    if data is not None:
        out.content_type = "application/json"
        out.charset = "utf-8"
    return out


def arm_request(request: web.Request, body: Any, *, method: str, endpoint: str | None, route: Any) -> ArmRequest:
    """The emulator's view of an HTTP request (with the fault the fault middleware attached, if any)."""
    fault = request.get(FAULT_RKEY)
    return ArmRequest(
        method=method,
        path=request.path,
        raw_path=request.rel_url.raw_path,
        query={k.lower(): v for k, v in request.query.items()},
        raw_query=request.rel_url.raw_query_string,
        body=body,
        base_url=f"https://{request.host}" if request.host else (endpoint or ""),
        route=route,
        lro_result=fault.lro_result if fault is not None else None,
        lro_error=fault.lro_error if fault is not None else None,
    )


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended, whatever it ended with."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_dumps(data), content_type="application/json")


class Emulator:
    """An ARM emulator serving ``estate`` over HTTPS on a loopback address."""

    def __init__(
        self,
        estate: dict,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        page_size: int = 1000,
        acceleration: float = 300,
        faults: list[dict] | None = None,
        prewarm: bool = True,
        graph_quota: tuple[int, float] | None = None,
        graph_subscription_limit: int | None = None,
        graph_truncate_after: int | None = None,
    ):
        if not _loopback(host):
            raise ValueError(f"the emulator only listens on loopback addresses (127.0.0.0/8), not {host!r}")
        self.host = host
        self.port = int(port)
        self.latency_ms = float(latency_ms or 0)
        self.page_size = int(page_size)
        self.acceleration = float(acceleration)
        self.prewarm = bool(prewarm)
        # Azure Resource Graph (backend/emulator/graph.py): queries per window and the scope limit
        self.graph_quota = graph_quota
        self.graph_subscription_limit = graph_subscription_limit
        self.graph_truncate_after = graph_truncate_after
        self.store = Store(estate, acceleration=acceleration)
        self.arm = Arm(self.store, page_size=page_size)
        self.faults = FaultSet()
        for spec in faults or []:
            self.faults.add(spec)
        self.endpoint: str | None = None
        self.ca_file: str | None = None
        self._extensions: list[RouteExtension] = []
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task | None = None
        self.app: web.Application | None = None
        self._reset_stats()

    # ------------------------------------------------------------ extensions
    @classmethod
    def add_routes(cls, fn: RouteExtension) -> RouteExtension:
        """Register ``fn(app, store)`` for every emulator started from now on (usable as a decorator)."""
        if fn not in ROUTE_EXTENSIONS:
            ROUTE_EXTENSIONS.append(fn)
        return fn

    def add_instance_routes(self, fn: RouteExtension) -> RouteExtension:
        """Register ``fn(app, store)`` for this emulator only (call before ``start``)."""
        self._extensions.append(fn)
        return fn

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> Emulator:
        ca = trustme.CA(organization_name="aztriage emulator")
        names = ["127.0.0.1", "localhost"] + ([self.host] if self.host not in ("127.0.0.1", "localhost") else [])
        cert = ca.issue_cert(*names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        fd, path = tempfile.mkstemp(prefix="aztriage-emulator-ca-", suffix=".pem")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, ca.cert_pem.bytes())
        finally:
            os.close(fd)
        self.ca_file = path

        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        app[EMULATOR_KEY] = self
        app[STORE_KEY] = self.store
        with warnings.catch_warnings():  # plain-string keys too, for extensions written against them
            warnings.simplefilter("ignore", NotAppKeyWarning)
            app["emulator"] = self
            app["store"] = self.store
        self._add_control_routes(app)
        for fn in list(ROUTE_EXTENSIONS) + self._extensions:
            fn(app, self.store)
        app.router.add_route("*", "/{tail:.*}", self._arm_handler)
        self.app = app
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()  # runs the extensions' on_startup hooks (they may reload the store)
        if self.prewarm:  # serialize the estate now: the first inventory then costs little CPU
            self.store.prewarm()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=ctx)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._remove_ca()
            raise
        self._runner = runner
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.endpoint = f"https://{self.host}:{self.port}"
        self._ticker = asyncio.create_task(self._tick())
        log.info("ARM emulator listening on %s", self.endpoint)
        return self

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker)
        self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._remove_ca()

    def _remove_ca(self) -> None:
        if self.ca_file:
            try:
                os.unlink(self.ca_file)
            except OSError:
                pass

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.store.apply_due()
            except Exception:
                log.exception("emulator tick failed")

    # ----------------------------------------------------------------- stats
    def _reset_stats(self) -> None:
        self._requests = 0
        self._writes = 0
        self._by_route: dict[str, int] = {}
        self._log: deque[dict] = deque(maxlen=200_000)

    def stats(self) -> dict:
        return {"requests": self._requests, "writes": self._writes, "by_route": dict(self._by_route)}

    def request_log(self) -> list[dict]:
        return list(self._log)

    def reset(self) -> None:
        """Back to the initial estate; stats, request log and faults cleared."""
        self.store.load()
        if self.prewarm:
            self.store.prewarm()
        self.faults.clear()
        self._reset_stats()

    # ------------------------------------------------------------ middleware
    @staticmethod
    def _authorized(request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth[:7].lower() == "bearer " and bool(auth[7:].strip())

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_emulator"):
            return await handler(request)
        t0 = time.time()
        method = request.method.upper()
        route = parse_route(path)
        request[ROUTE_RKEY] = route
        self._requests += 1
        key = f"{method} {route.template}"
        self._by_route[key] = self._by_route.get(key, 0) + 1
        is_write = method in WRITE_METHODS and not (method == "POST" and ((route.last or "").lower() in READ_ACTIONS or path.lower() in READ_PATHS))
        before = None
        if is_write:
            self._writes += 1
            before = changes.snapshot(self.store, method, path)  # what the write changes, as it was
        status = 500
        resp: web.StreamResponse
        try:
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000.0)
            fault = self.faults.take(method, path) if self.faults else None
            if fault is not None and fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            if fault is not None and fault.reset_connection:
                status = 0
                transport = request.transport
                if transport is not None:
                    transport.abort()
                request.protocol.force_close()
                return web.Response(status=500)
            if not self._authorized(request):
                resp = to_web(
                    error_response(
                        ArmError(
                            401,
                            "AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is missing.",
                            {
                                "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                'error="invalid_token", error_description="The authentication failed because of missing '
                                "'Authorization' header.\""
                            },
                        )
                    )
                )
            elif fault is not None and fault.status is not None:
                err = fault_error(fault, method, path, route.sub, route.ns, rbac_action(method, _rbac_type(route), route.last), iso(time.time()) or "")
                resp = to_web(error_response(err))
            else:
                self.store.apply_due()
                request[FAULT_RKEY] = fault
                resp = await handler(request)
                if fault is not None and fault.malformed_json:
                    resp = self._malformed(resp)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception as exc:
            log.exception("emulator error on %s %s", method, path)
            status = 500
            return to_web(error_response(ArmError(500, "InternalServerError", f"Emulator error: {exc}")))
        finally:
            self._log.append(
                {
                    "method": method,
                    "path": path,
                    "query": request.query_string,
                    "client_request_id": request.headers.get("x-ms-client-request-id"),
                    "status": status,
                    "t": t0,
                    "ms": round((time.time() - t0) * 1000, 3),
                }
            )
            if is_write:
                self.store.record_write(
                    method,
                    path,
                    status,
                    request.get(OPID_RKEY),
                    caller_from(request.headers.get("Authorization", "")),
                    before=before,
                    client=changes.client_type(request.headers.get("User-Agent", "")),
                )

    @staticmethod
    def _malformed(resp: web.StreamResponse) -> web.StreamResponse:
        body = resp.body if isinstance(resp, web.Response) else None
        data = body if isinstance(body, (bytes, bytearray)) else b""
        out = web.Response(
            status=resp.status,
            body=corrupt(bytes(data)),
            headers={k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "content-type")},
        )
        out.content_type = "application/json"
        return out

    # ------------------------------------------------------------- ARM routes
    async def _arm_handler(self, request: web.Request) -> web.StreamResponse:
        route = request.get(ROUTE_RKEY) or parse_route(request.path)
        raw = await request.read()
        body = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                return to_web(
                    error_response(
                        ArmError(
                            400,
                            "InvalidRequestContent",
                            f"The request content was invalid and could not be deserialized: '{exc}'.",
                        )
                    )
                )
        req = arm_request(request, body, method=request.method.upper(), endpoint=self.endpoint, route=route)
        out = self.arm.handle(req)
        if inspect.isawaitable(out):
            try:
                out = await out
            except ArmError as exc:
                out = error_response(exc)
        request[OPID_RKEY] = req.operation_id
        if isinstance(out, web.StreamResponse):
            return out
        return to_web(out)

    # --------------------------------------------------------- control routes
    def _add_control_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/_emulator/stats", self._c_stats)
        r.add_get("/_emulator/requests", self._c_requests)
        r.add_get("/_emulator/operations", self._c_operations)
        r.add_get("/_emulator/writes", self._c_writes)
        r.add_get("/_emulator/resources", self._c_resources)
        r.add_get("/_emulator/faults", self._c_faults_get)
        r.add_post("/_emulator/faults", self._c_faults_post)
        r.add_delete("/_emulator/faults", self._c_faults_delete)
        r.add_post("/_emulator/reset", self._c_reset)
        r.add_post("/_emulator/advance", self._c_advance)

    async def _c_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats())

    async def _c_requests(self, request: web.Request) -> web.Response:
        return _json(self.request_log())

    async def _c_operations(self, request: web.Request) -> web.Response:
        self.store.apply_due()
        return _json([op.record() for op in self.store.iter_operations()])

    async def _c_writes(self, request: web.Request) -> web.Response:
        return _json(list(self.store.writes))

    async def _c_resources(self, request: web.Request) -> web.Response:
        self.store.apply_due()
        return _json(self.store.dump(request.query.get("type")))

    async def _c_faults_get(self, request: web.Request) -> web.Response:
        return _json(self.faults.list())

    async def _c_faults_post(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            specs = spec if isinstance(spec, list) else [spec]
            added = [self.faults.add(s).to_json() for s in specs]
        except (ValueError, TypeError) as exc:
            return _json({"error": {"code": "InvalidFault", "message": str(exc)}}, 400)
        return _json(added if isinstance(spec, list) else added[0], 201)

    async def _c_faults_delete(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return _json({"cleared": True})

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json({"reset": True})

    async def _c_advance(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            seconds = float(spec.get("seconds", 0))
        except (ValueError, TypeError, AttributeError) as exc:
            return _json({"error": {"code": "InvalidRequest", "message": str(exc)}}, 400)
        self.store.advance(seconds)
        return _json({"clock_offset": self.store.clock_offset, "now": iso(self.store.now())})


class EmulatorThread:
    """An Emulator running in its own event loop in a daemon thread.

    ``start()`` blocks until the server listens (and raises RuntimeError with the
    cause if it could not start); ``stop()`` shuts it down. Use ``call(fn, ...)``
    to run code against the store on the emulator's loop.
    """

    def __init__(self, estate: dict, **kwargs: Any):
        self.emulator = Emulator(estate, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def endpoint(self) -> str | None:
        return self.emulator.endpoint

    @property
    def ca_file(self) -> str | None:
        return self.emulator.ca_file

    @property
    def store(self) -> Store:
        return self.emulator.store

    def start(self, timeout: float = 30.0) -> EmulatorThread:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="aztriage-arm-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"ARM emulator did not start within {timeout:.0f} s")
        if self._error is not None:
            err = self._error
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"ARM emulator failed to start on {self.emulator.host}:{self.emulator.port}: {err}") from err
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.emulator.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self.emulator.stop())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(*args)`` (sync or async) on the emulator loop and return its result."""
        if self._loop is None:
            raise RuntimeError("emulator thread not started")

        async def run() -> Any:
            out = fn(*args)
            if inspect.isawaitable(out):
                out = await out
            return out

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# Routes of features that live in their own modules.
from .usage import usage_routes  # noqa: E402  (compute usage and quota: backend/emulator/usage.py)

Emulator.add_routes(usage_routes)
from .recovery_ops import recovery_routes  # noqa: E402  (locks, vmSizes, run-command and VMAccess effects: backend/emulator/recovery_ops.py)

Emulator.add_routes(recovery_routes)
from .graph import graph_routes  # noqa: E402  (Azure Resource Graph queries: backend/emulator/graph.py)

Emulator.add_routes(graph_routes)
Emulator.add_routes(activity_routes)  # the activity log (Microsoft.Insights management events): backend/emulator/activitylog.py
from .skus import install as sku_routes  # noqa: E402  (Resource SKUs per region and the size rules of VM writes: backend/emulator/skus.py)

Emulator.add_routes(sku_routes)
# the order the routes register in
# isort: off
from . import guest  # noqa: E402,F401  (registers itself: demo guests' RDP/SSH listeners, Network Watcher; backend/emulator/guest.py)
from . import bootdiag  # noqa: E402,F401  (registers itself: retrieveBootDiagnosticsData and its blobs; backend/emulator/bootdiag.py)
from . import rescue_ops  # noqa: E402,F401  (registers itself: guest facts that follow OS disks, rescue repairs, swap checks; backend/emulator/rescue_ops.py)
from . import serialconsole  # noqa: E402,F401  (registers itself: Azure Serial Console routes, gateway and scripted guest consoles; backend/emulator/serialconsole.py)
from . import restore_points  # noqa: E402,F401  (registers itself: restore point collections and restore points; backend/emulator/restore_points.py)
from . import backup  # noqa: E402,F401  (registers itself: Azure Backup's vault items, policies, on-demand backups and jobs; backend/emulator/backup.py)
from . import netpath_ops  # noqa: E402,F401  (registers itself: VPN connection and gateway resets, public IP writes; backend/emulator/netpath_ops.py)
# isort: on
