"""Parse ARM request paths into routes (case-insensitive on the fixed segments).

Every route carries a *template* with ids replaced by placeholders, used for
the per-route statistics, e.g.
``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}/restart``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ids import build_id

RH = "Microsoft.ResourceHealth"


@dataclass(frozen=True)
class Route:
    kind: str
    template: str
    sub: str | None = None
    rg: str | None = None
    ns: str | None = None
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    last: str | None = None  # action name, child collection or "instanceView"
    resource_path: str | None = None  # Resource Health per-resource routes: the resource id
    op_id: str | None = None
    location: str | None = None
    tracking_id: str | None = None

    @property
    def resource_id(self) -> str:
        return build_id(self.sub or "", self.rg or "", self.ns or "", self.types, self.names)

    @property
    def type(self) -> str:
        return "/".join((self.ns or "",) + self.types)


UNKNOWN = "unknown"


def _resource_template(ns: str, types: tuple[str, ...], with_rg: bool = True) -> str:
    out = "/subscriptions/{s}"
    if with_rg:
        out += "/resourceGroups/{rg}"
    out += f"/providers/{ns}"
    for t in types:
        out += f"/{t}/{{name}}"
    return out


def parse_route(path: str) -> Route:
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    if not segs:
        return Route(UNKNOWN, "/")
    for i in range(2, len(low) - 1):
        if low[i] == "providers" and low[i + 1] == "microsoft.resourcehealth":
            return _parse_rh(segs, low, i)
    if low[0] != "subscriptions":
        return Route(UNKNOWN, "/" + "/".join(segs[:2]) + ("/..." if len(segs) > 2 else ""))
    if len(segs) == 1:
        return Route("subscriptions", "/subscriptions")
    sub = segs[1]
    if len(segs) == 2:
        return Route("subscription", "/subscriptions/{s}", sub=sub)
    if low[2] == "resourcegroups":
        if len(segs) == 3:
            return Route("rg_list", "/subscriptions/{s}/resourceGroups", sub=sub)
        rg = segs[3]
        if len(segs) == 4:
            return Route("rg", "/subscriptions/{s}/resourceGroups/{rg}", sub=sub, rg=rg)
        if low[4] != "providers" or len(segs) < 7:
            return Route(UNKNOWN, "/subscriptions/{s}/resourceGroups/{rg}/" + "/".join(segs[4:5]), sub=sub, rg=rg)
        ns = segs[5]
        tail = tuple(segs[6:])
        if len(tail) == 1:
            return Route(
                "rg_type_list",
                f"/subscriptions/{{s}}/resourceGroups/{{rg}}/providers/{ns}/{tail[0]}",
                sub=sub,
                rg=rg,
                ns=ns,
                types=tail,
            )
        if len(tail) % 2 == 0:
            types, names = tail[0::2], tail[1::2]
            return Route("resource", _resource_template(ns, types), sub=sub, rg=rg, ns=ns, types=types, names=names)
        head, last = tail[:-1], tail[-1]
        types, names = head[0::2], head[1::2]
        return Route(
            "resource_sub",
            _resource_template(ns, types) + f"/{last}",
            sub=sub,
            rg=rg,
            ns=ns,
            types=types,
            names=names,
            last=last,
        )
    if low[2] == "providers" and len(segs) >= 5:
        ns = segs[3]
        tail = tuple(segs[4:])
        if len(tail) == 1:
            return Route("provider_list", f"/subscriptions/{{s}}/providers/{ns}/{tail[0]}", sub=sub, ns=ns, types=(tail[0],))
        if len(tail) == 4 and tail[0].lower() == "locations" and tail[2].lower() in ("operations", "operationresults", "operationstatuses"):
            return Route(
                "operation",
                f"/subscriptions/{{s}}/providers/{ns}/locations/{{loc}}/{tail[2]}/{{op}}",
                sub=sub,
                ns=ns,
                location=tail[1],
                op_id=tail[3],
            )
        if tail[0].lower() == "locations" and len(tail) >= 3:
            rest = "/".join(tail[2:3]) + ("/{name}" if len(tail) > 3 else "")
            return Route(UNKNOWN, f"/subscriptions/{{s}}/providers/{ns}/locations/{{loc}}/{rest}", sub=sub, ns=ns)
        return Route(UNKNOWN, f"/subscriptions/{{s}}/providers/{ns}/" + "/".join(tail[:1]) + "/...", sub=sub, ns=ns)
    return Route(UNKNOWN, "/subscriptions/{s}/" + segs[2], sub=sub)


def _parse_rh(segs: list[str], low: list[str], i: int) -> Route:
    prefix, rest = segs[:i], [s.lower() for s in segs[i + 2 :]]
    plow = low[:i]
    if not plow or plow[0] != "subscriptions" or len(plow) < 2:
        return Route(UNKNOWN, f"/.../providers/{RH}/" + "/".join(segs[i + 2 : i + 3]))
    sub = prefix[1]
    base_sub = "/subscriptions/{s}/providers/" + RH
    if len(prefix) == 2:
        if rest == ["availabilitystatuses"]:
            return Route("rh_list", base_sub + "/availabilityStatuses", sub=sub)
        if rest == ["events"]:
            return Route("rh_events", base_sub + "/events", sub=sub)
        if len(rest) == 2 and rest[0] == "events":
            return Route("rh_event", base_sub + "/events/{id}", sub=sub, tracking_id=segs[i + 3])
        if len(rest) == 3 and rest[0] == "events" and rest[2] == "impactedresources":
            return Route("rh_impacted", base_sub + "/events/{id}/impactedResources", sub=sub, tracking_id=segs[i + 3])
        if len(rest) == 3 and rest[0] == "events" and rest[2] == "fetcheventdetails":
            return Route("rh_event_details", base_sub + "/events/{id}/fetchEventDetails", sub=sub, tracking_id=segs[i + 3])
        return Route(UNKNOWN, base_sub + "/" + "/".join(segs[i + 2 : i + 3]), sub=sub)
    if len(prefix) == 4 and plow[2] == "resourcegroups":
        if rest == ["availabilitystatuses"]:
            return Route(
                "rh_rg_list",
                "/subscriptions/{s}/resourceGroups/{rg}/providers/" + RH + "/availabilityStatuses",
                sub=sub,
                rg=prefix[3],
            )
        return Route(UNKNOWN, "/subscriptions/{s}/resourceGroups/{rg}/providers/" + RH + "/...", sub=sub, rg=prefix[3])
    rg = prefix[3] if len(prefix) > 3 and plow[2] == "resourcegroups" else None
    rpath = "/" + "/".join(prefix)
    base = "{resourceId}/providers/" + RH
    if rest == ["availabilitystatuses", "current"]:
        return Route("rh_current", base + "/availabilityStatuses/current", sub=sub, rg=rg, resource_path=rpath)
    if rest == ["availabilitystatuses"]:
        return Route("rh_history", base + "/availabilityStatuses", sub=sub, rg=rg, resource_path=rpath)
    if rest == ["events"]:
        return Route("rh_resource_events", base + "/events", sub=sub, rg=rg, resource_path=rpath)
    return Route(UNKNOWN, base + "/...", sub=sub, rg=rg, resource_path=rpath)
