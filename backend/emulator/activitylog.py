"""The activity log (Microsoft.Insights management events) of the emulator.

``GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values
?api-version=2015-04-01&$filter=...[&$select=...]`` answers as Azure Monitor does
(azure-mgmt-monitor's ``activity_logs.list``): ``{"value": [EventData...], "nextLink"}``,
newest first. ``$filter`` accepts only the documented patterns ("No other syntax is
allowed"): ``eventTimestamp ge '<ISO>'`` [``and eventTimestamp le '<ISO>'``] and at
most one of ``resourceUri``, ``resourceGroupName``, ``resourceProvider``,
``correlationId`` ``eq '<value>'`` (and ``eventChannels eq '...'``, accepted and
ignored); anything else is a 400 with a message.

The log holds the estate's own history (top-level ``"activityLog"``: EventData
documents) and one entry per write the emulator receives: ``Started`` when the
request arrives, then ``Accepted`` (202), ``Succeeded`` or ``Failed`` as it was
answered, and a last ``Succeeded``/``Failed`` when a long-running operation ends,
all under one correlation id. The caller is the token's ``upn``/``unique_name``/
``appid`` claim when the bearer token is a JWT, otherwise "demo operator" (the
demo's fixed token is not a JWT).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from .ids import ArmError, normalize_id
from .lro import iso
from .routing import parse_route

if TYPE_CHECKING:
    from aiohttp import web

    from .lro import Operation
    from .store import Store

API_VERSIONS = frozenset({"2015-04-01", "2017-03-01-preview"})
PAGE_SIZE = 200  # Azure Monitor's pages are small; the emulator's page_size caps it further
DEMO_CALLER = "demo operator"
SELECTABLE = (
    "authorization",
    "claims",
    "correlationId",
    "description",
    "eventDataId",
    "eventName",
    "eventTimestamp",
    "httpRequest",
    "level",
    "operationId",
    "operationName",
    "properties",
    "resourceGroupName",
    "resourceProviderName",
    "resourceId",
    "status",
    "submissionTimestamp",
    "subStatus",
    "subscriptionId",
)

# Friendly names Azure gives the operations aztriage and its recoveries send (operationName.localizedValue).
LOCALIZED = {
    "microsoft.compute/virtualmachines/write": "Create or Update Virtual Machine",
    "microsoft.compute/virtualmachines/delete": "Delete Virtual Machine",
    "microsoft.compute/virtualmachines/start/action": "Start Virtual Machine",
    "microsoft.compute/virtualmachines/restart/action": "Restart Virtual Machine",
    "microsoft.compute/virtualmachines/poweroff/action": "Power Off Virtual Machine",
    "microsoft.compute/virtualmachines/deallocate/action": "Deallocate Virtual Machine",
    "microsoft.compute/virtualmachines/redeploy/action": "Redeploy Virtual Machine",
    "microsoft.compute/virtualmachines/reapply/action": "Reapply a Virtual Machine's current model",
    "microsoft.compute/virtualmachines/performmaintenance/action": "Perform Maintenance Redeploy",
    "microsoft.compute/virtualmachines/runcommand/action": "Run Command on Virtual Machine",
    "microsoft.compute/virtualmachines/extensions/write": "Create or Update Virtual Machine Extension",
    "microsoft.compute/snapshots/write": "Create or Update Snapshot",
    "microsoft.compute/disks/write": "Create or Update Disk",
    "microsoft.network/networksecuritygroups/securityrules/write": "Create or Update Security Rule",
    "microsoft.network/networksecuritygroups/securityrules/delete": "Delete Security Rule",
    "microsoft.network/networksecuritygroups/write": "Create or Update Network Security Group",
    "microsoft.network/networkinterfaces/write": "Create or Update Network Interface",
    "microsoft.network/publicipaddresses/write": "Create or Update Public Ip Address",
}

_FILTER = re.compile(
    r"^\s*eventTimestamp\s+ge\s+'(?P<start>[^']*)'"
    r"(?:\s+and\s+eventTimestamp\s+le\s+'(?P<end>[^']*)')?"
    r"(?:\s+and\s+(?P<field>resourceUri|resourceGroupName|resourceProvider|correlationId)\s+eq\s+'(?P<value>[^']*)')?"
    r"(?:\s+and\s+eventChannels\s+eq\s+'[^']*')?\s*$",
    re.IGNORECASE,
)


# ------------------------------------------------------------------ documents


def event_doc(
    *,
    subscription_id: str,
    tenant_id: str,
    resource_id: str,
    operation: str,
    status: str,
    at: str,
    caller: str,
    correlation_id: str,
    sub_status: str = "",
    method: str = "",
    client_ip: str = "",
    description: str = "",
    level: str = "Informational",
    event_name: str = "EndRequest",
    properties: dict[str, str] | None = None,
    submitted: str | None = None,
) -> dict[str, Any]:
    """One EventData document as Azure Monitor returns it."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{correlation_id}|{status}|{at}|{resource_id}"))
    rid = normalize_id(resource_id)
    parts = rid.split("/")
    group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    provider = parts[6] if len(parts) > 6 else "Microsoft.Resources"
    rtype = "/".join([provider, *parts[7::2]]) if len(parts) > 7 else "Microsoft.Resources/subscriptions/resourceGroups"
    ticks = int(_parse_time(at).timestamp() * 10_000_000) + 621_355_968_000_000_000
    doc: dict[str, Any] = {
        "authorization": {"action": operation, "scope": rid},
        "caller": caller,
        "channels": "Operation",
        "claims": _claims(caller),
        "correlationId": correlation_id,
        "description": description,
        "eventDataId": event_id,
        "eventName": {"value": event_name, "localizedValue": "Begin request" if event_name == "BeginRequest" else "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "id": f"{rid}/events/{event_id}/ticks/{ticks}",
        "level": level,
        "resourceGroupName": group,
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "resourceId": rid,
        "resourceType": {"value": rtype, "localizedValue": rtype},
        "operationId": correlation_id,
        "operationName": {"value": operation, "localizedValue": LOCALIZED.get(operation.lower(), operation)},
        "properties": dict(properties or {}),
        "status": {"value": status, "localizedValue": status},
        "subStatus": {"value": sub_status, "localizedValue": sub_status},
        "eventTimestamp": at,
        "submissionTimestamp": submitted or at,
        "subscriptionId": subscription_id,
        "tenantId": tenant_id,
    }
    if method:
        doc["httpRequest"] = {"clientRequestId": str(uuid.uuid5(uuid.NAMESPACE_OID, event_id)), "clientIpAddress": client_ip, "method": method}
    return doc


def _claims(caller: str) -> dict[str, str]:
    if "@" in caller:
        return {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": caller, "name": caller}
    return {"appid": caller} if _GUID.match(caller) else {"name": caller}


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def caller_from(authorization: str) -> str:
    """Who a bearer token names (JWT claims upn / unique_name / email / appid), or the demo operator."""
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    parts = token.split(".")
    if len(parts) != 3:
        return DEMO_CALLER
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return DEMO_CALLER
    if not isinstance(claims, dict):
        return DEMO_CALLER
    for key in ("upn", "unique_name", "email", "appid", "oid"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return DEMO_CALLER


def operation_of(method: str, path: str) -> tuple[str, str] | None:
    """(operationName, resource id) of a write to ``path``, as the activity log names it."""
    route = parse_route(path)
    method = method.upper()
    if route.kind == "rg":
        rid = f"/subscriptions/{route.sub}/resourceGroups/{route.rg}"
        return f"Microsoft.Resources/subscriptions/resourceGroups/{'delete' if method == 'DELETE' else 'write'}", rid
    if route.kind == "resource" and route.ns:
        verb = "delete" if method == "DELETE" else "write"
        return "/".join((route.ns, *route.types, verb)), route.resource_id
    if route.kind == "resource_sub" and route.ns and route.last and method == "POST":
        return "/".join((route.ns, *route.types, route.last, "action")), route.resource_id
    return None


# -------------------------------------------------------------------- recording


def record(store: Store, method: str, path: str, status: int, operation_id: str | None, caller: str) -> str | None:
    """The activity-log entries of one write the emulator answered; their correlation id."""
    found = operation_of(method, path)
    if found is None or status == 0:
        return None
    operation, rid = found
    sub = rid.split("/")[2]
    tenant = (store.subscriptions.get(sub.lower()) or {}).get("tenantId", "")
    correlation = str(uuid.uuid4())
    at = iso(store.now()) or ""
    common = {
        "subscription_id": sub,
        "tenant_id": tenant,
        "resource_id": rid,
        "operation": operation,
        "caller": caller,
        "correlation_id": correlation,
        "method": method,
    }
    begin = event_doc(status="Started", at=at, event_name="BeginRequest", **common)
    if status == 202:
        end = event_doc(status="Accepted", sub_status="Accepted", at=at, **common)
        if operation_id:
            store.activity_pending[operation_id] = common
    elif status < 400:
        end = event_doc(status="Succeeded", sub_status="Created" if status == 201 else "OK", at=at, **common)
    else:
        end = event_doc(status="Failed", sub_status=str(status), at=at, level="Error", **common)
    store.add_activity(begin)
    store.add_activity(end)
    return correlation


def operation_finished(store: Store, op: Operation) -> None:
    """The last entry of a long-running write: Succeeded or Failed when the operation ends."""
    common = store.activity_pending.pop(op.id, None)
    if common is None:
        return
    status = "Succeeded" if op.status == "Succeeded" else "Failed"
    at = iso(op.end_time or store.now()) or ""
    store.add_activity(event_doc(status=status, at=at, level="Informational" if status == "Succeeded" else "Error", **common))


# ---------------------------------------------------------------------- serving


def _parse_time(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def sort_key(text: Any) -> float:
    """An EventData's eventTimestamp as epoch seconds (0 when it cannot be read), to order the log."""
    try:
        return _parse_time(str(text)).timestamp()
    except ValueError:
        return 0.0


_TIMES: dict[str, float] = {}


def _time_of(doc: dict[str, Any]) -> float:
    """An entry's eventTimestamp as epoch seconds, parsed once per distinct text (a busy log is
    filtered again for every page)."""
    text = str(doc.get("eventTimestamp") or "")
    at = _TIMES.get(text)
    if at is None:
        if len(_TIMES) > 500_000:
            _TIMES.clear()
        at = _TIMES[text] = sort_key(text)
    return at


def _bad(message: str) -> ArmError:
    # The code and message follow Azure Monitor's answer to a filter it cannot read (UNCONFIRMED wording).
    return ArmError(400, "BadRequest", message)


def parse_filter(text: str | None) -> tuple[datetime, datetime | None, str | None, str | None]:
    """(start, end, field, value) of an activity-log ``$filter``; raises ArmError 400."""
    if not text or not text.strip():
        raise _bad("The $filter query parameter is required and must contain at least the start time (eventTimestamp ge '<time>').")
    match = _FILTER.match(text)
    if match is None:
        raise _bad(
            f"The $filter '{text}' is not supported: use eventTimestamp ge '<time>' and eventTimestamp le '<time>', "
            "optionally with one of resourceUri, resourceGroupName, resourceProvider or correlationId eq '<value>'."
        )
    try:
        start = _parse_time(match.group("start"))
        end = _parse_time(match.group("end")) if match.group("end") is not None else None
    except ValueError as exc:
        raise _bad(f"The time in the $filter could not be read as an ISO 8601 date and time: {exc}.") from exc
    if end is not None and end < start:
        raise _bad("The end time of the $filter is before its start time.")
    field = match.group("field")
    return start, end, field.lower() if field else None, match.group("value")


def _matches(doc: dict[str, Any], field: str | None, value: str | None) -> bool:
    if field is None or value is None:
        return True
    want = value.lower()
    if field == "resourceuri":
        return str(doc.get("resourceId") or "").lower() == normalize_id(value).lower()
    if field == "resourcegroupname":
        return str(doc.get("resourceGroupName") or "").lower() == want
    if field == "resourceprovider":
        return str((doc.get("resourceProviderName") or {}).get("value") or "").lower() == want
    return str(doc.get("correlationId") or "").lower() == want


def _select(doc: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return doc
    return {k: v for k, v in doc.items() if k.lower() in {s.strip().lower() for s in select.split(",")}}


def install(app: web.Application, store: Store) -> None:
    from aiohttp import web

    from .server import EMULATOR_KEY

    if operation_finished not in store.operation_listeners:
        store.operation_listeners.append(operation_finished)

    async def values(request: web.Request) -> web.Response:
        query = {k.lower(): v for k, v in request.query.items()}
        try:
            store.subscription(request.match_info["sub"])
            version = query.get("api-version")
            if not version:
                raise _bad("The api-version query parameter (?api-version=) is required for all requests.")
            if version not in API_VERSIONS:
                raise _bad(f"The api-version '{version}' is invalid. The supported versions are '{', '.join(sorted(API_VERSIONS))}'.")
            start, end, field, value = parse_filter(query.get("$filter"))
            select = query.get("$select")
            if select:
                unknown = [s.strip() for s in select.split(",") if s.strip().lower() not in {n.lower() for n in SELECTABLE}]
                if unknown:
                    raise _bad(f"The $select property '{unknown[0]}' is not supported.")
        except ArmError as exc:
            return web.Response(status=exc.status, text=json.dumps(exc.body()), content_type="application/json")
        sub = request.match_info["sub"].lower()
        low, high = start.timestamp(), end.timestamp() if end is not None else float("inf")
        docs = [d for d in store.activity_of(sub) if low <= _time_of(d) <= high and _matches(d, field, value)]
        offset = _offset(query.get("$skiptoken"))
        emulator = request.app[EMULATOR_KEY]
        size = max(1, min(PAGE_SIZE, int(getattr(emulator, "page_size", PAGE_SIZE))))
        page = [_select(d, select) for d in docs[offset : offset + size]]
        body: dict[str, Any] = {"value": page}
        if offset + size < len(docs):
            pairs = [(k, v) for k, v in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True) if k.lower() != "$skiptoken"]
            pairs.append(("$skipToken", str(offset + size)))
            body["nextLink"] = f"https://{request.host}{request.rel_url.raw_path}?{urlencode(pairs, safe=chr(36) + chr(39) + '/:')}"
        return web.Response(text=json.dumps(body, separators=(",", ":")), content_type="application/json")

    app.router.add_get(r"/subscriptions/{sub}/providers/{ns:(?i:microsoft\.insights)}/{e:(?i:eventtypes)}/{m:(?i:management)}/{v:(?i:values)}", values)


def _offset(token: str | None) -> int:
    try:
        return max(0, int(token or 0))
    except ValueError:
        return 0
