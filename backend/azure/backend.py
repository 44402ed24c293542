"""AzureBackend: the real adapter on the async Azure SDK.

azure-core does the retries (Retry-After honoured), paging and long-running
operation polling; nothing of that is written again here. What this module
adds: one shared HTTPS session, a pipeline without the automatic
resource-provider registration (a POST that a read must never send), a
request counter, and the join of a few subscription-wide lists into
``backend.models``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import (
    AsyncRedirectPolicy,
    AsyncRetryPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    ProxyPolicy,
    RequestIdPolicy,
    SansIOHTTPPolicy,
    SensitiveHeaderCleanupPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.core import AsyncARMPipelineClient
from azure.mgmt.core.policies import AsyncARMChallengeAuthenticationPolicy

from backend import mapping
from backend.adapter import SerialStream, SerialTarget
from backend.azure import activity, bootdiag, graph, history, instance_views, join, serial
from backend.azure.backup_ops import BackupOperations
from backend.azure.compute_skus import SkuOperations
from backend.azure.credentials import make_credential
from backend.azure.lists import INVENTORY_LISTS, SUBSCRIPTIONS_LIST, ListRoute, raw_list
from backend.azure.netpath_ops import NetPathOperations
from backend.azure.restore_point_ops import RestorePointOperations
from backend.errors import BackendError
from backend.gcpause import gc_paused
from backend.instance_views import choose
from backend.models import (
    BootDiagnosticsData,
    GraphResult,
    HealthStatus,
    Inventory,
    Maintenance,
    PublicIp,
    ServiceEvent,
    StorageAccount,
    Subscription,
    SubscriptionError,
    Vm,
)
from backend.safetext import safe_json, safe_line
from backend.settings import DEFAULT_INSTANCE_VIEWS, ConnectionSettings

if TYPE_CHECKING:  # imported where used: `aztriage find` and `broken` need neither (about 0.2 s of CPU)
    from backend.checks import ComputeUsage, UsageKey
    from backend.network import ConnectivityCheck, PrivatePath

log = logging.getLogger("aztriage.azure")

T = TypeVar("T")

USER_AGENT = "aztriage/0.1"


class _ClientRequestId(RequestIdPolicy):
    """The SDK's RequestIdPolicy (x-ms-client-request-id on every request; one the caller
    gives, as the request_id option or the header, wins), given a random UUID of this
    policy's own to set: its own choice, uuid1, costs about 17 µs a request here (against 3)
    and writes this machine's network address into every request it sends."""

    def on_request(self, request: Any) -> None:
        options = request.context.options
        if "request_id" not in options and "x-ms-client-request-id" not in request.http_request.headers:
            options["request_id"] = str(uuid.uuid4())
        super().on_request(request)


