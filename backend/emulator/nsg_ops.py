"""Security rules as Azure serves them: ``PUT`` and ``DELETE``
``.../networkSecurityGroups/{nsg}/securityRules/{rule}``.

Both are long-running in Azure (SecurityRules_CreateOrUpdate answers 201 or 200
with ``Azure-AsyncOperation``, its final state read from that operation;
SecurityRules_Delete answers 202 with ``Location`` and ``Azure-AsyncOperation``).
The rule lives inside its NSG's document (``properties.securityRules``), where a
GET of the NSG shows it, in state ``Updating`` until the operation ends.

Errors as Azure words them: a priority already used by another rule in the same
direction is ``400 SecurityRuleConflict`` ("Security rule A conflicts with rule B.
Rules cannot have the same Priority and Direction."); a priority outside 100-4096 is
``400 SecurityRuleInvalidPriority``; a missing or unknown access, direction or
protocol is ``400 InvalidRequestFormat``.
"""

from __future__ import annotations

import copy
from typing import Any

from .ids import ArmError

RULES_KEY = "securityRules"
DURATION_KEY = "securityrule"
ACCESS = ("allow", "deny")
DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "*")


def _invalid(field: str, value: Any) -> ArmError:
    return ArmError(400, "InvalidRequestFormat", f"Cannot parse the request. Value '{value}' of property '{field}' is not valid.")


def _validate(name: str, props: dict, others: list[dict]) -> None:
    if str(props.get("access", "")).lower() not in ACCESS:
        raise _invalid("access", props.get("access"))
    if str(props.get("direction", "")).lower() not in DIRECTIONS:
        raise _invalid("direction", props.get("direction"))
    if str(props.get("protocol", "")).lower() not in PROTOCOLS:
        raise _invalid("protocol", props.get("protocol"))
    try:
        priority = int(props.get("priority", ""))  # absent or null: TypeError or ValueError, as Azure says below
    except (TypeError, ValueError):
        raise _invalid("priority", props.get("priority")) from None
    if not 100 <= priority <= 4096:
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule {name} has invalid Priority. Value provided: {priority} Allowed range 100-4096.",
        )
    direction = str(props["direction"]).lower()
    for other in others:
        other_props = other.get("properties") or {}
        if (other.get("name") or "").lower() == name.lower():
            continue
        if str(other_props.get("direction", "")).lower() == direction and int(other_props.get("priority") or 0) == priority:
            raise ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {other.get('name')} conflicts with rule {name}. Rules cannot have the same Priority and Direction. "
                "To learn more, see aka.ms/nsgrules.",
            )


def _set_state(store: Any, nsg_id: str, rule_name: str, state: str) -> None:
    if store.get(nsg_id) is None:
        return
    doc = store.own(nsg_id)
    for item in (doc.get("properties") or {}).get(RULES_KEY) or ():
        if (item.get("name") or "").lower() == rule_name.lower():
            item.setdefault("properties", {})["provisioningState"] = state
    store.touch(nsg_id.lower())


def put_rule(arm: Any, req: Any, nsg_id: str, items: list[dict], idx: int | None) -> Any:
    """SecurityRules_CreateOrUpdate: validated, written as Updating, Succeeded when the operation ends."""
    from .arm import ArmResponse

    r = req.route
    store = arm.store
    body = arm._body_object(req)
    name = items[idx]["name"] if idx is not None else r.names[-1]
    props = copy.deepcopy(body.get("properties") or {})
    props.pop("provisioningState", None)
    _validate(name, props, items)
    parent = store.get(nsg_id)
    previous = copy.deepcopy(items[idx]) if idx is not None else None
    item = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("id", "name", "type", "properties", "etag")}
    item["name"] = name
    item["id"] = f"{parent['id']}/securityRules/{name}"
    item["type"] = "Microsoft.Network/networkSecurityGroups/securityRules"
    item["etag"] = f'W/"{store.now():.6f}"'
    props["provisioningState"] = "Updating"
    item["properties"] = props
    doc = store.own(nsg_id)
    rules = doc.setdefault("properties", {}).setdefault(RULES_KEY, [])
    if idx is None:
        rules.append(item)
    else:
        rules[idx] = item
    store.touch(nsg_id.lower())
    make = arm.operation_factory(req, item["id"], namespace="Microsoft.Network", location=parent.get("location"), duration_key=DURATION_KEY)

    def success(op: Any) -> None:
        _set_state(store, nsg_id, name, "Succeeded")

    def failure(op: Any) -> None:
        # A failed write leaves the rule as it was before (or absent), as ARM's rollback does.
        if store.get(nsg_id) is None:
            return
        current = store.own(nsg_id)
        kept = [i for i in (current.get("properties") or {}).get(RULES_KEY) or () if (i.get("name") or "").lower() != name.lower()]
        if previous is not None:
            kept.append(previous)
        current["properties"][RULES_KEY] = kept
        store.touch(nsg_id.lower())

    op = make("put", on_success=success, on_failure=failure)
    response: ArmResponse = arm.lro_response(req, op, 201 if idx is None else 200, copy.deepcopy(item))
    return response


def delete_rule(arm: Any, req: Any, nsg_id: str, items: list[dict], idx: int | None) -> Any:
    """SecurityRules_Delete: 204 when there is no such rule, else 202 and gone when the operation ends."""
    from .arm import ArmResponse

    if idx is None:
        return ArmResponse(204)
    store = arm.store
    name = items[idx]["name"]
    rule_id = items[idx].get("id") or f"{nsg_id}/securityRules/{name}"
    _set_state(store, nsg_id, name, "Deleting")
    parent = store.get(nsg_id)
    make = arm.operation_factory(req, rule_id, namespace="Microsoft.Network", location=parent.get("location"), duration_key=DURATION_KEY)

    def success(op: Any) -> None:
        if store.get(nsg_id) is None:
            return
        current = store.own(nsg_id)
        props = current.get("properties") or {}
        props[RULES_KEY] = [i for i in props.get(RULES_KEY) or () if (i.get("name") or "").lower() != name.lower()]
        store.touch(nsg_id.lower())

    def failure(op: Any) -> None:
        _set_state(store, nsg_id, name, "Succeeded")

    op = make("delete", on_success=success, on_failure=failure)
    return arm.lro_response(req, op, 202)
