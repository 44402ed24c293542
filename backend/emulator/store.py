"""The emulator's state: ARM documents, instance views, Resource Health, operations, writes.

Design notes
- Resources are keyed by lower-cased id (ARM ids are case-insensitive) and
  indexed by (subscription, type) and (subscription, resource group, type), so
  a list of one type in one subscription never scans the whole estate.
- Documents from the estate are shared, never mutated: ``own(id)`` makes a
  private deep copy the first time a document is changed (copy-on-write), so
  loading a 60,000-document estate and ``reset()`` are cheap.
- Serialized list items are cached per document and whole lists per
  (subscription, type); a version counter per (subscription, type) invalidates
  them on any write.
- Long-running operations carry their start and end time; ``apply_due()``
  completes every operation whose end time has passed. The server calls it at
  the start of every request and on a background tick.

The store is not thread-safe: use it from the emulator's event loop (tests that
poke it in-process from another thread should only read it).
"""

from __future__ import annotations

import copy
import heapq
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from . import activitylog, changes, compute, health
from .ids import ArmError, build_id, normalize_id, parse_id
from .lro import Operation, iso

log = logging.getLogger("aztriage.emulator")

VM_TYPE = "microsoft.compute/virtualmachines"
RG_TYPE = "microsoft.resources/resourcegroups"
EXT_TYPE = "microsoft.compute/virtualmachines/extensions"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
_RH_MARK = "/providers/microsoft.resourcehealth/"


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def _dumpb(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def _fast_meta(rid: str) -> tuple[str, str, str, str | None] | None:
    """(sub_l, rg_l, type_l, parent_id) of a normalized resource id, or None for unusual ids."""
    segs = rid.split("/")
    n = len(segs)
    if n < 9 or n % 2 == 0 or segs[0] != "" or segs[1].lower() != "subscriptions":
        return None
    if segs[3].lower() != "resourcegroups" or segs[5].lower() != "providers":
        return None
    type_l = "/".join([segs[6]] + segs[7::2]).lower()
    parent = "/".join(segs[:-2]) if n > 9 else None
    return segs[2].lower(), segs[4].lower(), type_l, parent


def _status_changed(before: dict, after: dict) -> bool:
    b, a = before.get("properties") or {}, after.get("properties") or {}
    return (b.get("availabilityState"), b.get("title")) != (a.get("availabilityState"), a.get("title"))


def history_doc(doc: dict) -> dict:
    """An earlier status as the history list shows it: its own name instead of "current"."""
    if doc.get("name") != "current":
        return doc
    props = doc.get("properties") or {}
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{doc.get('id')}|{props.get('occuredTime')}|{props.get('title')}").hex
    rid = str(doc.get("id") or "")
    return dict(doc, id=rid[: rid.lower().rfind("/current")] + "/" + name, name=name)


class Store:
    def __init__(self, estate: dict, *, acceleration: float = 300.0):
        self._estate = estate or {}
        self.acceleration = float(acceleration) if acceleration and acceleration > 0 else 1.0
        self.clock_offset = 0.0
        # callables (store, op) run after any operation reaches a terminal state
        self.operation_listeners: list[Callable[[Store, Operation], None]] = []
        changes.install_listener(self)
        self.load()

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        return time.time() + self.clock_offset

    def estate_now(self) -> float:
        """The estate's own clock: the instant it was built for (its "now"), moving on from
        when it was loaded. Times the estate wrote (maintenance windows) are read on it, so a
        fixed-time estate behaves the same whatever the date. Without one, the wall clock."""
        if self._estate_epoch is None:
            return self.now()
        return self._estate_epoch + (time.time() - self._loaded_at) + (self.clock_offset - self._offset_at_load)

    def estate_offset(self) -> float:
        """now() minus estate_now(), worked out without reading the wall clock twice (two
        readings a microsecond apart made the same backup time differ between two answers)."""
        if self._estate_epoch is None:
            return 0.0
        return self._loaded_at + self._offset_at_load - self._estate_epoch

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward (tests) and complete what became due."""
        self.clock_offset += float(seconds)
        self.apply_due()

    def duration(self, nominal_s: float) -> float:
        return float(nominal_s) / self.acceleration

    # ------------------------------------------------------------------ load
    def load(self) -> None:
        """(Re)build all state from the initial estate. Estate documents are never mutated."""
        est = self._estate
        self._estate_epoch = compute.epoch(est.get("now"))
        self._loaded_at = time.time()  # a reset starts the estate clock again at the estate's "now"
        self._offset_at_load = self.clock_offset
        self.subscriptions: dict[str, dict] = {}
        self.resource_groups: dict[tuple[str, str], dict] = {}
        self.resources: dict[str, dict] = {}
        self._meta: dict[str, tuple[str, str, str]] = {}  # id_l -> (sub_l, rg_l, type_l)
        self._owned: set[str] = set()
        self._by_type: dict[tuple[str, str], dict[str, None]] = {}
        self._by_rg_type: dict[tuple[str, str, str], dict[str, None]] = {}
        self._by_rg: dict[tuple[str, str], dict[str, None]] = {}
        self._children: dict[str, dict[str, None]] = {}
        self.instance_views: dict[str, dict] = {}
        self.user_data: dict[str, str] = {}  # VM id_l -> userData (base64), returned only with $expand=userData
        self._iv_owned: set[str] = set()
        self.settled_power: dict[str, str] = {}
        self.statuses: dict[str, dict] = {}  # resource id_l -> availabilityStatuses/current doc
        self.status_history: dict[str, list[dict]] = {}  # resource id_l -> earlier statuses, oldest first
        self._status_by_sub: dict[str, dict[str, None]] = {}
        self.events: dict[str, list[dict]] = {}
        self._global_events: list[dict] = []
        self.guest: dict[str, dict] = {}
        self._guest_owned: set[str] = set()
        self.operations: dict[str, Operation] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self.writes: deque[dict] = deque(maxlen=100_000)
        self.activity: dict[str, list[dict]] = {}  # subscription (lower) -> activity-log EventData, newest first
        self.activity_pending: dict[str, dict] = {}  # long-running operation id -> its activity-log entry's fields
        self.resource_changes: list[dict] = list(est.get("resourceChanges", []) or [])  # ARG resourcechanges rows: the estate's, then each live write's
        self.changes_pending: dict[str, changes.Pending] = {}  # long-running operation id -> the write's snapshot before it
        self.deleted: list[dict] = []
        self._versions: dict[tuple, int] = {}
        self._json: dict[str, bytes] = {}
        self._json_status: dict[str, bytes] = {}
        self._status_json: dict[tuple[str, bool], bytes] = {}
        self._list_cache: dict[tuple, tuple[int, Any]] = {}

        for sub in est.get("subscriptions", []) or []:
            sid = sub.get("subscriptionId") or parse_id(sub["id"]).subscription
            doc = {
                "id": f"/subscriptions/{sid}",
                "authorizationSource": "RoleBased",
                "managedByTenants": [],
                "subscriptionId": sid,
                "tenantId": sub.get("tenantId", DEFAULT_TENANT),
                "displayName": sub.get("displayName", sid),
                "state": sub.get("state", "Enabled"),
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "PayAsYouGo_2014-09-01",
                    "spendingLimit": "Off",
                },
            }
            for k, v in sub.items():
                if k not in doc or k in ("subscriptionPolicies", "managedByTenants", "tags"):
                    doc[k] = v
            self.subscriptions[sid.lower()] = doc

        rg_docs = [dict(d, type=d.get("type") or "Microsoft.Resources/resourceGroups") for d in est.get("resourceGroups", []) or []]
        for doc in rg_docs + list(est.get("resources", []) or []):
            rid = normalize_id(doc["id"])
            rtype = doc.get("type") or parse_id(rid).type
            if rtype.lower() == RG_TYPE:
                p = parse_id(rid)
                rg = dict(doc)
                rg["id"] = build_id(p.subscription, p.resource_group, "", (), ())
                rg.setdefault("name", p.resource_group)
                rg.setdefault("type", "Microsoft.Resources/resourceGroups")
                rg["properties"] = dict(doc.get("properties") or {"provisioningState": "Succeeded"})
                self.resource_groups[(p.subscription.lower(), p.resource_group.lower())] = rg
                continue
            if rid != doc["id"] or rtype != doc.get("type"):
                doc = dict(doc, id=rid, type=rtype)
            if rtype.lower() == VM_TYPE:
                props = doc.get("properties") or {}
                if "instanceView" in props:
                    # shared with the estate until first use (instance_view() copies it)
                    self.instance_views[rid.lower()] = props["instanceView"]
                    doc = dict(doc)
                    doc["properties"] = {k: v for k, v in props.items() if k != "instanceView"}
                if "userData" in props:
                    # ARM returns userData only to GET ?$expand=userData: kept aside, never listed
                    self.user_data[rid.lower()] = props["userData"]
                    doc = dict(doc)
                    doc["properties"] = {k: v for k, v in doc["properties"].items() if k != "userData"}
            self._insert(doc, owned=False, loading=True)
            if rtype.lower() == VM_TYPE:
                # A VM's extensions are child resources in ARM (GET/PUT/DELETE .../extensions/NAME);
                # the estate writes them under the VM's "resources", as GET VM returns them.
                for ext in doc.get("resources") or ():
                    if (ext.get("type") or "").lower() == EXT_TYPE and ext.get("id"):
                        self._insert(dict(ext, id=normalize_id(ext["id"])), owned=False, loading=True)

        for facts_id, facts in (est.get("guest") or {}).items():
            self.guest[normalize_id(facts_id).lower()] = facts
        # Azure Backup: per Recovery Services vault, its protected items, policies, jobs and operations (backend/emulator/backup.py).
        self.backup: dict[str, dict] = {normalize_id(v).lower(): copy.deepcopy(state) for v, state in (est.get("backup") or {}).items()}
        # Why a VPN connection is down lives beside it, with the guests' facts (backend/emulator/netpath_ops.py).
        for connection_id, fact in (est.get("tunnels") or {}).items():
            self.guest[normalize_id(connection_id).lower()] = {"tunnel": fact}

        for st in est.get("availabilityStatuses", []) or []:
            sid_l = st.get("id", "").lower()
            cut = sid_l.find(_RH_MARK)
            if cut < 0:
                continue
            res_l = normalize_id(sid_l[:cut]).lower()
            self._store_status(res_l, st)

        for st in est.get("availabilityHistory", []) or []:
            sid_l = st.get("id", "").lower()
            cut = sid_l.find(_RH_MARK)
            if cut >= 0:
                self.status_history.setdefault(normalize_id(sid_l[:cut]).lower(), []).append(st)
        for past in self.status_history.values():
            past.sort(key=lambda d: activitylog.sort_key((d.get("properties") or {}).get("occuredTime")))

        for ev in est.get("events", []) or []:
            eid = ev.get("id", "")
            try:
                sub_l = parse_id(eid).subscription.lower()
            except ValueError:
                self._global_events.append(ev)
                continue
            self.events.setdefault(sub_l, []).append(ev)

        for ev in est.get("activityLog", []) or []:
            sub_l = str(ev.get("subscriptionId") or "").lower()
            if sub_l:
                self.activity.setdefault(sub_l, []).append(ev)
        for events in self.activity.values():
            events.sort(key=lambda e: activitylog.sort_key(e.get("eventTimestamp")), reverse=True)

        # every VM gets a Resource Health status matching its power state
        for (_sub_l, type_l), ids in self._by_type.items():
            if type_l != VM_TYPE:
                continue
            for vm_l in ids:
                if vm_l not in self.statuses:
                    self._store_status(vm_l, self.derived_status(vm_l))

    # -------------------------------------------------------------- indexes
    def _insert(self, doc: dict, *, owned: bool, loading: bool = False) -> str:
        rid_l = doc["id"].lower()
        if rid_l in self.resources:
            self.resources[rid_l] = doc
        else:
            fm = _fast_meta(doc["id"])
            if fm is not None:
                sub_l, rg_l, type_l, parent = fm
                if doc.get("type"):
                    type_l = doc["type"].lower()
            else:
                p = parse_id(doc["id"])
                sub_l, rg_l = p.subscription.lower(), p.resource_group.lower()
                type_l = (doc.get("type") or p.type).lower()
                parent = p.parent_id
            self._meta[rid_l] = (sub_l, rg_l, type_l)
            self.resources[rid_l] = doc
            self._by_type.setdefault((sub_l, type_l), {})[rid_l] = None
            self._by_rg_type.setdefault((sub_l, rg_l, type_l), {})[rid_l] = None
            self._by_rg.setdefault((sub_l, rg_l), {})[rid_l] = None
            if parent:
                self._children.setdefault(parent.lower(), {})[rid_l] = None
            if rg_l and (sub_l, rg_l) not in self.resource_groups:
                p = parse_id(doc["id"])
                self.resource_groups[(sub_l, rg_l)] = {
                    "id": build_id(p.subscription, p.resource_group, "", (), ()),
                    "name": p.resource_group,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": doc.get("location", "eastus"),
                    "properties": {"provisioningState": "Succeeded"},
                }
                self.bump((sub_l, "#rg"))
        if owned:
            self._owned.add(rid_l)
        else:
            self._owned.discard(rid_l)
        if not loading:
            self.touch(rid_l)
        return rid_l

    def meta(self, rid: str) -> tuple[str, str, str] | None:
        return self._meta.get(rid.lower())

    def touch(self, rid_l: str) -> None:
        """A document (or its instance view) changed: drop its caches, bump its list version."""
        self._json.pop(rid_l, None)
        self._json_status.pop(rid_l, None)
        m = self._meta.get(rid_l)
        if m:
            key = (m[0], m[2])
            self._versions[key] = self._versions.get(key, 0) + 1

    def bump(self, key: tuple) -> None:
        self._versions[key] = self._versions.get(key, 0) + 1

    # ------------------------------------------------------------ documents
    def get(self, rid: str) -> dict | None:
        return self.resources.get(normalize_id(rid).lower())

    def must(self, rid: str) -> dict:
        """The document of a resource the caller knows exists. KeyError if absent."""
        return self.resources[normalize_id(rid).lower()]

    def own(self, rid: str) -> dict:
        """The document, made private (copy-on-write) and marked changed. KeyError if absent."""
        rid_l = normalize_id(rid).lower()
        doc = self.resources[rid_l]
        if rid_l not in self._owned:
            doc = copy.deepcopy(doc)
            self.resources[rid_l] = doc
            self._owned.add(rid_l)
        self.touch(rid_l)
        return doc

    def put(self, doc: dict) -> str:
        """Insert or replace a document (the store takes ownership of ``doc``)."""
        doc["id"] = normalize_id(doc["id"])
        return self._insert(doc, owned=True)

    def remove(self, rid: str, *, reason: str = "delete") -> dict | None:
        """Delete a document and its child documents; they are kept in ``deleted``."""
        rid_l = normalize_id(rid).lower()
        doc = self.resources.get(rid_l)
        if doc is None:
            return None
        for child_l in list(self._children.get(rid_l, {})):
            self.remove(child_l, reason=reason)
        self.touch(rid_l)
        sub_l, rg_l, type_l = self._meta.pop(rid_l)
        del self.resources[rid_l]
        self._owned.discard(rid_l)
        self._by_type.get((sub_l, type_l), {}).pop(rid_l, None)
        self._by_rg_type.get((sub_l, rg_l, type_l), {}).pop(rid_l, None)
        self._by_rg.get((sub_l, rg_l), {}).pop(rid_l, None)
        self._children.pop(rid_l, None)
        parent = parse_id(doc["id"]).parent_id
        if parent:
            self._children.get(parent.lower(), {}).pop(rid_l, None)
        self.instance_views.pop(rid_l, None)
        self.user_data.pop(rid_l, None)
        self._iv_owned.discard(rid_l)
        self.settled_power.pop(rid_l, None)
        self.drop_status(rid_l)
        self.deleted.append({"id": doc["id"], "type": doc.get("type"), "deletedAt": iso(self.now()), "reason": reason, "doc": doc})
        return doc

    def ids_of_type(self, sub: str, rtype: str, rg: str | None = None) -> list[str]:
        if rg is None:
            return list(self._by_type.get((sub.lower(), rtype.lower()), {}))
        return list(self._by_rg_type.get((sub.lower(), rg.lower(), rtype.lower()), {}))

    def docs_of_type(self, sub: str, rtype: str, rg: str | None = None) -> list[dict]:
        res = self.resources
        return [res[i] for i in self.ids_of_type(sub, rtype, rg)]

    def ids_in_group(self, sub: str, rg: str) -> list[str]:
        return list(self._by_rg.get((sub.lower(), rg.lower()), {}))

    def children(self, rid: str) -> list[str]:
        return list(self._children.get(normalize_id(rid).lower(), {}))

    def all_of_type(self, rtype: str | None) -> list[dict]:
        if not rtype:
            return list(self.resources.values())
        t = rtype.lower()
        out: list[dict] = []
        for (_sub_l, type_l), ids in self._by_type.items():
            if type_l == t:
                out.extend(self.resources[i] for i in ids)
        return out

    # -------------------------------------------------------- subscriptions
    def subscription(self, sub: str) -> dict:
        doc = self.subscriptions.get(sub.lower())
        if doc is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return doc

    def resource_group(self, sub: str, rg: str) -> dict:
        self.subscription(sub)
        doc = self.resource_groups.get((sub.lower(), rg.lower()))
        if doc is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return doc

    def rg_deleting(self, sub: str, rg: str) -> bool:
        doc = self.resource_groups.get((sub.lower(), rg.lower()))
        return bool(doc and doc.get("properties", {}).get("provisioningState") == "Deleting")

    # ------------------------------------------------------- instance views
    def instance_view(self, vm_id: str) -> dict:
        """The VM's instance view (derived on first use). Call ``touch`` after changing it.

        Change it by (re)assigning its top-level keys only: nested values may be
        shared with the estate (an estate's instance view is copied shallowly).
        """
        vm_l = normalize_id(vm_id).lower()
        iv = self.instance_views.get(vm_l)
        if iv is None:
            doc = self.resources[vm_l]
            iv = compute.derive_instance_view(doc, self.guest.get(vm_l) or {}, self.now())
            self.instance_views[vm_l] = iv
            self._iv_owned.add(vm_l)
        elif vm_l not in self._iv_owned:
            iv = dict(iv)
            self.instance_views[vm_l] = iv
            self._iv_owned.add(vm_l)
        mrs = iv.get("maintenanceRedeployStatus")
        if mrs:
            # Azure allows customer-initiated maintenance only inside the self-service (pre-maintenance) window.
            allowed = compute.maintenance_allowed(mrs, self.estate_now())
            if mrs.get("isCustomerInitiatedMaintenanceAllowed") != allowed:
                iv["maintenanceRedeployStatus"] = {**mrs, "isCustomerInitiatedMaintenanceAllowed": allowed}
                self.touch(vm_l)
        return iv

    def peek_instance_view(self, vm_l: str) -> dict:
        """Read-only instance view (no copy)."""
        iv = self.instance_views.get(vm_l)
        return iv if iv is not None else self.instance_view(vm_l)

    def power_state(self, vm_id: str) -> str:
        return compute.power_of(self.peek_instance_view(normalize_id(vm_id).lower()))

    def settled(self, vm_id: str) -> str:
        """The last stable power state (running / stopped / deallocated)."""
        vm_l = normalize_id(vm_id).lower()
        s = self.settled_power.get(vm_l)
        if s is None:
            s = self.power_state(vm_l)
            if s in ("starting",):
                s = "running"
            elif s == "stopping":
                s = "stopped"
            elif s == "deallocating":
                s = "deallocated"
            self.settled_power[vm_l] = s
        return s

    def set_power(self, vm_id: str, state: str, *, settled: bool = False) -> None:
        vm_l = normalize_id(vm_id).lower()
        compute.set_power(self.instance_view(vm_l), state)
        if settled:
            self.settled_power[vm_l] = state
        self.touch(vm_l)

    def set_provisioning(self, rid: str, state: str, *, error: dict | None = None) -> None:
        """provisioningState on the document (and the instance view for VMs)."""
        rid_l = normalize_id(rid).lower()
        if rid_l not in self.resources:
            return
        doc = self.own(rid_l)
        doc.setdefault("properties", {})["provisioningState"] = state
        if self._meta[rid_l][2] == VM_TYPE:
            compute.set_provisioning_status(self.instance_view(rid_l), state, self.now(), error=error)

    def guest_facts(self, vm_id: str) -> dict:
        return self.guest.get(normalize_id(vm_id).lower()) or {}

    def own_guest(self, vm_id: str) -> dict:
        vm_l = normalize_id(vm_id).lower()
        if vm_l not in self._guest_owned:
            self.guest[vm_l] = copy.deepcopy(self.guest.get(vm_l) or {})
            self._guest_owned.add(vm_l)
        return self.guest[vm_l]

    # ------------------------------------------------------ resource health
    def _store_status(self, res_l: str, doc: dict) -> None:
        previous = self.statuses.get(res_l)
        if previous is not None and _status_changed(previous, doc):
            # Resource Health keeps the statuses a resource went through (availabilityStatuses list)
            self.status_history.setdefault(res_l, []).append(previous)
        self.statuses[res_l] = doc
        self._status_json.pop((res_l, True), None)
        self._status_json.pop((res_l, False), None)
        try:
            sub_l = parse_id(res_l).subscription.lower()
        except ValueError:
            return
        self._status_by_sub.setdefault(sub_l, {})[res_l] = None
        self.bump((sub_l, "#rh"))

    def drop_status(self, res_l: str) -> None:
        self._status_json.pop((res_l, True), None)
        self._status_json.pop((res_l, False), None)
        if self.statuses.pop(res_l, None) is not None:
            sub_l = parse_id(res_l).subscription.lower()
            self._status_by_sub.get(sub_l, {}).pop(res_l, None)
            self.bump((sub_l, "#rh"))

    def availability_status(self, rid: str) -> dict | None:
        """Stored status, or a derived one for an existing resource; None if the resource is unknown."""
        rid_l = normalize_id(rid).lower()
        st = self.statuses.get(rid_l)
        if st is not None:
            return st
        if rid_l not in self.resources:
            return None
        return self.derived_status(rid_l)

    def derived_status(self, rid_l: str) -> dict:
        doc = self.resources[rid_l]
        if self._meta[rid_l][2] == VM_TYPE:
            power = self.power_state(rid_l)
            return health.vm_status_for(doc["id"], doc.get("location"), power, self.now())
        return health.status_doc(
            doc["id"],
            doc.get("location"),
            "Available",
            title="Available",
            summary="There aren't any known Azure platform problems affecting this resource.",
            now=self.now(),
            context="Not Applicable",
            category="Not Applicable",
        )

    def set_vm_health(self, vm_id: str, condition: str) -> None:
        vm_l = normalize_id(vm_id).lower()
        doc = self.resources.get(vm_l)
        if doc is None:
            return
        prev = self.statuses.get(vm_l)
        self._store_status(vm_l, health.vm_status_for(doc["id"], doc.get("location"), condition, self.now(), prev))

    def availability_history(self, rid: str) -> list[dict]:
        """The resource's statuses, newest first: the current one, then those before it."""
        rid_l = normalize_id(rid).lower()
        current = self.availability_status(rid)
        past = [history_doc(d) for d in reversed(self.status_history.get(rid_l, []))]
        return ([current] if current is not None else []) + past

    def set_status_doc(self, rid: str, doc: dict) -> None:
        """Replace a resource's availability status (tests, later features)."""
        self._store_status(normalize_id(rid).lower(), doc)

    def status_ids(self, sub: str) -> list[str]:
        return list(self._status_by_sub.get(sub.lower(), {}))

    def impacted_resources(self, tracking_id: str) -> list[str]:
        """The resource ids an event lists as impacted (the estate's "impactedResources")."""
        return list((self._estate.get("impactedResources") or {}).get(tracking_id.lower()) or ())

    def location_of(self, resource_id: str) -> str:
        doc = self.resources.get(normalize_id(resource_id).lower()) or {}
        return "".join((doc.get("location") or "").split()).lower()

    def events_of(self, sub: str) -> list[dict]:
        return self.events.get(sub.lower(), []) + self._global_events

    # -------------------------------------------------------- serialization
    def item_json(self, rid_l: str) -> bytes:
        s = self._json.get(rid_l)
        if s is None:
            s = _dumpb(self.resources[rid_l])
            self._json[rid_l] = s
        return s

    def status_only_json(self, vm_l: str) -> bytes:
        """A VM as ``list_all(statusOnly=true)`` returns it: identity, provisioningState and statuses."""
        s = self._json_status.get(vm_l)
        if s is None:
            doc = self.resources[vm_l]
            props = doc.get("properties") or {}
            out_props: dict[str, Any] = {}
            if "vmId" in props:
                out_props["vmId"] = props["vmId"]
            if "provisioningState" in props:
                out_props["provisioningState"] = props["provisioningState"]
            out_props["instanceView"] = {"statuses": self.peek_instance_view(vm_l).get("statuses", [])}
            item = {"name": doc.get("name"), "id": doc["id"], "type": doc.get("type"), "location": doc.get("location")}
            item["properties"] = out_props
            s = _dumpb(item)
            self._json_status[vm_l] = s
        return s

    def status_json(self, res_l: str, expand: bool) -> bytes:
        """A stored availability status serialized, with or without recommendedActions."""
        key = (res_l, expand)
        s = self._status_json.get(key)
        if s is None:
            doc = self.statuses[res_l]
            s = _dumpb(doc if expand else health.without_recommended_actions(doc))
            self._status_json[key] = s
        return s

    def prewarm(self) -> None:
        """Serialize every document now, so the first inventory does not pay for it."""
        for rid_l, (_sub_l, _rg_l, type_l) in self._meta.items():
            self.item_json(rid_l)
            if type_l == VM_TYPE:
                self.status_only_json(rid_l)
        for res_l in self.statuses:
            self.status_json(res_l, True)

    def cached(self, key: tuple, version_key: tuple, build: Callable[[], Any]) -> Any:
        ver = self._versions.get(version_key, 0)
        hit = self._list_cache.get(key)
        if hit is not None and hit[0] == ver:
            return hit[1]
        value = build()
        self._list_cache[key] = (ver, value)
        return value

    # ----------------------------------------------------------- operations
    def start_operation(self, op: Operation) -> Operation:
        self.operations[op.id] = op
        self._seq += 1
        heapq.heappush(self._heap, (op.ends, self._seq, op.id))
        return op

    def preempt(self, group: str) -> None:
        """Cancel in-progress operations of a group (a newer operation supersedes them)."""
        now = self.now()
        for op in self.operations.values():
            if op.group == group and op.status == "InProgress":
                op.status = "Canceled"
                op.end_time = now
                op.error = {
                    "code": "OperationPreempted",
                    "message": "Operation execution has been preempted by a more recent operation.",
                }
                self._notify(op)

    def pending(self, group: str) -> list[Operation]:
        return [op for op in self.operations.values() if op.group == group and op.status == "InProgress"]

    def apply_due(self) -> int:
        """Complete every operation whose end time has passed. Returns how many completed."""
        if not self._heap:
            return 0
        now = self.now()
        n = 0
        while self._heap and self._heap[0][0] <= now:
            _, _, op_id = heapq.heappop(self._heap)
            op = self.operations.get(op_id)
            if op is None or op.status != "InProgress":
                continue
            self._finish(op)
            n += 1
        return n

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _finish(self, op: Operation) -> None:
        result = op.forced or "Succeeded"
        try:
            if result == "Succeeded":
                if op.on_success:
                    op.on_success(op)
            else:
                if result == "Failed":
                    op.error = op.forced_error or {
                        "code": "InternalExecutionError",
                        "message": "An internal execution error occurred. Please retry later.",
                    }
                else:
                    op.error = op.forced_error or {
                        "code": "OperationCanceled",
                        "message": "The operation was canceled.",
                    }
                if op.on_failure:
                    op.on_failure(op)
        except ArmError as exc:
            result = "Failed"
            op.error = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # an emulator bug must not kill the server
            log.exception("operation %s (%s) effect failed", op.id, op.kind)
            result = "Failed"
            op.error = {"code": "InternalExecutionError", "message": f"Emulator error: {exc}"}
        op.status = result
        op.end_time = op.ends
        self._notify(op)

    def _notify(self, op: Operation) -> None:
        for fn in list(self.operation_listeners):
            try:
                fn(self, op)
            except Exception:
                log.exception("operation listener failed")

    # --------------------------------------------------------------- writes
    def record_write(
        self,
        method: str,
        path: str,
        status: int,
        operation_id: str | None = None,
        caller: str = activitylog.DEMO_CALLER,
        *,
        before: changes.Pending | None = None,
        client: str = "",
    ) -> None:
        """One write answered: the write log, its activity-log entries and (with the snapshot
        taken before it, ``changes.snapshot``) its Resource Graph change."""
        self.writes.append({"method": method, "path": path, "status": status, "operation": operation_id, "t": self.now()})
        correlation = activitylog.record(self, method, path, status, operation_id, caller)
        changes.record(self, before, status, operation_id, caller, client, correlation or "")

    # ---------------------------------------------------------- activity log
    def add_activity(self, doc: dict) -> None:
        """One more activity-log entry: the newest of its subscription."""
        self.activity.setdefault(str(doc["subscriptionId"]).lower(), []).insert(0, doc)

    def activity_of(self, sub: str) -> list[dict]:
        return self.activity.get(sub.lower(), [])

    # ---------------------------------------------------------------- saved
    def settle(self, limit: int = 10_000) -> None:
        """Finish every operation still under way (the clock moves to each one's end)."""
        for _ in range(limit):
            due = self.next_due()
            if due is None:
                return
            self.advance(max(0.0, due - self.now()) + 0.001)

    def export_estate(self) -> dict:
        """The estate as it stands now, in the shape load() reads: the demo keeps its state
        from one command to the next (backend/demo_state.py). Operations under way are
        finished first; what the estate configures and never changes is carried over."""
        self.settle()
        estate = {
            k: v
            for k, v in self._estate.items()
            if k not in ("resources", "resourceGroups", "availabilityStatuses", "availabilityHistory", "activityLog", "guest", "tunnels", "backup")
        }
        if self._estate_epoch is not None:
            estate["now"] = iso(self.estate_now())
        resources = []
        for rid_l, doc in self.resources.items():
            doc = {k: v for k, v in doc.items() if k != "resources"}  # extensions are resources of their own below
            if rid_l in self.instance_views or rid_l in self.user_data:
                props = dict(doc.get("properties") or {})
                if rid_l in self.instance_views:
                    props["instanceView"] = self.instance_views[rid_l]
                if rid_l in self.user_data:
                    props["userData"] = self.user_data[rid_l]
                doc["properties"] = props
            resources.append(doc)
        estate["resources"] = resources
        estate["resourceGroups"] = list(self.resource_groups.values())
        estate["availabilityStatuses"] = list(self.statuses.values())
        estate["availabilityHistory"] = [doc for past in self.status_history.values() for doc in past]
        estate["activityLog"] = [event for events in self.activity.values() for event in events]
        estate["resourceChanges"] = list(self.resource_changes)
        guest = {rid: dict(facts) for rid, facts in self.guest.items()}  # VPN tunnels' facts live here too, as load() put them
        from . import bootdiag  # (imported here: it reads the store)

        for (_sub_l, type_l), ids in self._by_type.items():
            if type_l != VM_TYPE:
                continue
            for vm_l in ids:
                # The serial log blob as it is now (a repaired VM's log ends with its good boot) is what the next start holds.
                text = bootdiag.serial_text(self, self.resources[vm_l])
                if text and vm_l in guest:
                    guest[vm_l]["serial_log"] = text
        estate["guest"] = guest
        from . import backup  # (imported here: it reads the store)

        backup.settle(self)
        estate["backup"] = self.backup
        return json.loads(json.dumps(estate))  # a deep copy that holds only JSON

    # ----------------------------------------------------------------- dump
    def dump(self, rtype: str | None = None) -> dict:
        t = (rtype or "").lower()
        deleted = [d for d in self.deleted if not t or (d.get("type") or "").lower() == t]
        out: dict[str, Any] = {
            "resources": self.all_of_type(rtype),
            "deleted": deleted,
        }
        if not t or t == VM_TYPE:
            out["instanceViews"] = {d["id"]: self.instance_view(d["id"]) for d in self.all_of_type("Microsoft.Compute/virtualMachines")}
        if not t or t == RG_TYPE:
            out["resourceGroups"] = list(self.resource_groups.values())
        if not t:
            out["availabilityStatuses"] = list(self.statuses.values())
        return out

    def iter_operations(self) -> Iterable[Operation]:
        return self.operations.values()
