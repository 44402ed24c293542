"""Reading and checking estate documents (built-in or from a JSON file).

Every problem raises :class:`EstateError` with one sentence that names the
source (``estate file /x/e.json``) and the first thing that is wrong.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
from typing import Any, NoReturn

TOP_LEVEL = {
    "subscriptions": list,
    "resourceGroups": list,
    "resources": list,
    "availabilityStatuses": list,
    "events": list,
    "activityLog": list,  # optional: activity-log EventData documents (backend/emulator/activitylog.py)
    "availabilityHistory": list,  # optional: earlier Resource Health availability statuses, any order
    "resourceChanges": list,  # optional: Resource Graph resourcechanges rows (property diffs with who made them)
    "guest": dict,
    "usages": dict,  # optional compute usage and limits (backend/emulator/usage.py)
    "skuRestrictions": dict,  # optional: sizes the subscription may not use per region or zone (backend/emulator/skus.py)
    "now": str,
    "backup": dict,  # optional: Recovery Services vault id -> {"items", "policies"} of Azure Backup (backend/emulator/backup.py)
    "tunnels": dict,  # optional: VPN connection id -> why it is down (stuck / gateway / peer-down / up; backend/emulator/netpath_ops.py)
    "impactedResources": dict,  # optional: tracking id (lower case) -> the resource ids the event lists  # optional: the instant the estate was built for (maintenance windows are read on it)
}
OPTIONAL_TOP_LEVEL = {"description", "$schema"}
AVAILABILITY_STATES = {"Available", "Unavailable", "Degraded", "Unknown"}
PORT_ANSWERS = {"ssh", "rdp", "refused", "silent"}
BOOT_RE = re.compile(r"^(ok|emergency-fstab|fsck|stop-code:[A-Z0-9_]+)$")
AGENT_VALUES = {"ready", "not-ready"}
SUBSCRIPTION_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HEALTH_SUFFIX = "/providers/microsoft.resourcehealth/availabilitystatuses/current"
# resources that live outside a resource group's provider tree, and proxy resources Azure serves
# without a location (a collection's restore points and their disk restore points), have none
_NO_LOCATION = {
    "microsoft.authorization/locks",
    "microsoft.compute/restorepointcollections/restorepoints",
    "microsoft.compute/restorepointcollections/restorepoints/diskrestorepoints",
}


class EstateError(ValueError):
    """A built-in estate spec or an estate file is not usable; the message says why in one sentence."""


def read_estate_file(path: str) -> dict:
    """Load and validate an estate from a JSON (or gzip'ed JSON) file."""
    where = f"estate file {path}"
    if not os.path.exists(path):
        raise EstateError(f"{where} does not exist")
    if os.path.isdir(path):
        raise EstateError(f"{where} is a directory, not a JSON file")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except (OSError, EOFError) as exc:
        raise EstateError(f"{where} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EstateError(f"{where} is not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EstateError(f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    try:
        validate_estate(data, where)
    except EstateError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        # A shape the validator did not foresee (a list where a name belongs, a number for a
        # pattern): still one sentence, never a traceback.
        raise EstateError(f"{where} has a value of the wrong kind ({type(exc).__name__}: {exc})") from None
    for key, kind in TOP_LEVEL.items():
        if key not in ("usages", "skuRestrictions"):  # optional overrides: absent means "count from the estate"
            data.setdefault(key, kind())
    for key in OPTIONAL_TOP_LEVEL:
        data.pop(key, None)
    for s in data["subscriptions"]:
        s.setdefault("state", "Enabled")
    return data


def _fail(where: str, what: str) -> NoReturn:
    raise EstateError(f"{where}: {what}")


def _check_named_id(where: str, at: str, doc: dict[str, Any], pattern: str, like: str, subs: set[str]) -> None:
    """`doc`'s id matches `pattern` (subscription, name), under a listed subscription, with its name as `name`."""
    rid = doc.get("id") or ""
    m = re.match(pattern, rid, re.I)
    if not m:
        _fail(where, f"{at} needs an 'id' like {like}")
    if m.group(1).lower() not in subs:
        _fail(where, f"{at} ({rid}) is under subscription {m.group(1)}, which is not listed in 'subscriptions'")
    if doc.get("name") != m.group(2):
        _fail(where, f"{at} ({rid}) must have 'name' {m.group(2)!r}")


def parse_resource_id(rid: str) -> tuple[str, str, str, str] | None:
    """(subscription, resource group, full type, name) of a well-formed resource id, else None.

    Accepts nested children (``.../virtualNetworks/v/subnets/s``) and extension
    resources (``<resource id>/providers/Microsoft.Authorization/locks/l``).
    """
    if not isinstance(rid, str) or not rid.startswith("/"):
        return None
    parts = rid[1:].split("/")
    if len(parts) < 7 or any(not p or p != p.strip() for p in parts):
        return None
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups" or parts[4].lower() != "providers":
        return None
    i = 4
    rtype = ""
    name = ""
    while i < len(parts):
        if parts[i].lower() != "providers" or i + 3 >= len(parts):
            return None
        ns = parts[i + 1]
        if "." not in ns:
            return None
        i += 2
        types = []
        while i < len(parts) and parts[i].lower() != "providers":
            if i + 1 >= len(parts):
                return None
            types.append(parts[i])
            name = parts[i + 1]
            i += 2
        if not types:
            return None
        rtype = ns + "/" + "/".join(types)
    return parts[1], parts[3], rtype, name


def validate_estate(data: Any, where: str = "estate") -> None:
    """Check an estate's structure and cross references; raise EstateError on the first problem."""
    if not isinstance(data, dict):
        _fail(where, f"the top level must be a JSON object, not {type(data).__name__}")
    for key in data:
        if key not in TOP_LEVEL and key not in OPTIONAL_TOP_LEVEL:
            _fail(where, f"unknown top-level key {key!r} (expected {', '.join(TOP_LEVEL)})")
    for key, kind in TOP_LEVEL.items():
        if key in data and not isinstance(data[key], kind):
            _fail(where, f"{key!r} must be a {'list' if kind is list else 'string' if kind is str else 'object'}")
    if "subscriptions" not in data:
        _fail(where, "there is no 'subscriptions' list")

    subs: set[str] = set()
    for i, s in enumerate(data["subscriptions"]):
        at = f"subscriptions[{i}]"
        if not isinstance(s, dict):
            _fail(where, f"{at} must be an object")
        sid = s.get("subscriptionId")
        if not isinstance(sid, str) or not SUBSCRIPTION_RE.match(sid):
            _fail(where, f"{at} needs a 'subscriptionId' that is a GUID")
        if sid.lower() in subs:
            _fail(where, f"{at} repeats subscription {sid}")
        if not isinstance(s.get("displayName"), str) or not s["displayName"]:
            _fail(where, f"{at} ({sid}) has no 'displayName'")
        if "state" in s and s["state"] not in ("Enabled", "Warned", "PastDue", "Disabled", "Deleted"):
            _fail(where, f"{at} ({sid}) has an unknown state {s['state']!r}")
        subs.add(sid.lower())

    for i, g in enumerate(data.get("resourceGroups", [])):
        at = f"resourceGroups[{i}]"
        if not isinstance(g, dict):
            _fail(where, f"{at} must be an object")
        gid = g.get("id")
        _check_named_id(where, at, g, r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)$", "/subscriptions/<id>/resourceGroups/<name>", subs)
        if not isinstance(g.get("location"), str):
            _fail(where, f"{at} ({gid}) has no 'location'")

    ids: dict[str, dict] = {}
    for i, r in enumerate(data.get("resources", [])):
        at = f"resources[{i}]"
        if not isinstance(r, dict):
            _fail(where, f"{at} must be an object")
        for field in ("id", "name", "type"):
            if field not in r:
                _fail(where, f"{at} has no {field!r}")
            if not isinstance(r[field], str) or not r[field]:
                _fail(where, f"{at} has an empty or non-string {field!r}")
        rid = r["id"]
        parsed = parse_resource_id(rid)
        if parsed is None:
            _fail(where, f"{at} has a malformed ARM id {rid!r}")
        sub, _rg, rtype, name = parsed
        if sub.lower() not in subs:
            _fail(where, f"{at} ({rid}) is under subscription {sub}, which is not listed in 'subscriptions'")
        if r["name"] != name:
            _fail(where, f"{at} ({rid}) has name {r['name']!r} but its id ends in {name!r}")
        if r["type"].lower() != rtype.lower():
            _fail(where, f"{at} ({rid}) has type {r['type']!r} but its id says {rtype!r}")
        if rtype.lower() not in _NO_LOCATION and not isinstance(r.get("location"), str):
            _fail(where, f"{at} ({rid}) has no 'location'")
        if "properties" in r and not isinstance(r["properties"], dict):
            _fail(where, f"{at} ({rid}) has 'properties' that is not an object")
        if rid.lower() in ids:
            _fail(where, f"{at} repeats the id {rid}")
        ids[rid.lower()] = r
        if rtype.lower() == "microsoft.compute/virtualmachines":
            _check_vm(where, at, r)

    for i, s in enumerate(data.get("availabilityStatuses", [])):
        at = f"availabilityStatuses[{i}]"
        if not isinstance(s, dict):
            _fail(where, f"{at} must be an object")
        sid = s.get("id")
        if not isinstance(sid, str):
            _fail(where, f"{at} has no 'id'")
        if not sid.lower().endswith(HEALTH_SUFFIX):
            _fail(where, f"{at} ({sid}) must end with /providers/Microsoft.ResourceHealth/availabilityStatuses/current")
        target = sid[: -len(HEALTH_SUFFIX)]
        parsed = parse_resource_id(target)
        if parsed is None:
            _fail(where, f"{at} ({sid}) is not under a well-formed resource id")
        if parsed[0].lower() not in subs:
            _fail(where, f"{at} ({sid}) is under subscription {parsed[0]}, which is not listed in 'subscriptions'")
        if target.lower() not in ids:
            _fail(where, f"{at} ({sid}) is for a resource that is not in 'resources'")
        props = s.get("properties")
        if not isinstance(props, dict) or props.get("availabilityState") not in AVAILABILITY_STATES:
            _fail(where, f"{at} ({sid}) needs properties.availabilityState, one of {', '.join(sorted(AVAILABILITY_STATES))}")

    seen_events: set[str] = set()
    for i, e in enumerate(data.get("events", [])):
        at = f"events[{i}]"
        if not isinstance(e, dict):
            _fail(where, f"{at} must be an object")
        eid = e.get("id") or ""
        _check_named_id(
            where,
            at,
            e,
            r"^/subscriptions/([^/]+)/providers/Microsoft\.ResourceHealth/events/([^/]+)$",
            "/subscriptions/<id>/providers/Microsoft.ResourceHealth/events/<tracking id>",
            subs,
        )
        if eid.lower() in seen_events:
            _fail(where, f"{at} repeats the id {eid}")
        seen_events.add(eid.lower())
        props = e.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("eventType"), str):
            _fail(where, f"{at} ({eid}) needs properties.eventType")

    if "usages" in data:
        from ..usage import UsageError, validate_usages

        try:
            validate_usages(data["usages"], where)
        except UsageError as exc:
            raise EstateError(str(exc)) from None

    for key, fact in data.get("tunnels", {}).items():
        at = f"tunnels[{key!r}]"
        if "/providers/microsoft.network/connections/" not in str(key).lower():
            _fail(where, f"{at} is not the id of a virtual network gateway connection")
        if fact not in ("stuck", "gateway", "peer-down", "up"):
            _fail(where, f"{at} is {fact!r}; use stuck, gateway, peer-down or up")
    for key, facts in data.get("guest", {}).items():
        at = f"guest[{key!r}]"
        r = ids.get(key.lower()) if isinstance(key, str) else None
        if r is None or r["type"].lower() != "microsoft.compute/virtualmachines":
            _fail(where, f"{at} is not the id of a virtual machine in 'resources'")
        if not isinstance(facts, dict):
            _fail(where, f"{at} must be an object")
        ports = facts.get("ports", {})
        if not isinstance(ports, dict):
            _fail(where, f'{at}.ports must be an object like {{"22": "ssh"}}')
        for port, answer in ports.items():
            if not (isinstance(port, str) and port.isdigit() and 0 < int(port) < 65536):
                _fail(where, f"{at}.ports has {port!r}, which is not a TCP port number")
            if answer not in PORT_ANSWERS:
                _fail(where, f"{at}.ports[{port!r}] is {answer!r}; use one of {', '.join(sorted(PORT_ANSWERS))}")
        if "boot" in facts and not (isinstance(facts["boot"], str) and BOOT_RE.match(facts["boot"])):
            _fail(where, f"{at}.boot is {facts['boot']!r}; use ok, emergency-fstab, fsck or stop-code:<CODE>")
        if "serial_log" in facts and not isinstance(facts["serial_log"], str):
            _fail(where, f"{at}.serial_log must be a string")
        for key in ("ssh_banner", "rdp_reply"):
            if key in facts and not isinstance(facts[key], str):
                _fail(where, f"{at}.{key} must be a string (what the guest's stand-in answers)")
        if "agent" in facts and facts["agent"] not in AGENT_VALUES:
            _fail(where, f"{at}.agent is {facts['agent']!r}; use ready or not-ready")
        if "stand_ins" in facts and not isinstance(facts["stand_ins"], bool):
            _fail(where, f"{at}.stand_ins is {facts['stand_ins']!r}; use true (the emulator acts out the guest's ports) or false (a real server answers)")
        if "previous_public_ip" in facts:
            try:
                ipaddress.IPv4Address(facts["previous_public_ip"])
            except (ValueError, TypeError):
                _fail(where, f"{at}.previous_public_ip is {facts['previous_public_ip']!r}, not an IPv4 address")


def _check_vm(where: str, at: str, r: dict) -> None:
    props = r.get("properties")
    rid = r["id"]
    if not isinstance(props, dict):
        _fail(where, f"{at} ({rid}) is a virtual machine without 'properties'")
    size = (props.get("hardwareProfile") or {}).get("vmSize") if isinstance(props.get("hardwareProfile"), dict) else None
    if not isinstance(size, str):
        _fail(where, f"{at} ({rid}) has no properties.hardwareProfile.vmSize")
    sp = props.get("storageProfile")
    if not isinstance(sp, dict) or not isinstance(sp.get("osDisk"), dict):
        _fail(where, f"{at} ({rid}) has no properties.storageProfile.osDisk")
    nics = (props.get("networkProfile") or {}).get("networkInterfaces") if isinstance(props.get("networkProfile"), dict) else None
    if not isinstance(nics, list) or not all(isinstance(n, dict) and isinstance(n.get("id"), str) for n in nics):
        _fail(where, f'{at} ({rid}) needs properties.networkProfile.networkInterfaces as a list of {{"id": ...}}')
    iv = props.get("instanceView")
    if iv is not None and not (isinstance(iv, dict) and isinstance(iv.get("statuses", []), list)):
        _fail(where, f"{at} ({rid}) has a properties.instanceView that is not an object with a 'statuses' list")
