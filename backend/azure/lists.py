"""Subscription-wide lists as raw ARM JSON, through the SDK clients' own pipeline.

The SDK's list operations turn every item into a hybrid model eagerly; for
10,000 VMs and their NICs, disks and IPs that costs tens of seconds of CPU
(measured: about 45 s for one scale:10000 inventory, nearly all of it in
``model_base._deserialize``). The inventory only reads wire JSON anyway
(``mapping`` works on mappings), so these lists skip the models: each request
goes through ``client.send_request`` — the same pipeline, with azure-core's
retries and Retry-After handling and our auth — and azure-core's
``AsyncItemPaged`` follows ``nextLink``.

The api-versions are the ones the installed SDK sends for the same operations
(tests/test_lists.py checks them against the SDK's request builders).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from azure.core.async_paging import AsyncItemPaged, AsyncList
from azure.core.exceptions import ClientAuthenticationError, DecodeError, HttpResponseError, ResourceNotFoundError, map_error
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat

from backend.safetext import json_is_clean, safe_json
from backend.turns import Turns


@dataclass(frozen=True)
class ListRoute:
    client: str  # which SDK client's pipeline carries it
    path: str  # under /subscriptions/{subscription_id}
    api_version: str
    params: tuple[tuple[str, str], ...] = ()


VM_HEALTH_FILTER = "resourceType eq 'Microsoft.Compute/virtualMachines'"

# One entry per list of the inventory: 11 requests per subscription, plus pages.
INVENTORY_LISTS: dict[str, ListRoute] = {
    "vm_status": ListRoute("compute", "/providers/Microsoft.Compute/virtualMachines", "2026-04-01", (("statusOnly", "true"),)),
    "vms": ListRoute("compute", "/providers/Microsoft.Compute/virtualMachines", "2026-04-01"),
    "disks": ListRoute("compute", "/providers/Microsoft.Compute/disks", "2026-03-02"),
    "availability_sets": ListRoute("compute", "/providers/Microsoft.Compute/availabilitySets", "2026-04-01"),
    "nics": ListRoute("network", "/providers/Microsoft.Network/networkInterfaces", "2026-03-01"),
    "public_ips": ListRoute("network", "/providers/Microsoft.Network/publicIPAddresses", "2026-03-01"),
    "nsgs": ListRoute("network", "/providers/Microsoft.Network/networkSecurityGroups", "2026-03-01"),
    "load_balancers": ListRoute("network", "/providers/Microsoft.Network/loadBalancers", "2026-03-01"),
    "vnets": ListRoute("network", "/providers/Microsoft.Network/virtualNetworks", "2026-03-01"),
    "health": ListRoute(
        "health",
        "/providers/Microsoft.ResourceHealth/availabilityStatuses",
        "2025-05-01",
        (("$filter", VM_HEALTH_FILTER), ("$expand", "recommendedactions")),
    ),
    "events": ListRoute("health", "/providers/Microsoft.ResourceHealth/events", "2025-05-01"),
}

# GET /subscriptions (the SDK's SubscriptionClient.subscriptions.list); not under a subscription.
SUBSCRIPTIONS_LIST = ListRoute("subscriptions", "/subscriptions", "2022-12-01")

_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError}

# GET .../virtualMachines/{name}/instanceView (the SDK's virtual_machines.instance_view).
INSTANCE_VIEW_API_VERSION = "2026-04-01"


def vm_path(subscription_id: str, resource_group: str, vm_name: str) -> str:
    return (
        f"/subscriptions/{quote(subscription_id, safe='')}/resourceGroups/{quote(resource_group, safe='')}"
        f"/providers/Microsoft.Compute/virtualMachines/{quote(vm_name, safe='')}"
    )


def instance_view_path(subscription_id: str, resource_group: str, vm_name: str) -> str:
    return vm_path(subscription_id, resource_group, vm_name) + "/instanceView"


# POST .../virtualMachines/{name}/retrieveBootDiagnosticsData (the SDK's
# virtual_machines.retrieve_boot_diagnostics_data; it only reads).
BOOT_DIAGNOSTICS_API_VERSION = "2026-04-01"


async def _send(client: Any, request: HttpRequest) -> Any:
    # stream=True keeps ContentDecodePolicy from parsing the body too: it is read and
    # parsed once, by the caller.
    response = await client.send_request(request, stream=True)
    await response.read()
    if response.status_code != 200:
        map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response


def _parse(response: Any, what: str) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"the {what} answer is not valid JSON: {exc}", response=response) from exc


async def raw_get(client: Any, path: str, api_version: str, *, method: str = "GET", params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ARM document as plain JSON through the client's pipeline (retries, auth, the
    request counter), without the SDK's model deserialization: what raw_list does for a
    list. Failures raise what the SDK's own operation raises (404: ResourceNotFoundError).
    ``method="POST"`` for an action that only reads (retrieveBootDiagnosticsData)."""
    response = await _send(client, HttpRequest(method, path, params={"api-version": api_version, **(params or {})}))
    doc = _parse(response, "ARM")
    if not isinstance(doc, dict):
        raise DecodeError("the ARM answer is not a JSON object", response=response)
    return doc


