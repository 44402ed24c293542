"""Azure Resource Graph, as the emulator serves it over its own store:
``POST /providers/Microsoft.ResourceGraph/resources``.

The request and response shapes are ARG's (``QueryRequest`` / ``QueryResponse``
of api-versions 2021-03-01 and 2024-04-01): ``{subscriptions?, managementGroups?,
query, options: {resultFormat, $top, $skip, $skipToken}}`` in,
``{totalRecords, count, resultTruncated, $skipToken?, data}`` out, ``data`` an
object array or a table. The query runs on ``kql`` (a small, documented subset
of KQL); one it cannot read is answered with ARG's 400 ``BadRequest`` /
``InvalidQuery`` shape, naming what the subset lacks.

Paging, as ARG documents it: at most 1,000 rows per page; a ``$skipToken``
comes back while rows remain, unless the query uses ``take``/``limit`` or
``summarize`` or its rows have no ``id`` column: then the rest is cut and
``resultTruncated`` is ``"true"``. The token is only good for the same query
and scopes. A query without ``order by`` gets its rows in a different order on
every page (as ARG's distributed engine may), so a client that pages without
sorting by ``id`` sees rows repeat and go missing, as it would in Azure.

Throttling: each request costs one unit of a per-caller quota (by default
Microsoft's documented example, 15 queries per 5-second window); every answer
carries ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``
(``hh:mm:ss``), and a request past the quota gets 429 ``RateLimiting`` with
``Retry-After``. A tenant or management-group scope covers only the first
``subscription_limit`` (10,000) subscriptions, and then says so with
``x-ms-tenant-subscription-limit-hit: true``. A test can make it cut every answer
after N rows (``Emulator(graph_truncate_after=N)``), as ARG does when it truncates.

Tables: ``resources`` (every resource but Uniform scale-set instances; VMs carry
``properties.extended.instanceView.powerState``), ``computeresources`` (the
instances of Uniform scale sets, ``microsoft.compute/virtualmachinescalesets/
virtualmachines``, and their NICs), ``healthresources`` (availability statuses, with
``properties.targetResourceId``), ``servicehealthresources`` (service events and
their impacted resources; an event's properties PascalCase, as ARG gives them:
``EventType``, ``Status``, ``Title``, ``Impact``...), ``maintenanceresources``
(``microsoft.maintenance/updates``, one per VM with platform maintenance pending: id
``<vm id>/providers/Microsoft.Maintenance/updates``, ``properties.value[]`` the updates as
the Maintenance RP lists them: ``maintenanceScope`` Host, ``impactType`` Restart,
``status`` Pending or InProgress (inside the maintenance window), ``impactDurationInSec``,
``notBefore`` (the maintenance window's start), ``resourceId``). Columns are ARG's: ``id, name, type`` (lower case),
``tenantId, kind, location, resourceGroup`` (lower case), ``subscriptionId,
managedBy, sku, plan, properties, tags, identity, zones, extendedLocation``.
Other tables answer as empty.

Rows are built once per subscription and type and again only after one of those
resources changed (the store's list version), and a first ``where type =~ 'X'`` reads
only that type (``kql.TableSource``), as ARG's index would: a name search of a
100,000-VM tenant does not build half a million rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from . import compute
from .ids import parse_id
from .kql import KqlError, Row, output_columns, run

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store

PATH = "/providers/Microsoft.ResourceGraph/resources"
API_VERSIONS = ("2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01")
MAX_TOP = 1000
SUBSCRIPTION_LIMIT = 10_000
DEFAULT_QUOTA = (15, 5.0)  # Microsoft's documented example: 15 queries per 5 seconds per user
VM_TYPE = "microsoft.compute/virtualmachines"
UNIFORM_INSTANCE = "microsoft.compute/virtualmachinescalesets/virtualmachines"
MAINTENANCE_UPDATES = "microsoft.maintenance/updates"
GRAPH_KEY: web.AppKey[Graph] = web.AppKey("aztriage_graph")


class Quota:
    """A fixed window of ``limit`` queries per ``window_s`` seconds, per caller."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = max(1, int(limit))
        self.window_s = max(0.001, float(window_s))
        self._windows: dict[str, tuple[float, int]] = {}

    def take(self, caller: str, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining after this request, seconds until the window resets)."""
        start, used = self._windows.get(caller, (now, 0))
        if now - start >= self.window_s:
            start, used = now, 0
        resets = max(0.0, start + self.window_s - now)
        if used >= self.limit:
            self._windows[caller] = (start, used)
            return False, 0, resets
        used += 1
        self._windows[caller] = (start, used)
        return True, self.limit - used, resets


def resets_after(seconds: float) -> str:
    """``hh:mm:ss`` as ARG writes it (rounded up: waiting that long always suffices)."""
    whole = math.ceil(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Graph:
    """The ARG endpoint's state: quota, the scope limit, and recent results for paging."""

    def __init__(
        self, store: Store, *, quota: tuple[int, float] = DEFAULT_QUOTA, subscription_limit: int = SUBSCRIPTION_LIMIT, truncate_after: int | None = None
    ) -> None:
        self.store = store
        self.truncate_after = truncate_after
        self.quota = Quota(*quota)
        self.subscription_limit = subscription_limit
        self._results: OrderedDict[str, tuple[list[Row], bool, bool]] = OrderedDict()
        self._rows_by_type: dict[tuple[str, str], tuple[int, list[Row]]] = {}
        # a join's right side: (text, scope) -> (the store versions it was read at, its rows)
        self._subqueries: OrderedDict[tuple[str, tuple[str, ...]], tuple[tuple[tuple[tuple, int], ...], list[Row]]] = OrderedDict()
        self._recorders: list[set[tuple] | None] = []  # what the subqueries being run read (None: a read no version covers)
        self._health_rows: dict[str, tuple[dict, str, Row]] = {}
        self._maintained_by_sub: dict[str, tuple[int, list[str]]] = {}
        self._event_rows: dict[tuple[str, str], tuple[dict, Row]] = {}

    # ------------------------------------------------------------------ scope
    def scope(self, body: dict) -> tuple[list[str], bool]:
        """(subscription ids in scope, whether the tenant subscription limit cut it)."""
        store = self.store
        subs = body.get("subscriptions")
        groups = body.get("managementGroups")
        if subs:
            return [s["subscriptionId"] for s in (store.subscriptions.get(str(x).lower()) for x in subs) if s], False
        every = sorted(store.subscriptions.values(), key=lambda s: s["subscriptionId"].lower())
        if groups:
            wanted = {str(g).lower() for g in groups}
            configured = {k.lower(): {x.lower() for x in v} for k, v in ((store._estate or {}).get("managementGroups") or {}).items()}
            chosen = []
            for s in every:
                sub_l = s["subscriptionId"].lower()
                # The tenant root group (named by the tenant id) holds every subscription.
                if str(s.get("tenantId") or "").lower() in wanted or any(sub_l in configured.get(g, ()) for g in wanted):
                    chosen.append(s)
            every = chosen
        hit = len(every) > self.subscription_limit
        return [s["subscriptionId"] for s in every[: self.subscription_limit]], hit

    # ------------------------------------------------------------------ tables
    def tables(self, subscriptions: list[str]) -> Any:
        store = self.store
        wanted = {s.lower(): s for s in subscriptions}
        tenants = {k: (v.get("tenantId") or "") for k, v in store.subscriptions.items()}

        def resources(uniform: bool, types: frozenset[str] | None) -> Iterator[Row]:
            # With the types known, every (subscription, type) pair is read, one without
            # resources too: its version says when the first one appears.
            keys = [(sub_l, type_l) for sub_l in wanted for type_l in sorted(types)] if types is not None else list(store._by_type)
            if types is None:
                self._record(None)
            for sub_l, type_l in keys:
                if sub_l not in wanted or (types is not None and type_l not in types) or type_l.startswith(UNIFORM_INSTANCE) != uniform:
                    continue
                self._record((sub_l, type_l))
                yield from self._type_rows(sub_l, type_l, wanted[sub_l], tenants.get(sub_l, ""))

        def health() -> Iterator[Row]:
            for sub_l, sub in wanted.items():
                self._record((sub_l, "#rh"))
                for res_l in store.status_ids(sub_l):
                    doc = store.statuses.get(res_l)
                    if doc is None:
                        continue
                    cached = self._health_rows.get(res_l)
                    if cached is not None and cached[0] is doc and cached[1] == sub:
                        yield cached[2]
                        continue
                    target = doc["id"].split("/providers/Microsoft.ResourceHealth/", 1)[0] if "/providers/Microsoft.ResourceHealth/" in doc["id"] else doc["id"]
                    meta = store.meta(target.lower())
                    props = dict(doc.get("properties") or {})
                    props.setdefault("targetResourceId", target)
                    props.setdefault("targetResourceType", (store.resources.get(target.lower()) or {}).get("type") or (meta[2] if meta else ""))
                    row = {
                        "id": doc["id"],
                        "name": doc.get("name") or "current",
                        "type": "microsoft.resourcehealth/availabilitystatuses",
                        "tenantId": tenants.get(sub_l, ""),
                        "location": doc.get("location") or "",
                        "resourceGroup": meta[1] if meta else _group_of(target),
                        "subscriptionId": sub,
                        "properties": props,
                    }
                    self._health_rows[res_l] = (doc, sub, row)
                    yield row

        def maintenance() -> Iterator[Row]:
            # microsoft.maintenance/updates: one row per VM with platform maintenance pending
            # (its instance view's maintenanceRedeployStatus, not yet completed).
            for sub_l, sub in wanted.items():
                for vm_l in self._maintained(sub_l):
                    row = self._maintenance_row(vm_l, sub, tenants.get(sub_l, ""))
                    if row is not None:
                        yield row

        def service_health() -> Iterator[Row]:
            for sub_l, sub in wanted.items():
                for event in store.events_of(sub_l):
                    tracking = event.get("name") or str(event.get("id", "")).rsplit("/", 1)[-1]
                    event_id = f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/events/{tracking}"
                    kept = self._event_rows.get((sub_l, event_id))
                    if kept is None or kept[0] is not event:  # an event changes by being replaced
                        kept = (
                            event,
                            {
                                "id": event_id,
                                "name": tracking,
                                "type": "microsoft.resourcehealth/events",
                                "tenantId": tenants.get(sub_l, ""),
                                "location": "global",
                                "resourceGroup": "",
                                "subscriptionId": sub,
                                "properties": _pascal(event.get("properties") or {}),  # ARG writes these keys PascalCase
                            },
                        )
                        self._event_rows[(sub_l, event_id)] = kept
                    yield kept[1]
                    for target in store.impacted_resources(tracking):
                        try:
                            if parse_id(target).subscription.lower() != sub_l:
                                continue
                        except ValueError:
                            continue
                        name = uuid.uuid5(uuid.NAMESPACE_URL, f"{tracking}|{target.lower()}").hex
                        yield {
                            "id": f"{event_id}/impactedResources/{name}",
                            "name": name,
                            "type": "microsoft.resourcehealth/events/impactedresources",
                            "tenantId": tenants.get(sub_l, ""),
                            "location": "global",
                            "resourceGroup": "",
                            "subscriptionId": sub,
                            "properties": {"targetResourceId": target, "targetRegion": store.location_of(target), "trackingId": tracking},
                        }

        def changes() -> Iterator[Row]:
            # resourcechanges keeps 14 days (on the estate's clock)
            oldest = store.estate_now() - 14 * 86400
            for change in store.resource_changes:
                sub_l = str(change.get("subscriptionId") or "").lower()
                if sub_l not in wanted:
                    continue
                stamp = ((change.get("properties") or {}).get("changeAttributes") or {}).get("timestamp")
                if _epoch(stamp) < oldest:
                    continue
                yield dict(change, subscriptionId=wanted[sub_l], tenantId=tenants.get(sub_l, ""))

        def source(name: str, types: frozenset[str] | None = None) -> Iterable[Row]:
            if name not in ("resources", "computeresources", "healthresources"):
                self._record(None)  # events, changes, maintenance: no version says when they change
            if name == "resources":
                return resources(False, types)
            if name == "computeresources":
                return resources(True, types)
            if name == "healthresources":
                return health()
            if name == "maintenanceresources":
                return maintenance() if types is None or MAINTENANCE_UPDATES in types else ()
            if name == "servicehealthresources":
                return service_health()
            if name == "resourcechanges":
                return changes()
            if name in ("resourcecontainers", "advisorresources", "healthresourcechanges"):
                return ()
            raise KqlError(f"the table {name!r} is not served by the emulator", name)

        return source

    def _record(self, key: tuple | None) -> None:
        for i, reads in enumerate(self._recorders):
            if reads is not None:
                if key is None:
                    self._recorders[i] = None
                else:
                    reads.add(key)

    def subquery(self, scope: tuple[str, ...], text: str, compute: Any) -> list[Row]:
        """A join's right side, run again only after what it read changed (``kql.SubqueryCache``):
        Microsoft's samples join every VM's row to a handful, and at 100,000 VMs projecting them
        all again for each query is most of the emulator's time."""
        versions = self.store._versions
        key = (text, scope)
        hit = self._subqueries.get(key)
        if hit is not None and all(versions.get(k, 0) == v for k, v in hit[0]):
            self._subqueries.move_to_end(key)
            for read, _ in hit[0]:  # what kept it holds for whatever is kept around it too
                self._record(read)
            return hit[1]
        self._recorders.append(set())
        try:
            rows = compute()
        finally:
            reads = self._recorders.pop()
        if reads is not None:
            self._subqueries[key] = (tuple((k, versions.get(k, 0)) for k in reads), rows)
            while len(self._subqueries) > 64:
                self._subqueries.popitem(last=False)
        return rows

    def _type_rows(self, sub_l: str, type_l: str, sub: str, tenant: str) -> list[Row]:
        """The rows of one subscription's resources of one type, built again only after one
        of them changed (the store's list version): a 100,000-VM estate is not rebuilt per query."""
        cached = self._rows_by_type.get((sub_l, type_l))
        if cached is not None and cached[0] == self.store._versions.get((sub_l, type_l), 0):
            return cached[1]
        rows = []
        for rid_l in list(self.store._by_type.get((sub_l, type_l), ())):
            doc = self.store.resources.get(rid_l)
            if doc is not None:
                rows.append(self._resource_row(rid_l, doc, type_l, sub, tenant))
        # read after building: a first read of an instance view may itself bump the version
        self._rows_by_type[(sub_l, type_l)] = (self.store._versions.get((sub_l, type_l), 0), rows)
        return rows

    def _maintained(self, sub_l: str) -> list[str]:
        """The subscription's VMs whose instance view holds a maintenance status, found again
        only after one of its VMs changed."""
        version = self.store._versions.get((sub_l, VM_TYPE), 0)
        cached = self._maintained_by_sub.get(sub_l)
        if cached is not None and cached[0] == version:
            return cached[1]
        vms = [vm_l for vm_l in list(self.store._by_type.get((sub_l, VM_TYPE), ())) if self.store.peek_instance_view(vm_l).get("maintenanceRedeployStatus")]
        self._maintained_by_sub[sub_l] = (self.store._versions.get((sub_l, VM_TYPE), 0), vms)
        return vms

    def _maintenance_row(self, vm_l: str, sub: str, tenant: str) -> Row | None:
        doc = self.store.resources.get(vm_l)
        view = self.store.peek_instance_view(vm_l) if doc is not None else {}
        status = view.get("maintenanceRedeployStatus") or {}
        if not status or status.get("lastOperationResultCode") == "MaintenanceCompleted":
            return None
        assert doc is not None
        now = self.store.estate_now()
        starts = _epoch(status.get("maintenanceWindowStartTime"))
        ends = _epoch(status.get("maintenanceWindowEndTime"))
        if ends and now >= ends:
            return None  # the window is over: Azure did it
        meta = self.store.meta(vm_l)
        update = {
            "maintenanceScope": "Host",
            "impactType": "Restart",  # maintenance that needs a reboot, the kind the self-service window is for
            "status": "InProgress" if starts and now >= starts else "Pending",
            "impactDurationInSec": 30,
            "notBefore": status.get("maintenanceWindowStartTime"),
            "resourceId": doc["id"],
        }
        return {
            "id": f"{doc['id']}/providers/Microsoft.Maintenance/updates",
            "name": "updates",
            "type": MAINTENANCE_UPDATES,
            "tenantId": tenant,
            "kind": "",
            "location": doc.get("location") or "",
            "resourceGroup": meta[1] if meta else "",
            "subscriptionId": sub,
            "properties": {"value": [update]},
        }

    def _resource_row(self, rid_l: str, doc: dict, type_l: str, sub: str, tenant: str) -> Row:
        props = doc.get("properties") or {}
        if type_l in (VM_TYPE, UNIFORM_INSTANCE):
            view = self.store.peek_instance_view(rid_l) if type_l == VM_TYPE else (props.get("instanceView") or {})
            power = compute.power_of(view) if view else ""
            props = dict(props)
            props.pop("instanceView", None)
            if power:
                code = f"PowerState/{power}"
                display = next((s.get("displayStatus") for s in view.get("statuses") or () if str(s.get("code", "")).lower() == code.lower()), None)
                props["extended"] = {"instanceView": {"powerState": {"code": code, "level": "Info", "displayStatus": display or f"VM {power}"}}}
        meta = self.store.meta(rid_l)
        return {
            "id": doc["id"],
            "name": doc.get("name") or "",
            "type": type_l,
            "tenantId": tenant,
            "kind": doc.get("kind") or "",
            "location": doc.get("location") or "",
            "resourceGroup": meta[1] if meta else "",
            "subscriptionId": sub,
            "managedBy": doc.get("managedBy") or "",
            "sku": doc.get("sku"),
            "plan": doc.get("plan"),
            "properties": props,
            "tags": doc.get("tags"),
            "identity": doc.get("identity"),
            "zones": doc.get("zones"),
            "extendedLocation": doc.get("extendedLocation"),
        }

    # ------------------------------------------------------------------ query
    def answer(self, body: dict) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body, extra headers) for one query request (the quota is taken by the caller)."""
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return _bad_request("The request must contain a query.", "InvalidQuery")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return _bad_request("options must be an object.", "InvalidQueryOptions")
        top = options.get("$top", MAX_TOP)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            return _bad_request(f"The $top option must be a whole number from 1 to {MAX_TOP}.", "InvalidQueryOptions")
        skip = options.get("$skip", 0) or 0
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            return _bad_request("The $skip option must be a whole number of at least 0.", "InvalidQueryOptions")
        result_format = str(options.get("resultFormat") or "objectArray")
        if result_format.lower() not in ("objectarray", "table"):
            return _bad_request("resultFormat must be table or objectArray.", "InvalidQueryOptions")
        subs, limit_hit = self.scope(body)
        key = hashlib.sha256(json.dumps([query, sorted(s.lower() for s in subs)]).encode()).hexdigest()[:16]
        token = options.get("$skipToken")
        page = 0
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
                if decoded["q"] != key:
                    raise ValueError("another query")
                skip, page = int(decoded["o"]), int(decoded["p"])
            except (ValueError, KeyError, TypeError):
                return _bad_request(
                    "The $skipToken is not valid for this query and these scopes: send it with the same query and scopes it came with.", "InvalidSkipToken"
                )
        try:
            rows, _ordered, limited = self._rows(key, query, subs, page, fresh=not token)
        except KqlError as exc:
            return _bad_request(str(exc), "ParserFailure", token=exc.token)
        total = len(rows)
        cut = self.truncate_after is not None and total > self.truncate_after
        if cut:
            rows, limited = rows[: self.truncate_after], True  # ARG cut the answer (a test's fault)
        chunk = rows[skip : skip + top]
        more = skip + top < total
        pageable = not limited and (not rows or "id" in rows[0])
        out: dict[str, Any] = {"totalRecords": total, "count": len(chunk), "resultTruncated": "true" if cut or (more and not pageable) else "false"}
        if more and pageable:
            out["$skipToken"] = base64.urlsafe_b64encode(json.dumps({"q": key, "o": skip + top, "p": page + 1}).encode()).decode()
        if result_format.lower() == "table":
            columns = output_columns(chunk)
            out["data"] = {"columns": [{"name": c, "type": _column_type(chunk, c)} for c in columns], "rows": [[r.get(c) for c in columns] for r in chunk]}
        else:
            out["data"] = chunk
        out["facets"] = []
        headers = {"x-ms-tenant-subscription-limit-hit": "true"} if limit_hit else {}
        return 200, out, headers

    def _rows(self, key: str, query: str, subs: list[str], page: int, *, fresh: bool) -> tuple[list[Row], bool, bool]:
        cached = None if fresh else self._results.get(key)
        if cached is None:
            scope = tuple(s.lower() for s in subs)
            result = run(query, self.tables(subs), subqueries=lambda text, compute: self.subquery(scope, text, compute))
            cached = (result.rows, result.ordered, result.limited)
            self._results[key] = cached
            self._results.move_to_end(key)
            while len(self._results) > 16:
                self._results.popitem(last=False)
        rows, ordered, limited = cached
        if not ordered and page and rows:
            # Without an order, each page may see the rows in another order (ARG's
            # distributed engine): rotating by page makes a careless client notice.
            turn = (page * 7919) % len(rows)
            rows = rows[turn:] + rows[:turn]
        return rows, ordered, limited


def _epoch(stamp: Any) -> float:
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _pascal(value: Any) -> Any:
    """Resource Health's event properties as servicehealthresources holds them: EventType, Status, Title, Impact, ..."""
    if isinstance(value, dict):
        return {(k[:1].upper() + k[1:]): _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _group_of(resource_id: str) -> str:
    try:
        return parse_id(resource_id).resource_group.lower()
    except ValueError:
        return ""


def _column_type(rows: list[Row], column: str) -> str:
    for r in rows:
        v = r.get(column)
        if v is None:
            continue
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"
        if isinstance(v, float):
            return "number"
        if isinstance(v, (dict, list)):
            return "object"
        return "string"
    return "string"


def _bad_request(message: str, code: str, token: str = "") -> tuple[int, dict, dict[str, str]]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if token:
        detail["token"] = token
    body = {
        "error": {
            "code": "BadRequest",
            "message": f"Please provide below info when asking for support: timestamp = {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, correlationId = {uuid.uuid4()}.",
            "details": [
                {
                    "code": "InvalidQuery",
                    "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying.",
                },
                detail,
            ],
        }
    }
    return 400, body, {}


async def _query(request: web.Request) -> web.StreamResponse:
    graph: Graph = request.app[GRAPH_KEY]
    caller = request.headers.get("Authorization", "")
    allowed, remaining, resets = graph.quota.take(caller, time.monotonic())
    headers = {"x-ms-user-quota-remaining": str(remaining), "x-ms-user-quota-resets-after": resets_after(resets)}
    if request.query.get("api-version") not in API_VERSIONS:
        body = {
            "error": {
                "code": "InvalidApiVersionParameter",
                "message": f"The api-version '{request.query.get('api-version', '')}' is invalid. The supported versions are '{', '.join(API_VERSIONS)}'.",
            }
        }
        return web.Response(status=400, body=orjson.dumps(body), content_type="application/json", headers=headers)
    if not allowed:
        headers["Retry-After"] = str(max(1, math.ceil(resets)))
        body = {
            "error": {
                "code": "RateLimiting",
                "message": f"Please provide below info when asking for support: timestamp = {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, correlationId = {uuid.uuid4()}. "
                "Details: Too many requests. Please retry after the quota resets.",
            }
        }
        return web.Response(status=429, body=orjson.dumps(body), content_type="application/json", headers=headers)
    try:
        query: Any = json.loads(await request.read() or b"null")
    except ValueError:
        query = None
    if not isinstance(query, dict):
        status, out, extra = _bad_request("The request body must be a JSON object.", "InvalidRequestContent")
    else:
        status, out, extra = graph.answer(query)
    headers.update(extra)
    return web.Response(status=status, body=orjson.dumps(out), content_type="application/json", headers=headers)


def graph_routes(app: web.Application, store: Store) -> None:
    """The route extension (registered by server.py with Emulator.add_routes)."""
    from .server import EMULATOR_KEY, READ_PATHS

    emulator = app.get(EMULATOR_KEY)
    quota = getattr(emulator, "graph_quota", None) or DEFAULT_QUOTA
    limit = getattr(emulator, "graph_subscription_limit", None) or SUBSCRIPTION_LIMIT
    app[GRAPH_KEY] = Graph(store, quota=quota, subscription_limit=limit, truncate_after=getattr(emulator, "graph_truncate_after", None))
    READ_PATHS.add(PATH.lower())
    app.router.add_post(PATH, _query)
    app.router.add_post(PATH.lower(), _query)
