"""A resource's Resource Health history (availabilityStatuses, newest first).

``GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses``:
one request for one VM, used by incident reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.mapping import health_status
from backend.models import HealthStatus
from backend.safetext import safe_json

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def health_history(backend: Any, resource_id: str, *, limit: int = 50) -> list[HealthStatus]:
    """Up to ``limit`` statuses of one resource, newest first (raises BackendError)."""

    async def fetch() -> list[HealthStatus]:
        client = backend.client("health", resource_id.split("/")[2])
        out: list[HealthStatus] = []
        # The SDK puts the URI after a "/" of its own.
        async for doc in client.availability_statuses.list(resource_id.lstrip("/")):
            out.append(health_status(safe_json(doc)))
            if len(out) >= limit:
                break
        return out

    statuses = await backend.call("reading the health history", fetch)
    return sorted(statuses, key=lambda s: s.since or s.reported_time or _EPOCH, reverse=True)