# Items reduced per turn of the event loop at most, and at a time (see raw_list).
REDUCE_SLICE = 100
REDUCE_PIECE = 20


def raw_list(
    client: Any,
    subscription_id: str | None,
    route: ListRoute,
    reduce: Callable[[list[Any]], list[Any]] | None = None,
    *,
    ready: Awaitable[Any] | None = None,
    gate: asyncio.Lock | None = None,
) -> AsyncItemPaged:
    """One ARM list, all its pages: iterating yields one list per page — the page's items
    as plain dicts, or what ``reduce`` makes of them (a page at a time, not an item at a
    time: 64,000 async steps cost a scale:10000 inventory about 0.1 s). The page's documents
    are garbage as soon as it is reduced. With ``ready``, a page that has arrived waits (as
    bytes) for it before it is parsed: the VM list is fetched alongside the lists it is
    joined with. ``subscription_id`` None: ``route.path`` is the whole path (a list above
    the subscriptions).

    Parsing and reducing run on the event loop, REDUCE_PIECE items at a time, giving the
    loop back after REDUCE_SLICE items or sooner, when a turn's budget is used
    (``backend.turns``), so a console keeps drawing and taking keys meanwhile. (100 VMs a
    turn held the loop up to 39 ms on a slower machine, the first of the soak's long
    callbacks; a budget alone let 8 ms of cheap items, disks or NICs, through where 100 of
    them take 1-2 ms, and the loop lag's median rose from 17 to 29 ms. A worker thread did
    this before; every TLS read of the loop then waited for the interpreter lock, and the
    soak saw stalls of 80-140 ms with next to no CPU used by the loop.) Lists that share a ``gate`` reduce one
    page at a time, the others wait as bytes: without it a 10k inventory held ~50 MB more
    of half-reduced pages at its peak."""
    first_url = route.path if subscription_id is None else f"/subscriptions/{subscription_id}{route.path}"

    async def get_next(next_link: str | None = None) -> Any:
        if next_link is None:
            request = HttpRequest("GET", first_url, params={"api-version": route.api_version, **dict(route.params)})
        else:
            request = HttpRequest("GET", next_link)
        # The body is read and parsed once, in extract_data (a scale:10000 inventory parses ~100 MB of JSON).
        return await _send(client, request)

    async def extract_data(response: Any) -> tuple[str | None, AsyncList]:
        if ready is not None:
            await ready
        async with gate or contextlib.nullcontext():
            turns = Turns()  # the parse counts against the first turn
            body = _parse(response, "list")  # ~10 ms for a 1000-VM page (the collector is paused)
            items = body.get("value") or []
            if not json_is_clean(response.content):
                # The trust boundary for list pages: a page that may hold a control, bidi
                # or invisible character anywhere is made safe as a whole, before mapping.
                items = safe_json(items)
            if reduce is not None:
                reduced: list[Any] = []
                for start in range(0, len(items), REDUCE_PIECE):
                    end = start + REDUCE_PIECE
                    reduced.extend(reduce(items[start:end]))
                    if end % REDUCE_SLICE == 0 or turns.due():
                        await turns.next()
                items = reduced
        return body.get("nextLink") or None, AsyncList([items])

    return AsyncItemPaged(get_next, extract_data)