class _RequestCounter(SansIOHTTPPolicy):
    """Counts every HTTP attempt, retries included (the inventory's `stats.requests`)."""

    def __init__(self) -> None:
        self.count = 0

    def on_request(self, request: Any) -> None:
        self.count += 1


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(code, one-sentence message) for an SDK or transport failure. Both may quote the
    server's error body or a peer's answer: text from outside, made safe here."""
    code, message = _describe_error(exc)
    return safe_line(str(code)), safe_line(str(message))


def _describe_error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, HttpResponseError):
        code = None
        message = None
        if exc.error is not None:
            code = exc.error.code
            message = exc.error.message
        status = exc.status_code
        code = code or (str(status) if status else type(exc).__name__)
        message = (message or exc.reason or str(exc)).strip().splitlines()[0]
        return code, message
    if isinstance(exc, ClientAuthenticationError):
        return "AuthenticationFailed", "signing in failed: " + str(exc).strip().splitlines()[0]
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, aiohttp.ClientError, OSError)):
        return "ConnectionFailed", f"cannot reach Azure Resource Manager: {str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}"
    if isinstance(exc, asyncio.TimeoutError):
        return "Timeout", "Azure Resource Manager did not answer in time"
    return type(exc).__name__, str(exc) or type(exc).__name__


class RawArmClient:
    """``send_request`` over an ARM pipeline, the request's path joined to the endpoint as
    the SDK clients' own send_request does."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        kwargs.pop("credential_scopes", None)
        kwargs.pop("read_timeout", None)
        self._client: AsyncARMPipelineClient[Any, Any] = AsyncARMPipelineClient(base_url=base_url, **kwargs)

    def send_request(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Awaitable[Any]:
        request.url = self._client.format_url(request.url)
        return self._client.send_request(request, stream=stream, **kwargs)

    async def close(self) -> None:
        await self._client.close()


class AzureBackend(NetPathOperations, SkuOperations, BackupOperations, RestorePointOperations):
    """Every capability of ``backend.adapter`` over the async management SDKs.

    The reads and writes of recoveries are the mixins' (``operations``,
    ``rescue_ops``); boot diagnostics, network checks, health history, quota and
    instance views live in their own modules, whose functions take this object,
    and are reached through the methods of the section "capabilities"."""

    def __init__(self, settings: ConnectionSettings, *, retry_total: int = 4, read_timeout: float = 60.0):
        self.settings = settings
        self._retry_total = retry_total
        self._read_timeout = read_timeout
        self._credential = make_credential(settings)
        self._session: aiohttp.ClientSession | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._counter = _RequestCounter()
        self._semaphore = asyncio.Semaphore(max(1, settings.max_concurrency))
        self._reduce_gate = asyncio.Lock()  # one inventory page reduced at a time (lists.raw_list)
        self.graph_gate = graph.QuotaGate()  # Resource Graph's quota is per user: one gate per identity

    # --- plumbing ---------------------------------------------------------------

    @property
    def identity(self) -> str:
        if self.settings.demo:
            return "demo operator"
        return {"none": "no sign-in", "default": "default credential"}.get(self.settings.auth, self.settings.auth)

    @property
    def requests(self) -> int:
        return self._counter.count

    def _tls(self) -> ssl.SSLContext | bool:
        """How the connector verifies the server: with a CA file, against that CA only (the
        emulator's); otherwise against the system's trust store, through the verifying
        context aiohttp made when it was imported (True). Making another one read the
        system's certificates again: 30-50 ms at every start, on the console's event
        loop."""
        if self.settings.ca_file:
            return ssl.create_default_context(cafile=self.settings.ca_file)
        return True

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._tls(), limit=64)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=not self.settings.arm_endpoint)
        return self._session

    def _policies(self, **kwargs: Any) -> list[Any]:
        # The SDK's default ARM pipeline, in its order, minus:
        # - ARMAutoResourceProviderRegistrationPolicy: on a 409 it would POST a provider
        #   registration, a write on a read path;
        # - the policies that act only when asked, which aztriage never does: CustomHookPolicy
        #   (raw_request_hook), NetworkTraceLoggingPolicy (logging_enable),
        #   DistributedTracingPolicy (a tracing plugin) and ARMHttpLoggingPolicy (the "azure"
        #   logger at INFO: tui.cli.setup_logging keeps it at WARNING). Each was a layer of
        #   the pipeline that every request went through: 741 requests in a 10,000-VM inventory;
        # RequestIdPolicy is _ClientRequestId.
        return [
            _ClientRequestId(**kwargs),
            HeadersPolicy(**kwargs),
            UserAgentPolicy(base_user_agent=USER_AGENT, **kwargs),
            ProxyPolicy(**kwargs),
            ContentDecodePolicy(**kwargs),
            AsyncRedirectPolicy(**kwargs),
            AsyncRetryPolicy(retry_total=self._retry_total, **kwargs),
            AsyncARMChallengeAuthenticationPolicy(self._credential, self.settings.scope),
            self._counter,
            SensitiveHeaderCleanupPolicy(**kwargs),
        ]

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "credential_scopes": [self.settings.scope],
            # The transport's own read timeout: a client-level read_timeout never reaches a transport passed in.
            "transport": AioHttpTransport(session=self._get_session(), session_owner=False, read_timeout=self._read_timeout),
            "policies": self._policies(),
            "read_timeout": self._read_timeout,
        }
        if self.settings.polling_interval is not None:
            kwargs["polling_interval"] = self.settings.polling_interval
        return kwargs

    def raw_client(self) -> Any:
        """One pipeline client for raw ARM reads (``lists.raw_list``, ``lists.raw_get``):
        the same policies, transport and request counter as the SDK clients, without
        importing or building a management client (their modules take about 0.6 s of
        CPU to import, which a headless inventory no longer pays)."""
        client = self._clients.get(("raw", ""))
        if client is None:
            client = self._clients[("raw", "")] = RawArmClient(self.settings.endpoint, **self._client_kwargs())
        return client

    def client(self, kind: str, subscription_id: str = "") -> Any:
        """One cached SDK client per (kind, subscription)."""
        key = (kind, subscription_id)
        client = self._clients.get(key)
        if client is not None:
            return client
        base_url = self.settings.endpoint
        cls: type[Any]
        if kind == "compute":
            from azure.mgmt.compute.aio import ComputeManagementClient as cls
        elif kind == "network":
            from azure.mgmt.network.aio import NetworkManagementClient as cls
        elif kind == "health":
            from azure.mgmt.resourcehealth.aio import ResourceHealthMgmtClient as cls
        elif kind == "resources":
            from azure.mgmt.resource.resources.aio import ResourceManagementClient as cls
        elif kind == "monitor":
            from azure.mgmt.monitor.aio import MonitorManagementClient as cls
        elif kind == "locks":
            from azure.mgmt.resource.locks.aio import ManagementLockClient as cls
        elif kind == "recoveryservices":
            from azure.mgmt.recoveryservices.aio import RecoveryServicesClient as cls
        elif kind == "recoveryservicesbackup":
            from azure.mgmt.recoveryservicesbackup.aio import RecoveryServicesBackupClient as cls
        elif kind == "subscriptions":
            from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

            client = SubscriptionClient(self._credential, base_url=base_url, **self._client_kwargs())
            self._clients[key] = client
            return client
        else:
            raise ValueError(f"unknown client kind {kind!r}")
        client = cls(self._credential, subscription_id, base_url=base_url, **self._client_kwargs())
        self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            try:
                await client.close()
            except Exception:  # closing is best effort
                log.debug("closing a client failed", exc_info=True)
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> AzureBackend:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK call, turning failures into a BackendError the operator can read."""
        try:
            return await make()
        except BackendError:
            raise
        except ResourceNotFoundError as exc:
            code, message = describe_error(exc)
            raise BackendError(f"{what}: {message}", code=code, status=404) from exc
        except (TimeoutError, HttpResponseError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError, aiohttp.ClientError, OSError) as exc:
            log.warning("%s failed", what, exc_info=True)
            code, message = describe_error(exc)
            raise BackendError(f"{what}: {message}", code=code, status=getattr(exc, "status_code", None)) from exc

    # --- reads ------------------------------------------------------------------

    async def list_subscriptions(self) -> list[Subscription]:
        async def fetch() -> list[Subscription]:
            pages = raw_list(self.raw_client(), None, SUBSCRIPTIONS_LIST)
            return [mapping.subscription(safe_json(s)) async for page in pages for s in page]

        return await self.call("listing subscriptions", fetch)

    async def _subscriptions_for(
        self, subscription_ids: list[str] | None, visible: Sequence[Subscription] | None = None
    ) -> tuple[list[Subscription], list[SubscriptionError]]:
        wanted = list(subscription_ids or self.settings.subscriptions)
        if visible is None:
            visible = await self.list_subscriptions()
        if not wanted:
            return [s for s in visible if s.state.lower() in ("enabled", "warned", "pastdue")], []
        by_id = {s.subscription_id.lower(): s for s in visible}
        chosen: list[Subscription] = []
        errors: list[SubscriptionError] = []
        for sub_id in wanted:
            sub = by_id.get(sub_id.lower())
            if sub is None:
                errors.append(SubscriptionError(sub_id, "SubscriptionNotFound", f"subscription {sub_id} is not visible to the signed-in identity"))
            else:
                chosen.append(sub)
        return chosen, errors

    async def _subscription_inventory(self, sub_id: str) -> Inventory:
        """One subscription's VMs from its lists, all fetched at once; each page is reduced as
        it arrives (``backend.azure.join``), the VM list's pages once the lookups are built."""
        lookups: asyncio.Future[join.Lookups] = asyncio.get_running_loop().create_future()

        async def read(name: str, reduce: Callable[[list[Any]], list[Any]], ready: Any = None) -> list[Any]:
            route = INVENTORY_LISTS[name]
            pages = raw_list(self.raw_client(), sub_id, route, reduce, ready=ready, gate=self._reduce_gate)
            return [item async for page in pages for item in page]

        async def build_lookups() -> None:
            try:
                reduced = await asyncio.gather(*(read(name, partial(join.reduce_page, name, sub_id)) for name in join.LOOKUP_LISTS))
                lookups.set_result(join.Lookups.build(sub_id, dict(zip(join.LOOKUP_LISTS, reduced))))
            except asyncio.CancelledError:
                lookups.cancel()
                raise
            except BaseException as exc:  # the VM list waiting on the lookups fails with it
                lookups.set_exception(exc)
                raise

        built, vms = await asyncio.gather(build_lookups(), read("vms", lambda items: lookups.result().vm_page(items), ready=lookups), return_exceptions=True)
        for outcome in (built, vms):
            if isinstance(outcome, BaseException):
                if lookups.done() and not lookups.cancelled():
                    lookups.exception()  # retrieved: the failure is raised here, once
                raise outcome
        return lookups.result().inventory(vms)

    async def inventory(
        self,
        subscription_ids: list[str] | None = None,
        *,
        instance_views: int | None = DEFAULT_INSTANCE_VIEWS,
        on_progress: Callable[[Inventory], None] | None = None,
        visible: Sequence[Subscription] | None = None,
        views_after_lists: bool = False,
    ) -> Inventory:
        """Every VM of the chosen subscriptions, joined from subscription-wide lists, or
        from Azure Resource Graph when ``settings.uses_graph`` says so for this many
        subscriptions (``graph_inventory``: the same inventory, ``engine`` "arg").

        The statusOnly list gives power and provisioning state only; the VM agent,
        pending maintenance and fault domains are in each VM's own instance view,
        one request per VM. At most ``instance_views`` of them are read (None: all,
        0: none), most useful first; the rest keep agent status "not checked". Each
        subscription starts reading its share of them (``instance_views.shares``) as
        soon as its own VM list is in; what a share leaves unused is read once every
        list is in, for the VMs ``instance_views.choose`` ranks first among the rest.
        With ``views_after_lists`` no instance view is read before every list is in: the
        console's first table waits for the lists alone (500 instance views read meanwhile
        took about a fifth of the CPU the console spent before showing 10,000 VMs,
        `benchmarks/launch.py`); their facts show "…" until read.

        ``on_progress`` (optional) is called with the inventory so far each time a
        subscription's lists are joined and once more when every list is in; its
        ``views_pending`` names the VMs whose instance view is still being read.
        ``visible``: the subscriptions the caller has just listed (not listed again).

        The cyclic collector is paused meanwhile (see ``backend.gcpause``): the
        parsed documents hold no cycles and collecting them was half the time."""
        with gc_paused():
            return await self._inventory(subscription_ids, instance_views, on_progress, visible, views_after_lists)

    async def _inventory(
        self,
        subscription_ids: list[str] | None,
        instance_views: int | None,
        on_progress: Callable[[Inventory], None] | None,
        visible: Sequence[Subscription] | None = None,
        views_after_lists: bool = False,
    ) -> Inventory:
        from backend.azure.instance_views import CONCURRENCY, read_instance_views
        from backend.instance_views import shares

        started = time.perf_counter()
        before = self.requests
        subs, errors = await self._subscriptions_for(subscription_ids, visible)
        use_graph = self.settings.uses_graph(len(subs))
        warnings: list[str] = []
        share = {} if instance_views is None else shares((s.subscription_id for s in subs), instance_views)
        view_gate = asyncio.Semaphore(CONCURRENCY)
        view_reads: list[asyncio.Task] = []
        impacted_by_sub: dict[str, asyncio.Task] = {}  # per subscription, once its events are in
        chosen: set[str] = set()  # lower-case ids of the VMs whose view is read (or being read)
        parts: dict[int, Inventory | SubscriptionError] = {}  # by the subscription's position in subs

        held: list[list[Vm]] = []  # views_after_lists: chosen, read once every list is in

        def read_views(vms: list[Vm], *, now: bool = False) -> None:
            if vms:
                chosen.update(vm.id.lower() for vm in vms)
                if views_after_lists and not now:
                    held.append(vms)
                else:
                    view_reads.append(asyncio.ensure_future(read_instance_views(self, vms, semaphore=view_gate)))

        def progress(read: dict[str, Vm] | None = None) -> None:
            if on_progress is not None:
                on_progress(_combine(subs, errors, parts, read or {}, frozenset(chosen), requests=self.requests - before, started=started))

        graph_batches: list[asyncio.Task] = []
        graph_parts = self._graph_parts(subs, warnings, graph_batches) if use_graph else {}

        async def read_part(sub: Subscription) -> Inventory | SubscriptionError:
            if use_graph:
                return await graph_parts[sub.subscription_id]
            async with self._semaphore:
                try:
                    return await self._subscription_inventory(sub.subscription_id)
                except (
                    TimeoutError,
                    HttpResponseError,
                    ClientAuthenticationError,
                    ServiceRequestError,
                    ServiceResponseError,
                    aiohttp.ClientError,
                    OSError,
                ) as exc:
                    log.warning("inventory of subscription %s failed", sub.subscription_id, exc_info=True)
                    code, message = describe_error(exc)
                    return SubscriptionError(sub.subscription_id, code, message)

        async def one(position: int, sub: Subscription) -> None:
            part = await read_part(sub)
            if isinstance(part, Inventory) and part.events:
                # Resource Graph brought the impacted resources with the events; the ARM engine reads them
                found = _given(part.impacted) if use_graph else self.impacted_resources(part.events)
                impacted_by_sub[sub.subscription_id] = asyncio.ensure_future(found)
            if isinstance(part, Inventory) and instance_views != 0:
                vms = sorted(part.vms, key=_vm_order)
                part = dataclasses.replace(part, vms=tuple(vms))
                read_views(choose(part, share.get(sub.subscription_id.lower())))
            parts[position] = part
            progress()

        try:
            await asyncio.gather(*(one(n, s) for n, s in enumerate(subs)))
            for vms in held:
                read_views(vms, now=True)
            if instance_views is not None and instance_views > len(chosen):
                everything = _combine(subs, errors, parts, {}, frozenset(), requests=0, started=started)
                rest = [vm for vm in choose(everything, None) if vm.id.lower() not in chosen][: instance_views - len(chosen)]
                read_views(rest, now=True)
                if rest:
                    progress()
            read: dict[str, Vm] = {}
            for views, failed in await asyncio.gather(*view_reads):
                read.update(views)
                for vm_id, message in failed.items():
                    log.info("instance view not read for %s: %s", vm_id, message)
            impacted: dict[str, tuple[str, ...]] = {}
            # Joined in subscription order, as one sorted read of them all would be.
            for found in await asyncio.gather(*(impacted_by_sub[k] for k in sorted(impacted_by_sub))):
                for tracking_id, targets in found.items():
                    impacted[tracking_id] = tuple(dict.fromkeys((*impacted.get(tracking_id, ()), *targets)))
        finally:
            for task in (*view_reads, *impacted_by_sub.values(), *graph_batches):
                task.cancel()
        inv = _combine(subs, errors, parts, read, frozenset(), requests=self.requests - before, started=started)
        engine = "arg" if use_graph else "arm"
        return dataclasses.replace(inv, impacted=impacted, fetched_at=datetime.now(UTC), engine=engine, warnings=tuple(dict.fromkeys(warnings)))

    def _graph_parts(
        self, subs: list[Subscription], warnings: list[str], tasks: list[asyncio.Task]
    ) -> dict[str, asyncio.Future[Inventory | SubscriptionError]]:
        """Each subscription's part, as its Resource Graph batch delivers it: batches of
        ``graph_inventory.BATCH`` subscriptions, ``CONCURRENT_BATCHES`` of them at a time
        (staggered over the quota's windows, as Microsoft advises for large tenants)."""
        from backend.azure import graph_inventory

        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Inventory | SubscriptionError]] = {s.subscription_id: loop.create_future() for s in subs}
        gate = asyncio.Semaphore(graph_inventory.CONCURRENT_BATCHES)

        async def batch(ids: list[str]) -> None:
            async with gate:
                outcome = await graph_inventory.read_batch(self, ids)
            warnings.extend(outcome.warnings)
            for sub_id, part in outcome.parts.items():
                if not futures[sub_id].done():
                    futures[sub_id].set_result(part)

        tasks.extend(asyncio.ensure_future(batch(ids)) for ids in graph_inventory.batches([s.subscription_id for s in subs]))

        def failed(task: asyncio.Task) -> None:
            if task.cancelled() or task.exception() is None:
                return
            for future in futures.values():
                if not future.done():
                    future.set_exception(task.exception() or RuntimeError("a Resource Graph batch failed"))

        for task in tasks:
            task.add_done_callback(failed)
        return futures

    async def impacted_resources(self, events: Iterable[ServiceEvent]) -> dict[str, tuple[str, ...]]:
        """The resources each active service issue lists as impacted (Resource Health
        events/{trackingId}/impactedResources), joined over the subscriptions that report it:
        tracking id (lower) -> resource ids. One request per active issue and subscription; an
        issue whose list cannot be read is left out (the verdict then goes by region)."""
        wanted = {(e.subscription_id, e.id) for e in events if e.status.lower() == "active" and e.type.lower() == "serviceissue"}

        async def one(sub_id: str, tracking_id: str) -> tuple[str, list[str]] | None:
            route = ListRoute("health", f"/providers/Microsoft.ResourceHealth/events/{quote(tracking_id, safe='')}/impactedResources", "2025-05-01")
            try:
                pages = raw_list(self.raw_client(), sub_id, route)
                items = [item async for page in pages for item in page]
            except (TimeoutError, HttpResponseError, ServiceRequestError, ServiceResponseError, aiohttp.ClientError, OSError):
                log.warning("the impacted resources of event %s could not be read", tracking_id, exc_info=True)
                return None
            return tracking_id.lower(), [t for t in (mapping.impacted_target(i) for i in items) if t]

        found: dict[str, list[str]] = {}
        for result in await asyncio.gather(*(one(s, t) for s, t in sorted(wanted))):
            if result is not None:
                found.setdefault(result[0], []).extend(result[1])
        return {k: tuple(dict.fromkeys(v)) for k, v in found.items()}

    # --- capabilities (backend.adapter) ------------------------------------------------

    async def read_instance_views(self, vms: Iterable[Vm], *, concurrency: int = instance_views.CONCURRENCY) -> tuple[dict[str, Vm], dict[str, str]]:
        return await instance_views.read_instance_views(self, vms, concurrency=concurrency)

    async def health_history(self, resource_id: str, *, limit: int = 50) -> list[HealthStatus]:
        return await history.health_history(self, resource_id, limit=limit)

    # The module's function takes the backend first: as a class attribute it is the method itself.
    activity_log = activity.activity_log

    async def check_connectivity(self, source: Vm, port: int, *, destination: Vm | None = None, address: str | None = None) -> ConnectivityCheck:
        from backend.azure import network_ops

        return await network_ops.check_connectivity(self, source, port, destination=destination, address=address)

    async def private_path(self, vm: Vm) -> PrivatePath:
        from backend.azure import network_ops

        return await network_ops.private_path(self, vm)

    async def vm_runtime(self, vm: Vm) -> tuple[str, Maintenance]:
        from backend.azure import network_ops

        return await network_ops.vm_runtime(self, vm)

    async def boot_diagnostics(self, vm: Vm, *, serial_log: bool = True, screenshot: bool = True) -> BootDiagnosticsData:
        return await bootdiag.for_vm(self, vm, serial_log=serial_log, screenshot=screenshot)

    async def enable_boot_diagnostics(self, vm_id: str, **lro: Any) -> dict[str, Any]:
        return await bootdiag.enable(self, vm_id, **lro)

    async def storage_account(self, subscription_id: str, resource_group: str, name: str) -> StorageAccount | None:
        return await serial.storage_account(self, subscription_id, resource_group, name)

    async def serial_preflight(self, vm_id: str) -> SerialTarget:
        return await serial.preflight(self, vm_id)

    async def serial_connect(self, vm_id: str) -> SerialStream:
        return await serial.connect(self, vm_id)

    async def graph_query(
        self,
        query: str,
        *,
        subscriptions: Sequence[str] | None = None,
        management_groups: Sequence[str] | None = None,
        page_size: int = graph.MAX_PAGE,
        max_rows: int | None = None,
    ) -> GraphResult:
        return await self.call(
            "querying Azure Resource Graph",
            lambda: graph.query(self, query, subscriptions=subscriptions, management_groups=management_groups, page_size=page_size, max_rows=max_rows),
        )

    async def graph_vms(self, vm_ids: Sequence[str]) -> Inventory:
        """These VMs read whole through Resource Graph (``graph_inventory.read_vms``): an
        inventory of them alone, with the lookups their panes need."""
        from backend.azure import graph_inventory

        started = time.perf_counter()
        before = self.requests
        parts = await graph_inventory.read_vms(self, vm_ids)
        visible = {s.subscription_id.lower(): s for s in await self.list_subscriptions()} if parts else {}
        subs = [visible.get(sub.lower()) or Subscription(sub, sub) for sub in parts]
        inv = _combine(subs, [], {n: parts[s] for n, s in enumerate(parts)}, {}, frozenset(), requests=self.requests - before, started=started)
        impacted = {k: v for part in parts.values() for k, v in part.impacted.items()}
        return dataclasses.replace(inv, impacted=impacted, fetched_at=datetime.now(UTC), engine="arg")

    async def inventory_usages(self, inv: Inventory) -> tuple[dict[UsageKey, tuple[ComputeUsage, ...]], dict[UsageKey, str]]:
        from backend.azure import quota

        return await quota.inventory_usages(self, inv)


