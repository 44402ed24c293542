"""backend/health.py: the Health view the pane and `aztriage health` share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.health import health_view, pending_maintenance, service_events, unhealthy
from backend.models import Disk, EventUpdate, HealthStatus, ImpactedRegion, ImpactedService, Inventory, Maintenance, RecommendedAction, Subscription, Vm
from tests.support import service_event

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-00000000000a"
OTHER = "00000000-0000-0000-0000-00000000000b"


def vm(name, state="Available", reason=None, since_h=1.0, location="eastus", sub=SUB, maintenance=Maintenance(), actions=()):
    health = HealthStatus(
        availability_state=state,
        summary=f"{name} summary",
        reason_type=reason,
        since=NOW - timedelta(hours=since_h),
        recommended_actions=tuple(RecommendedAction(a) for a in actions),
    )
    return Vm(
        id=f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}",
        name=name,
        subscription_id=sub,
        resource_group="rg",
        location=location,
        size="Standard_B2s",
        os_type="Linux",
        power_state="running",
        provisioning_state="Succeeded",
        os_disk=Disk(name=f"{name}-os", id=None, sku="Premium_LRS", managed=True, delete_option="Detach"),
        health=health,
        maintenance=maintenance,
    )


def event(tracking, status="Active", level="Warning", etype="ServiceIssue", regions=("East US",), sub=SUB, updated_h=1):
    return service_event(
        tracking,
        f"event {tracking}",
        sub=sub,
        status=status,
        level=level,
        etype=etype,
        last_update=NOW - timedelta(hours=updated_h),
        impact=(ImpactedService("Virtual Machines", tuple(ImpactedRegion(r, updates=(EventUpdate("x", NOW),)) for r in regions)),),
    )


def inventory(vms, events=()):
    return Inventory(subscriptions=(Subscription(SUB, "prod"), Subscription(OTHER, "dev")), vms=tuple(vms), events=tuple(events))


def test_unhealthy_lists_only_not_available_worst_first():
    inv = inventory(
        [
            vm("fine"),
            vm("user-stopped", "Unavailable", "UserInitiated", since_h=9),
            vm("degraded", "Degraded", "Unplanned"),
            vm("crashed-late", "Unavailable", "Unplanned", since_h=1),
            vm("crashed-early", "Unavailable", "Unplanned", since_h=5),
            vm("unknown", "Unknown"),
            vm("planned", "Unavailable", "Planned"),
        ]
    )
    names = [row.vm.name for row in unhealthy(inv)]
    assert names == ["crashed-early", "crashed-late", "planned", "user-stopped", "degraded", "unknown"]


def test_events_count_my_vms_in_the_impacted_regions():
    inv = inventory(
        [vm("a", location="eastus"), vm("b", location="eastus"), vm("c", location="westeurope"), vm("d", location="eastus", sub=OTHER)],
        [event("T1", regions=("East US",)), event("T2", regions=("West Europe", "Japan East"), status="Resolved")],
    )
    rows = {r.id: r for r in service_events(inv)}
    # d is in East US but in a subscription that did not report T1.
    assert {v.name for v in rows["T1"].impacted_vms} == {"a", "b"}
    assert [v.name for v in rows["T2"].impacted_vms] == ["c"]


def test_event_reported_by_two_subscriptions_is_one_row_counting_both():
    inv = inventory(
        [vm("a"), vm("d", sub=OTHER)],
        [event("T1", sub=SUB), event("T1", sub=OTHER)],
    )
    rows = service_events(inv)
    assert len(rows) == 1
    assert {v.name for v in rows[0].impacted_vms} == {"a", "d"}


def test_events_active_and_severe_first():
    inv = inventory(
        [],
        [
            event("resolved-error", status="Resolved", level="Error"),
            event("active-info", level="Informational", etype="HealthAdvisory"),
            event("active-error", level="Error"),
            event("active-warning-maint", level="Warning", etype="PlannedMaintenance"),
        ],
    )
    assert [r.id for r in service_events(inv)] == ["active-error", "active-warning-maint", "active-info", "resolved-error"]


def test_maintenance_soonest_window_first():
    soon = Maintenance(self_service_allowed=True, window_start=NOW + timedelta(days=1), window_end=NOW + timedelta(days=3))
    later = Maintenance(self_service_allowed=False, maintenance_window_start=NOW + timedelta(days=5), maintenance_window_end=NOW + timedelta(days=6))
    done = Maintenance(self_service_allowed=True, window_start=NOW, last_result="MaintenanceCompleted")
    inv = inventory([vm("later", maintenance=later), vm("none"), vm("soon", maintenance=soon), vm("done", maintenance=done)])
    rows = pending_maintenance(inv)
    assert [r.vm.name for r in rows] == ["soon", "later"]
    assert rows[1].window_start == NOW + timedelta(days=5)


def test_json_shape_has_the_documented_keys():
    inv = inventory(
        [vm("bad", "Unavailable", "Unplanned", actions=("Restart the VM",)), vm("m", maintenance=Maintenance(self_service_allowed=True, window_start=NOW))],
        [event("T1")],
    )
    doc = health_view(inv).to_json()
    assert set(doc) == {"statuses", "events", "maintenance"}
    assert set(doc["statuses"][0]) == {"vm_id", "vm", "availability_state", "reason_type", "summary", "since", "recommended_actions", "verdict"}
    assert doc["statuses"][0]["verdict"]["id"] == "platform-incident"  # Unavailable inside active issue T1 in its region
    assert doc["statuses"][0]["verdict"]["incident"]["tracking_id"] == "T1"
    assert doc["statuses"][0]["reason_type"] == "unplanned"
    assert doc["statuses"][0]["recommended_actions"] == ["Restart the VM"]
    assert set(doc["events"][0]) == {
        "id",
        "type",
        "status",
        "level",
        "title",
        "regions",
        "services",
        "subscriptions",
        "impacted_vms",
        "impacted",
        "impacted_vm_names",
        "impact_start",
        "last_update",
        "updates",
    }
    assert doc["events"][0]["impacted_vms"] == 2 and doc["events"][0]["impacted"] == "in the region"
    assert doc["events"][0]["updates"] == [{"time": NOW.isoformat(), "summary": "x"}]
    assert set(doc["maintenance"][0]) == {"vm_id", "vm", "window_start", "window_end", "self_service_allowed"}


def test_updates_of_an_event_shared_by_subscriptions_and_services_are_listed_once_newest_first():
    ups = (EventUpdate("first", NOW - timedelta(hours=2)), EventUpdate("second", NOW - timedelta(hours=1)))
    regions = (ImpactedRegion("East US", updates=ups),)
    shared = [
        service_event("T1", "t", sub=sub, last_update=NOW, impact=(ImpactedService("Virtual Machines", regions), ImpactedService("Storage", regions)))
        for sub in (SUB, OTHER)
    ]
    assert [u.summary for u in shared[0].updates] == ["second", "first"]
    (row,) = service_events(inventory([vm("a")], shared))
    assert [u.summary for u in row.updates] == ["second", "first"]
    assert [u["summary"] for u in row.to_json()["updates"]] == ["second", "first"]


def test_my_vms_are_the_impacted_resources_azure_lists_where_it_lists_them():
    vms = [vm("a"), vm("b"), vm("c", location="westeurope")]
    listed = Inventory(subscriptions=(Subscription(SUB, "prod"),), vms=tuple(vms), events=(event("T1"), event("T2")), impacted={"t1": (vms[1].id.upper(),)})
    rows = {r.id: r for r in service_events(listed)}
    assert [v.name for v in rows["T1"].impacted_vms] == ["b"] and rows["T1"].listed
    assert {v.name for v in rows["T2"].impacted_vms} == {"a", "b"} and rows["T2"].impact_scope == "in the region"
