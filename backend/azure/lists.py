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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from azure.core.async_paging import AsyncItemPaged, AsyncList
from azure.core.exceptions import ClientAuthenticationError, DecodeError, HttpResponseError, ResourceNotFoundError, map_error
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat


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

_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


# One thread parses every page: parsing holds the GIL, so more threads would not parse
# faster, and each extra thread gets its own malloc arena (measured: 30 MB more peak RSS
# for a scale:10000 inventory on the default executor).
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aztriage-parse")


def _parse_page(content: bytes, reduce: Callable[[list[Any]], list[Any]] | None) -> tuple[str | None, list[Any]]:
    body = orjson.loads(content)
    items = body.get("value") or []
    return body.get("nextLink") or None, (reduce(items) if reduce is not None else items)


def raw_list(
    client: Any,
    subscription_id: str,
    route: ListRoute,
    reduce: Callable[[list[Any]], list[Any]] | None = None,
    *,
    ready: Awaitable[Any] | None = None,
) -> AsyncItemPaged:
    """One ARM list, all its pages: iterating yields one list per page — the page's items
    as plain dicts, or what ``reduce`` makes of them (a page at a time, not an item at a
    time: 64,000 async steps cost a scale:10000 inventory about 0.1 s). A page is parsed and
    reduced in a worker thread, so a console's event loop keeps its time slices while a
    1000-item page turns into objects (and the page's documents are garbage as soon as it
    is reduced). With ``ready``, a page that has arrived waits (as bytes) for it before it is
    parsed: the VM list is fetched alongside the lists it is joined with."""
    first_url = f"/subscriptions/{subscription_id}{route.path}"

    async def get_next(next_link: str | None = None) -> Any:
        if next_link is None:
            request = HttpRequest("GET", first_url, params={"api-version": route.api_version, **dict(route.params)})
        else:
            request = HttpRequest("GET", next_link)
        # stream=True keeps ContentDecodePolicy from parsing the body too: it is read and
        # parsed once, here (a scale:10000 inventory parses ~100 MB of JSON).
        response = await client.send_request(request, stream=True)
        await response.read()
        if response.status_code != 200:
            map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return response

    async def extract_data(response: Any) -> tuple[str | None, AsyncList]:
        if ready is not None:
            await ready
        try:
            next_link, items = await asyncio.get_running_loop().run_in_executor(_PARSER, _parse_page, response.content, reduce)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"the list answer is not valid JSON: {exc}", response=response) from exc
        return next_link, AsyncList([items])

    return AsyncItemPaged(get_next, extract_data)