async def _given(value: T) -> T:
    return value


def _vm_order(vm: Vm) -> tuple[str, str, str]:
    return (vm.subscription_id, vm.resource_group.lower(), vm.name.lower())


def _combine(
    subs: list[Subscription],
    errors: list[SubscriptionError],
    parts: dict[int, Inventory | SubscriptionError],
    read: dict[str, Vm],
    pending: frozenset[str],
    *,
    requests: int,
    started: float,
) -> Inventory:
    """The subscriptions' parts as one inventory, VMs in (subscription, group, name) order,
    each replaced by its enriched copy in ``read`` where there is one."""
    vms: list[Vm] = []
    events: list[ServiceEvent] = []
    nsgs: dict[str, Any] = {}
    lbs: dict[str, Any] = {}
    pips_all: dict[str, PublicIp] = {}
    avsets: dict[str, Any] = {}
    failed = list(errors)
    for _, part in sorted(parts.items()):
        if isinstance(part, SubscriptionError):
            failed.append(part)
            continue
        vms.extend(part.vms)
        events.extend(part.events)
        nsgs.update(part.nsgs)
        lbs.update(part.load_balancers)
        pips_all.update(part.public_ips)
        avsets.update(part.availability_sets)
    vms.sort(key=_vm_order)
    if read:
        vms = [read.get(vm.id.lower(), vm) for vm in vms]
    return Inventory(
        subscriptions=tuple(subs),
        vms=tuple(vms),
        errors=tuple(failed),
        events=tuple(events),
        nsgs=nsgs,
        load_balancers=lbs,
        public_ips=pips_all,
        availability_sets=avsets,
        requests=requests,
        elapsed_s=time.perf_counter() - started,
        views_pending=pending.difference(read),
        lists_pending=len(subs) - len(parts),
    )
