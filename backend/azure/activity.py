"""The activity log of a subscription (Azure Monitor management events).

``GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values``
through azure-mgmt-monitor's async client (``activity_logs.list``, api-version
2015-04-01): azure-core follows ``nextLink``. ``$filter`` allows only Azure's
documented patterns: a time range and at most one of resourceUri,
resourceGroupName, resourceProvider or correlationId (one subscription a call,
90 days of retention).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.mapping import activity_event
from backend.models import ActivityEvent
from backend.safetext import safe_json

RETENTION_DAYS = 90


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def activity_filter(
    start: datetime, end: datetime, *, resource_group: str | None = None, resource_uri: str | None = None, correlation_id: str | None = None
) -> str:
    """The ``$filter`` of one activity-log read (at most one of the three scopes)."""
    scopes = [(k, v) for k, v in (("resourceUri", resource_uri), ("resourceGroupName", resource_group), ("correlationId", correlation_id)) if v]
    if len(scopes) > 1:
        raise ValueError("the activity log filters on one of resourceUri, resourceGroupName or correlationId, not several")
    text = f"eventTimestamp ge {_quote(_instant(start))} and eventTimestamp le {_quote(_instant(end))}"
    for name, value in scopes:
        text += f" and {name} eq {_quote(value)}"
    return text


async def activity_log(
    backend: Any,
    subscription_id: str,
    *,
    start: datetime,
    end: datetime,
    resource_group: str | None = None,
    resource_uri: str | None = None,
    correlation_id: str | None = None,
) -> list[ActivityEvent]:
    """Every entry in the window, newest first (raises BackendError)."""
    flt = activity_filter(start, end, resource_group=resource_group, resource_uri=resource_uri, correlation_id=correlation_id)

    async def fetch() -> list[ActivityEvent]:
        client = backend.client("monitor", subscription_id)
        out: list[ActivityEvent] = []
        async for item in client.activity_logs.list(filter=flt):
            event = activity_event(safe_json(item.serialize(keep_readonly=True)))
            if event is not None:
                out.append(event)
        return out

    events = await backend.call("reading the activity log", fetch)
    return sorted(events, key=lambda e: e.time, reverse=True)
