"""Resource Health documents (availabilityStatuses/current) the emulator builds itself."""

from __future__ import annotations

from typing import Any

from .lro import iso

AVAILABLE_SUMMARY = "There aren't any known Azure platform problems affecting this virtual machine."

START_ACTION = {
    "action": "To start this virtual machine, open the resource blade and click Start",
    "actionUrl": "<#ResourceBlade>",
    "actionUrlText": "resource blade",
}

# power state (or transition) -> (availabilityState, title, summary)
USER_INITIATED: dict[str, tuple[str, str, str]] = {
    "stopping": (
        "Unavailable",
        "Stopping",
        "This virtual machine is stopping as requested by an authorized user or process.",
    ),
    "stopped": (
        "Unavailable",
        "Stopped",
        "This virtual machine is stopping as requested by an authorized user or process.",
    ),
    "deallocating": (
        "Unavailable",
        "Stopped and deallocating",
        "This virtual machine is stopping and deallocating as requested by an authorized user or process.",
    ),
    "deallocated": (
        "Unavailable",
        "Stopped and deallocated",
        "This virtual machine is stopping and deallocating as requested by an authorized user or process.",
    ),
    "starting": (
        "Unavailable",
        "Starting",
        "This virtual machine is starting as requested by an authorized user or process. It will be online shortly.",
    ),
    "restarting": (
        "Unavailable",
        "Restarting",
        "This virtual machine is restarting as requested by an authorized user or process. It will be back online after the reboot completes.",
    ),
    "redeploying": (
        "Unavailable",
        "Redeploying",
        "This virtual machine is being redeployed to a new host as requested by an authorized user or process. "
        "It will be back online after the redeployment completes.",
    ),
    "maintenance": (
        "Unavailable",
        "Maintenance",
        "This virtual machine is undergoing maintenance as requested by an authorized user or process. It will be back online after the maintenance completes.",
    ),
    "deleting": (
        "Unavailable",
        "Deleting",
        "This virtual machine is being deleted as requested by an authorized user or process.",
    ),
    "creating": (
        "Unknown",
        "Unknown",
        "We are currently unable to determine the health of this virtual machine.",
    ),
}


def status_id(resource_id: str) -> str:
    return f"{resource_id}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"


def status_doc(
    resource_id: str,
    location: str | None,
    state: str,
    *,
    title: str,
    summary: str,
    now: float,
    reason_type: str | None = None,
    detailed_status: str | None = None,
    context: str | None = None,
    category: str | None = None,
    recommended_actions: list[dict] | None = None,
    recently_resolved: dict | None = None,
) -> dict:
    props: dict[str, Any] = {
        "availabilityState": state,
        "title": title,
        "summary": summary,
    }
    if reason_type:
        props["reasonType"] = reason_type
    if context:
        props["context"] = context
    if category:
        props["category"] = category
    props["reasonChronicity"] = "Persistent"
    if detailed_status:
        props["detailedStatus"] = detailed_status
    props["occuredTime"] = iso(now)
    props["reportedTime"] = iso(now)
    if recently_resolved:
        props["recentlyResolved"] = recently_resolved
    props["recommendedActions"] = list(recommended_actions or [])
    doc = {
        "id": status_id(resource_id),
        "name": "current",
        "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
        "location": (location or "").replace(" ", "").lower() or None,
        "properties": props,
    }
    if doc["location"] is None:
        del doc["location"]
    return doc


def vm_status_for(resource_id: str, location: str | None, condition: str, now: float, previous: dict | None = None) -> dict:
    """The status Resource Health reports for a VM in a given power state / transition.

    ``condition`` is a power state (running, stopped, ...) or a transition
    (restarting, redeploying, maintenance, deleting, creating).
    """
    if condition == "running":
        recently = None
        if previous and previous.get("properties", {}).get("availabilityState") not in (None, "Available"):
            pp = previous["properties"]
            recently = {
                "unavailableOccuredTime": pp.get("occuredTime"),
                "resolvedTime": iso(now),
                "unavailableSummary": pp.get("summary"),
            }
        return status_doc(
            resource_id,
            location,
            "Available",
            title="Available",
            summary=AVAILABLE_SUMMARY,
            now=now,
            context="Not Applicable",
            category="Not Applicable",
            recently_resolved=recently,
        )
    state, title, summary = USER_INITIATED.get(condition, USER_INITIATED["creating"])
    actions = [START_ACTION] if condition in ("stopped", "deallocated") else []
    return status_doc(
        resource_id,
        location,
        state,
        title=title,
        summary=summary,
        now=now,
        reason_type="UserInitiated" if state == "Unavailable" else None,
        context="Customer Initiated" if state == "Unavailable" else None,
        category="Not Applicable",
        recommended_actions=actions,
    )


def without_recommended_actions(doc: dict) -> dict:
    props = doc.get("properties")
    if not isinstance(props, dict) or "recommendedActions" not in props:
        return doc
    out = dict(doc)
    out["properties"] = {k: v for k, v in props.items() if k != "recommendedActions"}
    return out
