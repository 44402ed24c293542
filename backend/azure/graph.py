"""Azure Resource Graph queries: ``POST /providers/Microsoft.ResourceGraph/resources``.

The request goes through the adapter's own ARM pipeline (``AzureBackend.raw_client``:
auth, azure-core's retries with Retry-After, the request counter) as raw JSON, like
the inventory lists (``lists.raw_list``), so no SDK model is built for 1,000 rows a
page. The body is what azure-mgmt-resourcegraph 8.0.1 sends (api-version 2021-03-01):
``{subscriptions?, managementGroups?, query, options: {resultFormat: "objectArray",
$top, $skipToken}}``; that package is not needed for it and not installed.

Paging resends the same query and scopes with the ``$skipToken`` of the page before.
Queries that page should ``order by id`` (ARG's advice: an unsorted result may repeat
or miss rows between pages); a query with ``take``/``limit`` or ``summarize`` gets no
token, and ``resultTruncated`` says rows were cut: ``GraphResult.truncated``.

Quota: every answer says how many queries the caller has left in the current window
(``x-ms-user-quota-remaining``) and when it resets (``x-ms-user-quota-resets-after``,
``hh:mm:ss``). ``QuotaGate`` keeps that, counts the queries in flight, and makes the
next query wait for the reset rather than draw a 429; a 429 that still comes (another
client of the same identity spent the quota) is retried by azure-core after its
Retry-After. ``x-ms-tenant-subscription-limit-hit: true`` (a tenant or management
group scope past 10,000 subscriptions: only the first 10,000 were searched) is
reported as ``GraphResult.subscription_limit_hit``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from backend.azure.lists import _parse, _send
from backend.errors import BackendError
from backend.models import GraphResult
from backend.safetext import json_is_clean, safe_json, safe_line

if TYPE_CHECKING:
    from backend.azure.backend import AzureBackend

log = logging.getLogger("aztriage.azure.graph")

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
GRAPH_API_VERSION = "2021-03-01"  # azure-mgmt-resourcegraph 8.0.1's default
MAX_PAGE = 1000  # ARG's $top maximum
QUOTA_REMAINING = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER = "x-ms-user-quota-resets-after"
SUBSCRIPTION_LIMIT_HIT = "x-ms-tenant-subscription-limit-hit"


def parse_resets_after(value: str | None) -> float | None:
    """``hh:mm:ss`` (fractions allowed) in seconds; None when absent or unreadable."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", value)
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


class QuotaGate:
    """The caller's Resource Graph quota as the last answer stated it.

    ``acquire`` before each query: when the queries in flight would spend what is left,
    it waits until the window resets (``waited_s`` adds up those waits). ``release``
    with the answer's headers afterwards."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.resets_at = 0.0
        self.in_flight = 0
        self.waited_s = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while self.remaining is not None and self.remaining - self.in_flight <= 0:
                wait = self.resets_at - time.monotonic()
                if wait <= 0:
                    self.remaining = None  # a new window: the next answer says how much it holds
                    break
                log.info("Resource Graph quota spent: waiting %.1f s for it to reset", wait)
                await asyncio.sleep(wait)
                self.waited_s += wait
            self.in_flight += 1

    def release(self, headers: Mapping[str, str] | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if not headers:
            return
        remaining = headers.get(QUOTA_REMAINING)
        resets = parse_resets_after(headers.get(QUOTA_RESETS_AFTER))
        if remaining is not None and remaining.strip().isdigit():
            self.remaining = int(remaining)
            if resets is not None:
                self.resets_at = time.monotonic() + resets


def _rejection(exc: HttpResponseError) -> str:
    """ARG's 400 puts the reason in the error's details; the top message is a support note."""
    try:
        response: Any = exc.response
        body = orjson.loads(response.content) if response is not None else {}
        details = (body.get("error") or {}).get("details") or []
        reasons = [str(d.get("message")) for d in details if d.get("message") and d.get("code") != "InvalidQuery"]
        reasons = reasons or [str(d.get("message")) for d in details if d.get("message")]
        if reasons:
            return safe_line("; ".join(reasons))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        pass
    return safe_line(str(exc.message or exc.reason or exc).splitlines()[0])


async def query(
    backend: AzureBackend,
    text: str,
    *,
    subscriptions: Sequence[str] | None = None,
    management_groups: Sequence[str] | None = None,
    page_size: int = MAX_PAGE,
    max_rows: int | None = None,
    on_page: Callable[[list[dict[str, Any]]], None] | None = None,
) -> GraphResult:
    """Every page of one query (or ``max_rows`` rows), as one result; with ``on_page``,
    each page goes to it as it comes and the result holds no rows (``read`` counts them)."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE}")
    gate = backend.graph_gate
    body: dict[str, Any] = {"query": text, "options": {"resultFormat": "objectArray", "$top": page_size}}
    if subscriptions:
        body["subscriptions"] = list(subscriptions)
    if management_groups:
        body["managementGroups"] = list(management_groups)
    rows: list[dict[str, Any]] = []
    total = 0
    truncated = False
    limit_hit = False
    pages = 0
    read = 0
    waited_before = gate.waited_s
    token: str | None = None
    client = backend.raw_client()
    while True:
        if token:
            body["options"]["$skipToken"] = token
        await gate.acquire()
        headers: Mapping[str, str] | None = None
        try:
            request = HttpRequest("POST", GRAPH_PATH, params={"api-version": GRAPH_API_VERSION}, json=body)
            try:
                response = await _send(client, request)
            except HttpResponseError as exc:
                failed: Any = exc.response
                headers = failed.headers if failed is not None else None
                if exc.status_code == 400:
                    raise BackendError(f"Resource Graph rejected the query: {_rejection(exc)}", code="InvalidQuery", status=400) from exc
                raise
            headers = response.headers
        finally:
            gate.release(headers)
        pages += 1
        page = _parse(response, "Resource Graph")
        data = page.get("data") or []
        if not isinstance(data, list):
            raise BackendError("Resource Graph answered a table where objects were asked for", code="UnexpectedAnswer")
        if data and not json_is_clean(response.content):
            data = safe_json(data)  # the trust boundary: tenant-written text made safe before anything reads it
        read += len(data)
        if on_page is not None:
            on_page(data)
        else:
            rows.extend(data)
        total = int(page.get("totalRecords") or 0)
        truncated = truncated or str(page.get("resultTruncated", "false")).lower() == "true"
        limit_hit = limit_hit or str(headers.get(SUBSCRIPTION_LIMIT_HIT, "")).lower() == "true"
        token = page.get("$skipToken") or None
        if token is None or (max_rows is not None and read >= max_rows):
            break
    if max_rows is not None and len(rows) > max_rows:
        rows = rows[:max_rows]
    return GraphResult(
        rows=tuple(rows),
        total_records=total,
        truncated=truncated,
        subscription_limit_hit=limit_hit,
        pages=pages,
        quota_waited_s=gate.waited_s - waited_before,
        read=read,
    )
