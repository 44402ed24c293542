"""Built-in estates for the local ARM emulator.

An estate is a plain dict (also loadable from a JSON file)::

    {"subscriptions": [{"subscriptionId", "displayName", "state", ...}],
     "resourceGroups": [ARM resource group docs]          # optional: derived from ids otherwise
     "resources": [ARM resource documents exactly as GET returns them],
     "availabilityStatuses": [Resource Health docs, id "<resource id>/providers/
                              Microsoft.ResourceHealth/availabilityStatuses/current"],
     "events": [Resource Health event docs, id "/subscriptions/<id>/providers/
                Microsoft.ResourceHealth/events/<tracking id>"],
     "guest": {"<vm id>": {emulator-only facts: ports, boot, serial_log, previous_public_ip, agent, stand_ins}}}

``load_estate("demo")``, ``load_estate("scale:10000", subscriptions=20, seed=1)`` or
``load_estate("/path/estate.json")``. Every call returns fresh documents the
caller may mutate.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from .validate import EstateError, parse_resource_id, read_estate_file, validate_estate

__all__ = ["EstateError", "load_estate", "parse_resource_id", "validate_estate"]


def load_estate(spec: str, *, subscriptions: int | None = None, seed: int = 0, now: datetime | None = None) -> dict:
    """Build or read an estate.

    spec: ``"demo"``, ``"hostile"`` (the demo with attacker-written text everywhere), ``"scale:N"`` (N VMs) or the path of a JSON estate file
    (``.json`` or ``.json.gz``). ``subscriptions`` (scale only, default 3) and
    ``seed`` (scale only) shape the generated estate; ``now`` (default: the
    current UTC time) anchors every timestamp of the built-in estates, so a
    fixed ``now`` gives identical output. A JSON file is returned as written
    (after validation), with missing optional top-level keys filled in.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise EstateError("an estate must be named: use demo, hostile, scale:N or a JSON file")
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime):
        raise EstateError(f"now must be a datetime, not {type(now).__name__}")
    text = spec.strip()
    low = text.lower()
    if low == "demo":
        from . import demo

        return demo.build(now)
    if low == "hostile":
        from . import hostile

        return hostile.build(now)
    if low == "scale" or low.startswith("scale:"):
        raw = text.split(":", 1)[1].strip() if ":" in text else ""
        if not raw.isdigit() or int(raw) <= 0:
            raise EstateError(f"scale:N needs a positive whole number (got {text!r})")
        if subscriptions is None:
            subscriptions = 3
        if isinstance(subscriptions, bool) or not isinstance(subscriptions, int) or subscriptions <= 0:
            raise EstateError(f"scale:N needs a positive whole number of subscriptions (got {subscriptions!r})")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise EstateError(f"the seed of scale:N must be a whole number (got {seed!r})")
        from . import scale

        return scale.build(int(raw), subscriptions=subscriptions, seed=seed, now=now)
    looks_like_file = low.endswith((".json", ".json.gz")) or os.sep in text or "/" in text or os.path.exists(text)
    if not looks_like_file:
        raise EstateError(f"unknown estate {spec!r}: use demo, hostile, scale:N or a JSON file")
    return read_estate_file(os.path.expanduser(text))
