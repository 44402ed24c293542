"""ARM semantics of every emulated route, independent of the HTTP server.

``Arm.handle(ArmRequest) -> ArmResponse`` (or an awaitable of one when an
extension action handler is async). The aiohttp layer in ``server.py`` does
auth, faults, latency, statistics and turns ``ArmResponse`` into HTTP.

Extension points for later features:
- ``register_action(resource_type, action, fn, method="POST")``: handle
  ``POST .../{type}/{name}/{action}`` (e.g. retrieveBootDiagnosticsData); ``fn(arm, req)``
  returns an ArmResponse (or awaitable). Use ``arm.operation_factory`` and
  ``arm.lro_response`` to make it long-running.
- ``Store.operation_listeners``: called when any operation finishes.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from . import compute
from .ids import ArmError, location_key, normalize_id, parse_id
from .lro import DEFAULT_DURATION, DURATIONS, Operation, iso, new_operation_id
from .routing import Route
from .store import VM_TYPE, Store, _dumpb

ActionHandler = Callable[["Arm", "ArmRequest"], Any]
ACTION_HANDLERS: dict[tuple[str, str, str], ActionHandler] = {}


def register_action(resource_type: str, action: str, fn: ActionHandler, method: str = "POST") -> ActionHandler:
    """Serve ``METHOD .../{resource_type}/{name}/{action}`` with ``fn(arm, req)``."""
    ACTION_HANDLERS[(method.upper(), resource_type.lower(), action.lower())] = fn
    return fn


NAMESPACE_HANDLERS: dict[str, ActionHandler] = {}


def register_namespace(namespace: str, fn: ActionHandler) -> ActionHandler:
    """Serve every route below a top-level resource of ``namespace`` (a vault's protected items,
    jobs and operations) with ``fn(arm, req)``; the top-level resources stay generic."""
    NAMESPACE_HANDLERS[namespace.lower()] = fn
    return fn


WRITERS: dict[str, Callable[..., ArmResponse]] = {}


def register_writer(resource_type: str, fn: Callable[..., ArmResponse]) -> None:
    """Serve PUT (and PATCH) of ``resource_type`` with ``fn(arm, req, doc, existing)``: a resource
    whose write Azure validates or runs as a long-running operation (restore points)."""
    WRITERS[resource_type.lower()] = fn


VIEWS: dict[str, Callable[..., dict]] = {}


def register_view(resource_type: str, fn: Callable[..., dict]) -> None:
    """Serve GET of ``resource_type`` as ``fn(arm, req, doc)`` returns it: a resource whose GET
    adds what Azure expands on request (a restore point collection's ``$expand=restorePoints``)."""
    VIEWS[resource_type.lower()] = fn


DISK_T = "microsoft.compute/disks"
SNAPSHOT_T = "microsoft.compute/snapshots"
EXT_T = "microsoft.compute/virtualmachines/extensions"
NSG_T = "microsoft.network/networksecuritygroups"
PIP_T = "microsoft.network/publicipaddresses"
NIC_T = "microsoft.network/networkinterfaces"

# properties ARM computes and a PUT body does not carry: kept across updates
READONLY_PROPS = (
    "vmId",
    "timeCreated",
    "uniqueId",
    "diskState",
    "diskSizeBytes",
    "resourceGuid",
    "defaultSecurityRules",
    "macAddress",
    "virtualMachine",
    "ipConfiguration",
    "networkInterfaces",
    "provisioningState",
)
READONLY_TOP = ("managedBy",)


@dataclass
class ArmRequest:
    method: str
    path: str  # decoded path
    raw_path: str  # path as sent (percent-encoded), used for nextLink
    query: dict[str, str]  # keys lower-cased
    raw_query: str
    body: Any
    base_url: str  # https://127.0.0.1:PORT
    route: Route
    lro_result: str | None = None
    lro_error: dict | None = None
    operation_id: str | None = None


@dataclass
class ArmResponse:
    status: int
    body: Any = None  # dict/list -> JSON; bytes -> sent as is; None -> empty
    headers: dict[str, str] = field(default_factory=dict)


def error_response(exc: ArmError) -> ArmResponse:
    return ArmResponse(exc.status, exc.body(), dict(exc.headers))


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"skip:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("skip:"):
            raise ValueError(raw)
        off = int(raw[5:])
        if off < 0:
            raise ValueError(raw)
        return off
    except Exception:
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is invalid.") from None


def deep_merge(base: Any, patch: Any) -> Any:
    """JSON merge patch: dicts merge recursively, lists and scalars replace, null deletes."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _find_key(d: dict, key: str) -> str:
    kl = key.lower()
    for k in d:
        if k.lower() == kl:
            return k
    return key


NSG_DEFAULT_RULES = [
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork", "Allow inbound traffic from all VMs in VNET"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*", "Allow inbound traffic from azure load balancer"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*", "Deny all inbound traffic"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork", "Allow outbound traffic from all VMs to all VMs in VNET"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet", "Allow outbound traffic from all VMs to Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*", "Deny all outbound traffic"),
]


def default_security_rules(nsg_id: str) -> list[dict]:
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "description": desc,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": prio,
                "direction": direction,
                "provisioningState": "Succeeded",
            },
        }
        for name, prio, direction, access, src, dst, desc in NSG_DEFAULT_RULES
    ]


class Arm:
    def __init__(self, store: Store, *, page_size: int = 1000):
        self.store = store
        self.page_size = max(1, int(page_size))

    # ================================================================ dispatch
    def handle(self, req: ArmRequest) -> Any:
        try:
            r = req.route
            below = NAMESPACE_HANDLERS.get((r.ns or "").lower()) if len(r.types) > 1 else None
            if below is not None and r.kind in ("resource", "resource_sub"):
                return below(self, req)
            fn = getattr(self, "_r_" + req.route.kind, None)
            if fn is None:
                raise self._no_route(req)
            return fn(req)
        except ArmError as exc:
            return error_response(exc)

    def _no_route(self, req: ArmRequest) -> ArmError:
        r = req.route
        if r.ns:
            return ArmError(
                404,
                "InvalidResourceType",
                f"The resource type could not be found in the namespace '{r.ns}' for path '{req.path}'.",
            )
        return ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{req.path}'.")

    @staticmethod
    def _method(req: ArmRequest, *allowed: str) -> str:
        m = req.method.upper()
        if m not in allowed:
            raise ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{m}'.")
        return m

    # ================================================================ helpers
    def _check_scope(self, sub: str | None, rg: str | None = None) -> None:
        self.store.subscription(sub or "")
        if rg:
            self.store.resource_group(sub or "", rg)

    def _check_writable(self, sub: str, rg: str | None) -> None:
        sdoc = self.store.subscription(sub)
        if str(sdoc.get("state", "Enabled")).lower() in ("disabled", "deleted", "pastdue"):
            raise ArmError(
                409,
                "ReadOnlyDisabledSubscription",
                f"The subscription '{sub}' is disabled and therefore marked as read only. You cannot perform any "
                "write actions on this subscription until it is re-enabled.",
            )
        if rg and self.store.rg_deleting(sub, rg):
            raise ArmError(
                409,
                "ResourceGroupBeingDeleted",
                f"The resource group '{rg}' is in deprovisioning state and cannot perform this operation.",
            )

    @staticmethod
    def _not_found(r: Route) -> ArmError:
        path = (r.ns or "") + "".join(f"/{t}/{n}" for t, n in zip(r.types, r.names))
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{path}' under resource group '{r.rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    @staticmethod
    def _parent_not_found(r: Route) -> ArmError:
        return ArmError(
            404,
            "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource '{'/'.join(r.names[:-1])}' not found.",
        )

    def _body_object(self, req: ArmRequest) -> dict:
        if not isinstance(req.body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: expected a JSON object.",
            )
        return req.body

    # ----------------------------------------------------------------- paging
    def _page(self, req: ArmRequest, key: tuple, version_key: tuple, build: Callable[[], list[bytes]]) -> ArmResponse:
        items = self.store.cached(key, version_key, build)
        off = _decode_token(req.query.get("$skiptoken"))
        size = self.page_size
        end = off + size
        parts = [b'{"value":[', b",".join(items[off:end]), b"]"]
        if end < len(items):
            parts.append(b',"nextLink":' + json.dumps(self._next_link(req, end)).encode())
        parts.append(b"}")
        return ArmResponse(200, b"".join(parts))

    def _next_link(self, req: ArmRequest, offset: int) -> str:
        pairs = [(k, v) for k, v in parse_qsl(req.raw_query, keep_blank_values=True) if k.lower() != "$skiptoken"]
        pairs.append(("$skiptoken", _encode_token(offset)))
        return f"{req.base_url}{req.raw_path}?{urlencode(pairs, safe=chr(36) + chr(39) + '/')}"

    # ------------------------------------------------------------------- LRO
    def operation_factory(
        self,
        req: ArmRequest,
        resource_id: str,
        *,
        namespace: str,
        location: str | None,
        duration_key: str | None = None,
    ) -> Callable[..., Operation]:
        """A ``make_op(kind, *, group=None, on_success=None, on_failure=None)`` bound to this request."""
        store = self.store

        def make(kind: str, *, group: str | None = None, on_success=None, on_failure=None) -> Operation:
            now = store.now()
            nominal = DURATIONS.get((duration_key or kind).lower(), DEFAULT_DURATION)
            op = Operation(
                id=new_operation_id(),
                method=req.method.upper(),
                path=req.path,
                kind=kind,
                resource_id=resource_id,
                subscription=req.route.sub or "",
                namespace=namespace,
                location=location_key(location),
                started=now,
                ends=now + store.duration(nominal),
                forced=req.lro_result,
                forced_error=req.lro_error,
                group=group,
                on_success=on_success,
                on_failure=on_failure,
            )
            store.start_operation(op)
            req.operation_id = op.id
            return op

        return make

    def lro_headers(self, req: ArmRequest, op: Operation) -> dict[str, str]:
        base = f"{req.base_url}/subscriptions/{op.subscription}/providers/{op.namespace}/locations/{op.location}/operations/{op.id}"
        api = req.query.get("api-version") or "2026-04-01"
        return {
            "Azure-AsyncOperation": f"{base}?api-version={api}",
            "Location": f"{base}?monitor=true&api-version={api}",
        }

    def lro_response(self, req: ArmRequest, op: Operation, status: int, body: Any = None) -> ArmResponse:
        return ArmResponse(status, body, self.lro_headers(req, op))

    # ============================================================ subscriptions
    def _r_subscriptions(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        subs = self.store.subscriptions
        return self._page(req, ("subs",), ("#subs",), lambda: [_dumpb(s) for s in subs.values()])

    def _r_subscription(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        return ArmResponse(200, self.store.subscription(req.route.sub or ""))

    # =========================================================== resource groups
    def _r_rg_list(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        sub = req.route.sub or ""
        self.store.subscription(sub)
        sub_l = sub.lower()
        rgs = self.store.resource_groups
        return self._page(
            req,
            ("rgs", sub_l),
            (sub_l, "#rg"),
            lambda: [_dumpb(d) for (s, _), d in rgs.items() if s == sub_l],
        )

    def _r_rg(self, req: ArmRequest) -> ArmResponse:
        m = self._method(req, "GET", "HEAD", "PUT", "PATCH", "DELETE")
        r = req.route
        sub, rg = r.sub or "", r.rg or ""
        store = self.store
        store.subscription(sub)
        key = (sub.lower(), rg.lower())
        doc = store.resource_groups.get(key)
        if m == "HEAD":
            return ArmResponse(204 if doc else 404)
        if m == "GET":
            if doc is None:
                store.resource_group(sub, rg)
            return ArmResponse(200, doc)
        if m == "PUT":
            body = self._body_object(req)
            self._check_writable(sub, rg)
            if doc is None and not body.get("location"):
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            new = {
                "id": doc["id"] if doc else f"/subscriptions/{sub}/resourceGroups/{rg}",
                "name": doc["name"] if doc else rg,
                "type": "Microsoft.Resources/resourceGroups",
                "location": (doc or {}).get("location") or body.get("location"),
                "properties": {"provisioningState": "Succeeded"},
            }
            for k in ("tags", "managedBy"):
                if k in body:
                    new[k] = copy.deepcopy(body[k])
            store.resource_groups[key] = new
            store.bump((key[0], "#rg"))
            return ArmResponse(200 if doc else 201, new)
        if doc is None:
            doc = store.resource_group(sub, rg)  # raises ResourceGroupNotFound
        if m == "PATCH":
            body = self._body_object(req)
            self._check_writable(sub, rg)
            new = dict(doc)
            if "tags" in body:
                new["tags"] = copy.deepcopy(body["tags"])
            if "managedBy" in body:
                new["managedBy"] = body["managedBy"]
            store.resource_groups[key] = new
            store.bump((key[0], "#rg"))
            return ArmResponse(200, new)
        # DELETE: long-running; removes everything in the group when it completes
        self._check_writable(sub, None)
        pending = store.pending(f"rgdelete:{key[0]}/{key[1]}")
        make = self.operation_factory(req, doc["id"], namespace="Microsoft.Resources", location=doc.get("location"), duration_key="rg.delete")
        if pending:  # a second delete follows the first one
            op = make("delete")
            op.ends = pending[0].ends
            return self.lro_response(req, op, 202)
        new = dict(doc)
        new["properties"] = dict(doc.get("properties") or {}, provisioningState="Deleting")
        store.resource_groups[key] = new
        store.bump((key[0], "#rg"))

        def success(op: Operation) -> None:
            for rid_l in store.ids_in_group(sub, rg):
                if store.get(rid_l) is not None:
                    store.remove(rid_l, reason=f"resource group {rg} deleted")
            gone = store.resource_groups.pop(key, None)
            if gone is not None:
                store.deleted.append(
                    {"id": gone["id"], "type": "Microsoft.Resources/resourceGroups", "deletedAt": iso(store.now()), "reason": "delete", "doc": gone}
                )
            store.bump((key[0], "#rg"))

        def failure(op: Operation) -> None:
            cur = store.resource_groups.get(key)
            if cur is not None:
                cur = dict(cur)
                cur["properties"] = dict(cur.get("properties") or {}, provisioningState="Succeeded")
                store.resource_groups[key] = cur
                store.bump((key[0], "#rg"))

        op = make("delete", group=f"rgdelete:{key[0]}/{key[1]}", on_success=success, on_failure=failure)
        return self.lro_response(req, op, 202)

    # ================================================================ lists
    def _r_provider_list(self, req: ArmRequest) -> ArmResponse:
        r = req.route
        sub = r.sub or ""
        if req.method.upper() == "POST" and r.types[0].lower() == "register":
            self.store.subscription(sub)
            return ArmResponse(200, {"id": f"/subscriptions/{sub}/providers/{r.ns}", "namespace": r.ns, "registrationState": "Registered"})
        self._method(req, "GET")
        self.store.subscription(sub)
        sub_l, type_l = sub.lower(), r.type.lower()
        store = self.store
        if type_l == VM_TYPE and str(req.query.get("statusonly", "")).lower() == "true":
            return self._page(
                req,
                ("list", sub_l, type_l, "status"),
                (sub_l, type_l),
                lambda: [store.status_only_json(i) for i in store.ids_of_type(sub_l, type_l)],
            )
        return self._page(
            req,
            ("list", sub_l, type_l),
            (sub_l, type_l),
            lambda: [store.item_json(i) for i in store.ids_of_type(sub_l, type_l)],
        )

    def _r_rg_type_list(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        r = req.route
        sub, rg = r.sub or "", r.rg or ""
        self._check_scope(sub, rg)
        sub_l, rg_l, type_l = sub.lower(), rg.lower(), r.type.lower()
        store = self.store
        return self._page(
            req,
            ("rglist", sub_l, rg_l, type_l),
            (sub_l, type_l),
            lambda: [store.item_json(i) for i in store.ids_of_type(sub_l, type_l, rg_l)],
        )

    # ============================================================== resources
    @staticmethod
    def _embedded(r: Route) -> bool:
        """Network child resources live inside their parent document (securityRules, subnets, ...)."""
        return len(r.types) == 2 and (r.ns or "").lower() == "microsoft.network"

    def _r_resource(self, req: ArmRequest) -> ArmResponse:
        m = self._method(req, "GET", "HEAD", "PUT", "PATCH", "DELETE")
        r = req.route
        self._check_scope(r.sub, r.rg)
        store = self.store
        if len(r.types) >= 2:
            parent_id = parse_id(r.resource_id).parent_id or ""
            if store.get(parent_id) is None:
                if m == "DELETE":
                    return ArmResponse(204)
                raise self._parent_not_found(r)
            if self._embedded(r):
                return self._embedded_child(req, parent_id)
        rid = r.resource_id
        existing = store.get(rid)
        if m in ("GET", "HEAD"):
            if existing is None:
                raise self._not_found(r)
            if m == "HEAD":
                return ArmResponse(200)
            return ArmResponse(200, self._view(req, existing))
        if m == "DELETE":
            if existing is None:
                return ArmResponse(204)
            self._check_writable(r.sub or "", r.rg)
            return self._delete(req, existing)
        body = self._body_object(req)
        self._check_writable(r.sub or "", r.rg)
        if m == "PATCH":
            if existing is None:
                raise self._not_found(r)
            patch = dict(body)
            tags = patch.pop("tags", None)
            doc = deep_merge(existing, patch)
            if tags is not None:
                doc["tags"] = copy.deepcopy(tags)
            doc["id"], doc["name"], doc["type"] = existing["id"], existing["name"], existing.get("type") or r.type
            return self._write(req, doc, existing, patch=True)
        return self._write(req, self._build_doc(req, existing, body), existing, patch=False)

    def _view(self, req: ArmRequest, doc: dict) -> dict:
        """A resource as GET returns it (VMs: extensions under ``resources``, optional instance view)."""
        view = VIEWS.get((doc.get("type") or "").lower())
        if view is not None:
            return view(self, req, doc)
        if (doc.get("type") or "").lower() != VM_TYPE:
            return doc
        out = dict(doc)
        store = self.store
        exts = [store.get(c) for c in store.children(doc["id"])]
        exts = [e for e in exts if e and (e.get("type") or "").lower() == EXT_T]
        if exts:
            out["resources"] = exts
        else:
            out.pop("resources", None)
        expand = str(req.query.get("$expand", "")).lower()
        if "instanceview" in expand:
            out["properties"] = dict(doc.get("properties") or {})
            out["properties"]["instanceView"] = store.instance_view(doc["id"])
        user_data = store.user_data.get(doc["id"].lower())
        if "userdata" in expand and user_data is not None:
            out["properties"] = dict(out.get("properties") or {})
            out["properties"]["userData"] = user_data
        return out

    def _build_doc(self, req: ArmRequest, existing: dict | None, body: dict) -> dict:
        r = req.route
        rtype = existing.get("type") if existing else r.type
        doc: dict[str, Any] = {
            "id": existing["id"] if existing else r.resource_id,
            "name": existing["name"] if existing else r.names[-1],
            "type": rtype,
        }
        for k, v in body.items():
            if k not in ("id", "name", "type", "properties"):
                doc[k] = copy.deepcopy(v)
        if "location" not in doc:
            if existing and existing.get("location"):
                doc["location"] = existing["location"]
            elif len(r.types) == 1 or (rtype or "").lower() == EXT_T:
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        props = copy.deepcopy(body.get("properties") or {})
        if existing:
            old = existing.get("properties") or {}
            for k in READONLY_PROPS:
                if k in old and k not in props:
                    props[k] = copy.deepcopy(old[k])
            for k in READONLY_TOP:
                if k in existing and k not in doc:
                    doc[k] = copy.deepcopy(existing[k])
        doc["properties"] = props
        return doc

    def _write(self, req: ArmRequest, doc: dict, existing: dict | None, *, patch: bool) -> ArmResponse:
        t = (doc.get("type") or "").lower()
        writer = WRITERS.get(t)
        if writer is not None:
            return writer(self, req, doc, existing)
        if t == VM_TYPE:
            doc.pop("resources", None)  # extensions are child resources, echoed by GET only
            return self._vm_write(req, doc, existing, patch)
        if t in (DISK_T, SNAPSHOT_T):
            return self._disk_write(req, doc, existing, patch)
        if t == EXT_T:
            return self._ext_write(req, doc, existing, patch)
        if t == PIP_T:
            from . import netpath_ops

            return netpath_ops.write_public_ip(self, req, doc, existing)
        if t == NIC_T:
            from . import netpath_ops

            return netpath_ops.write_nic(self, req, doc, existing)
        store = self.store
        props = doc.setdefault("properties", {})
        if t == NSG_T and "defaultSecurityRules" not in props:
            props["defaultSecurityRules"] = default_security_rules(doc["id"])
        if t == NSG_T:
            from . import netpath_ops

            return netpath_ops.write_nsg(self, req, doc, existing)
        if not existing and t.startswith("microsoft.network/"):
            props.setdefault("resourceGuid", str(uuid.uuid4()))
        props["provisioningState"] = "Succeeded"
        store.put(doc)
        return ArmResponse(200 if existing else 201, doc)

    # -------------------------------------------------------------- VM writes
    def _vm_write(self, req: ArmRequest, doc: dict, existing: dict | None, patch: bool) -> ArmResponse:
        store = self.store
        rid = doc["id"]
        if existing is not None:
            compute.check_not_deleting(store, rid, "PATCH" if patch else "PUT")
        compute.prepare_vm_write(store, rid, doc, existing)
        props = doc["properties"]
        # userData is write-only: kept aside, returned only to GET ?$expand=userData (never in a
        # list or in a write's answer). A create without it has none; an update without it keeps it.
        if "userData" in props:
            user_data = props.pop("userData")
            if user_data:
                store.user_data[rid.lower()] = user_data
            else:
                store.user_data.pop(rid.lower(), None)
        elif existing is None:
            store.user_data.pop(rid.lower(), None)
        make = self.operation_factory(req, rid, namespace="Microsoft.Compute", location=doc.get("location"), duration_key="vm.patch" if patch else "vm.put")
        if existing is None:
            props["vmId"] = str(uuid.uuid4())
            props["timeCreated"] = iso(store.now())
            props["provisioningState"] = "Creating"
            props.pop("instanceView", None)
            store.put(doc)
            iv = compute.derive_instance_view(doc, store.guest_facts(rid), store.now())
            store.instance_views[rid.lower()] = iv
            store.set_power(rid, "starting")
            store.set_provisioning(rid, "Creating")
            store.settled_power[rid.lower()] = "deallocated"
            store.set_vm_health(rid, "creating")

            def settle(power: str, provisioning: str, error: dict | None = None) -> None:
                if store.get(rid) is None:  # deleted while it was being created
                    return
                compute.settle_power(store, rid, power)
                store.set_provisioning(rid, provisioning, error=error)
                store.set_vm_health(rid, power)

            def success(op: Operation) -> None:
                settle("running", "Succeeded")

            def failure(op: Operation) -> None:
                settle("deallocated", "Failed", op.error)

            op = make("create", group=f"vmwrite:{rid.lower()}", on_success=success, on_failure=failure)
            return self.lro_response(req, op, 201, doc)

        props.pop("instanceView", None)
        props["provisioningState"] = "Updating"
        store.put(doc)
        store.set_provisioning(rid, "Updating")

        def done(op: Operation) -> None:
            if store.get(rid) is None:
                return
            iv = store.instance_view(rid)
            now = store.now()
            cur = store.must(rid)
            iv["disks"] = [
                {
                    "name": ref.get("name") or compute.parse_id_name((ref.get("managedDisk") or {}).get("id")),
                    "statuses": [compute._prov_status("succeeded", now)],
                }
                for _, ref in compute.disk_refs(cur)
            ]
            store.set_provisioning(rid, "Succeeded")

        def failed(op: Operation) -> None:
            if store.get(rid) is not None:
                store.set_provisioning(rid, "Failed", error=op.error)

        op = make("update", group=f"vmwrite:{rid.lower()}", on_success=done, on_failure=failed)
        return self.lro_response(req, op, 200, doc)

    # ------------------------------------------------------------ disk writes
    def _disk_write(self, req: ArmRequest, doc: dict, existing: dict | None, patch: bool) -> ArmResponse:
        store = self.store
        rid = doc["id"]
        t = doc["type"].lower()
        is_snap = t == SNAPSHOT_T
        props = doc.setdefault("properties", {})
        if existing is None:
            cd = dict(props.get("creationData") or {})
            co = cd.get("createOption") or "Empty"
            source = None
            if co.lower() in ("copy", "restore", "copystart"):
                src_id = cd.get("sourceResourceId")
                if not src_id:
                    raise ArmError(400, "InvalidParameter", "creationData.sourceResourceId is required when createOption is Copy.")
                source = store.get(normalize_id(src_id))
                if "/diskrestorepoints/" in normalize_id(src_id).lower() or co.lower() == "restore":
                    from .restore_points import restore_source

                    source = restore_source(store, src_id, co)
                elif source is None:
                    raise ArmError(404, "NotFound", f"Resource '{normalize_id(src_id)}' was not found.")
                elif (source.get("type") or "").lower() not in (DISK_T, SNAPSHOT_T):
                    raise ArmError(400, "InvalidParameter", f"Resource '{source['id']}' is not a disk or a snapshot.")
            elif co.lower() == "empty" and not props.get("diskSizeGB"):
                raise ArmError(400, "InvalidParameter", "Required parameter 'diskSizeGB' is missing (null).")
            sku = (doc.get("sku") or {}).get("name")
            if is_snap and not sku:
                sku = "Standard_LRS"
            new = compute.new_disk_doc(
                store,
                rid,
                location=doc.get("location") or (source or {}).get("location") or "eastus",
                size_gb=props.get("diskSizeGB"),
                sku=sku,
                create_option=co,
                source=source,
                os_type=props.get("osType"),
                zones=doc.get("zones"),
                hyper_v=props.get("hyperVGeneration"),
            )
            computed = new["properties"]
            for k, v in props.items():
                if k not in ("creationData", "uniqueId", "timeCreated", "diskState", "provisioningState", "diskSizeBytes"):
                    computed[k] = copy.deepcopy(v)
            computed["creationData"] = dict(cd, **{k: v for k, v in computed["creationData"].items() if k == "sourceUniqueId"})
            if is_snap:
                new["type"] = "Microsoft.Compute/snapshots"
                computed.pop("diskState", None)
                computed.setdefault("incremental", False)
            for k, v in doc.items():
                if k not in ("id", "name", "type", "properties", "sku", "managedBy"):
                    new[k] = v
            doc = new
        else:
            doc.pop("managedBy", None)
            cur = existing.get("properties") or {}
            for k in ("creationData", "uniqueId", "timeCreated", "diskState"):
                if k in cur:
                    props[k] = copy.deepcopy(cur[k])
            if existing.get("managedBy"):
                doc["managedBy"] = existing["managedBy"]
            if "sku" not in doc and existing.get("sku"):
                doc["sku"] = copy.deepcopy(existing["sku"])
            size = props.get("diskSizeGB")
            if size:
                props["diskSizeBytes"] = int(size) * 1024**3
        doc["properties"]["provisioningState"] = "Updating"
        store.put(doc)
        kind = "create" if existing is None else "update"
        base = "snapshot" if is_snap else "disk"

        def success(op: Operation) -> None:
            if store.get(rid) is not None:
                store.set_provisioning(rid, "Succeeded")

        def failure(op: Operation) -> None:
            # As ARM does: the disk or snapshot stays, in the terminal state its operation
            # ended in (a resource's provisioningState matches its PUT's async status).
            if store.get(rid) is not None:
                store.set_provisioning(rid, "Canceled" if op.forced == "Canceled" else "Failed")

        make = self.operation_factory(
            req,
            rid,
            namespace="Microsoft.Compute",
            location=doc.get("location"),
            duration_key=f"{base}.{'patch' if patch else 'put'}",
        )
        op = make(kind, on_success=success, on_failure=failure)
        return self.lro_response(req, op, 202, doc)

    # ------------------------------------------------------- extension writes
    def _ext_write(self, req: ArmRequest, doc: dict, existing: dict | None, patch: bool) -> ArmResponse:
        store = self.store
        rid = doc["id"]
        vm_id = parse_id(rid).parent_id or ""
        compute.check_not_deleting(store, vm_id, "PUT extension")
        if store.power_state(vm_id) != "running":
            raise ArmError(
                409,
                "OperationNotAllowed",
                "Cannot modify extensions in the VM when the VM is not running.",
            )
        doc["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
        store.put(doc)

        def success(op: Operation) -> None:
            if store.get(rid) is None:
                return
            store.set_provisioning(rid, "Succeeded")
            cur = store.must(rid)
            p = cur.get("properties") or {}
            if store.get(vm_id) is None:
                return
            iv = store.instance_view(vm_id)
            exts = [e for e in iv.get("extensions") or [] if (e.get("name") or "").lower() != cur["name"].lower()]
            exts.append(
                {
                    "name": cur["name"],
                    "type": ".".join(x for x in (p.get("publisher"), p.get("type")) if x) or None,
                    "typeHandlerVersion": p.get("typeHandlerVersion"),
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded",
                            "level": "Info",
                            "displayStatus": "Provisioning succeeded",
                            "message": "Enable succeeded",
                        }
                    ],
                }
            )
            iv["extensions"] = exts
            store.touch(vm_id.lower())

        def failure(op: Operation) -> None:
            if store.get(rid) is not None:
                store.set_provisioning(rid, "Failed")

        make = self.operation_factory(
            req,
            rid,
            namespace="Microsoft.Compute",
            location=doc.get("location"),
            duration_key="extension.patch" if patch else "extension.put",
        )
        op = make("update" if existing else "create", on_success=success, on_failure=failure)
        return self.lro_response(req, op, 200 if (existing or patch) else 201, doc)

    # ----------------------------------------------------------------- delete
    def _delete(self, req: ArmRequest, doc: dict) -> ArmResponse:
        store = self.store
        rid = doc["id"]
        t = (doc.get("type") or "").lower()
        if t == VM_TYPE:
            return self._vm_delete(req, doc)
        if t in (DISK_T, SNAPSHOT_T, EXT_T):
            if t == DISK_T and doc.get("managedBy"):
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Disk {doc['name']} is attached to VM {doc['managedBy']}.",
                )
            if t == EXT_T:
                vm_id = parse_id(rid).parent_id or ""
                compute.check_not_deleting(store, vm_id, "DELETE extension")
            base = {DISK_T: "disk", SNAPSHOT_T: "snapshot", EXT_T: "extension"}[t]
            make = self.operation_factory(req, rid, namespace="Microsoft.Compute", location=doc.get("location"), duration_key=f"{base}.delete")
            store.set_provisioning(rid, "Deleting")

            def success(op: Operation) -> None:
                store.remove(rid, reason="delete")
                if t == EXT_T:
                    vm_id = parse_id(rid).parent_id or ""
                    if store.get(vm_id) is not None:
                        iv = store.instance_view(vm_id)
                        iv["extensions"] = [e for e in iv.get("extensions") or [] if (e.get("name") or "").lower() != doc["name"].lower()]
                        store.touch(vm_id.lower())

            def failure(op: Operation) -> None:
                if store.get(rid) is not None:
                    store.set_provisioning(rid, "Failed" if op.forced == "Failed" else "Succeeded")

            op = make("delete", on_success=success, on_failure=failure)
            return self.lro_response(req, op, 202)
        store.remove(rid, reason="delete")
        return ArmResponse(200)

    def _vm_delete(self, req: ArmRequest, doc: dict) -> ArmResponse:
        store = self.store
        rid = doc["id"]
        make = self.operation_factory(req, rid, namespace="Microsoft.Compute", location=doc.get("location"), duration_key="vm.delete")
        group = f"vmdelete:{rid.lower()}"
        pending = store.pending(group)
        if pending:
            op = make("delete")
            op.ends = pending[0].ends
            return self.lro_response(req, op, 202)
        store.preempt(f"power:{rid.lower()}")
        prev_power = store.settled(rid)
        store.set_provisioning(rid, "Deleting")
        if store.power_state(rid) not in ("deallocated", "stopped"):
            store.set_power(rid, "stopping")
        store.set_vm_health(rid, "deleting")

        def success(op: Operation) -> None:
            compute.delete_vm_now(store, rid)

        def failure(op: Operation) -> None:
            if store.get(rid) is None:
                return
            store.set_power(rid, prev_power, settled=True)
            store.set_provisioning(rid, "Failed" if op.forced == "Failed" else "Succeeded", error=op.error)
            store.set_vm_health(rid, prev_power)

        op = make("delete", group=group, on_success=success, on_failure=failure)
        return self.lro_response(req, op, 202)

    # ------------------------------------------------------ embedded children
    def _embedded_child(self, req: ArmRequest, parent_id: str) -> ArmResponse:
        r = req.route
        store = self.store
        m = req.method.upper()
        parent = store.must(parent_id)
        props = parent.get("properties") or {}
        coll_key = _find_key(props, r.types[-1])
        items = props.get(coll_key) or []
        name_l = r.names[-1].lower()
        idx = next((i for i, it in enumerate(items) if (it.get("name") or "").lower() == name_l), None)
        if m in ("GET", "HEAD"):
            if idx is None:
                raise self._not_found(r)
            return ArmResponse(200, items[idx] if m == "GET" else None)
        self._check_writable(r.sub or "", r.rg)
        if (parent.get("type") or "").lower() == NSG_T and r.types[-1].lower() == "securityrules" and m in ("PUT", "DELETE"):
            from . import nsg_ops

            write = nsg_ops.put_rule if m == "PUT" else nsg_ops.delete_rule
            return write(self, req, parent_id, items, idx)
        if m == "DELETE":
            if idx is None:
                return ArmResponse(204)
            p = store.own(parent_id)
            del p["properties"][coll_key][idx]
            return ArmResponse(200)
        body = self._body_object(req)
        if m == "PATCH":
            if idx is None:
                raise self._not_found(r)
            item = deep_merge(items[idx], {k: v for k, v in body.items() if k not in ("id", "name", "type")})
        else:
            item = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("id", "name", "type", "properties")}
            item["properties"] = copy.deepcopy(body.get("properties") or {})
        item["name"] = items[idx]["name"] if idx is not None else r.names[-1]
        item["id"] = f"{parent['id']}/{r.types[-1]}/{item['name']}"
        item["type"] = f"{parent.get('type')}/{r.types[-1]}"
        item.setdefault("properties", {})["provisioningState"] = "Succeeded"
        p = store.own(parent_id)
        lst = p.setdefault("properties", {}).setdefault(coll_key, [])
        if idx is None:
            lst.append(item)
            return ArmResponse(201, item)
        lst[idx] = item
        return ArmResponse(200, item)

    # -------------------------------------------- actions, instanceView, lists
    def _r_resource_sub(self, req: ArmRequest) -> Any:
        r = req.route
        m = req.method.upper()
        self._check_scope(r.sub, r.rg)
        store = self.store
        rid = r.resource_id
        doc = store.get(rid)
        if doc is None:
            raise self._not_found(r)
        t = (doc.get("type") or r.type).lower()
        last = r.last or ""
        handler = ACTION_HANDLERS.get((m, t, last.lower()))
        if handler is not None:
            return handler(self, req)
        if m == "POST":
            if t != VM_TYPE:
                raise self._no_route(req)
            self._check_writable(r.sub or "", r.rg)
            make = self.operation_factory(req, doc["id"], namespace="Microsoft.Compute", location=doc.get("location"))
            op = compute.vm_action(store, doc["id"], last, req.body, make)
            return self.lro_response(req, op, 202)
        self._method(req, "GET")
        if t == VM_TYPE and last.lower() == "instanceview":
            return ArmResponse(200, store.instance_view(doc["id"]))
        if (r.ns or "").lower() == "microsoft.network":
            props = doc.get("properties") or {}
            return ArmResponse(200, {"value": props.get(_find_key(props, last)) or []})
        child_t = f"{t}/{last.lower()}"
        kids = [store.get(c) for c in store.children(doc["id"])]
        return ArmResponse(200, {"value": [k for k in kids if k and (k.get("type") or "").lower() == child_t]})

    # ============================================================ operations
    def _r_operation(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        op = self.store.operations.get(req.route.op_id or "")
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{req.route.op_id}' was not found.")
        if str(req.query.get("monitor", "")).lower() == "true":
            if not op.done:
                url = f"{req.base_url}{req.raw_path}" + (f"?{req.raw_query}" if req.raw_query else "")
                return ArmResponse(202, None, {"Location": url})
            if op.status == "Succeeded":
                return ArmResponse(200, op.result) if op.result is not None else ArmResponse(204)
            err = op.error or {"code": op.status, "message": f"The operation {op.status.lower()}."}
            raise ArmError(400 if op.status == "Failed" else 409, err.get("code", op.status), err.get("message", ""))
        return ArmResponse(200, op.status_body())

    # ========================================================= resource health
    def _rh_list(self, req: ArmRequest, rg: str | None) -> ArmResponse:
        self._method(req, "GET")
        sub = req.route.sub or ""
        self._check_scope(sub, rg)
        store = self.store
        sub_l, rg_l = sub.lower(), (rg or "").lower()
        flt = req.query.get("$filter") or ""
        mt = re.search(r"resourcetype\s+eq\s+'([^']+)'", flt, re.I)
        ftype = mt.group(1).lower() if mt else None
        expand = "recommendedactions" in str(req.query.get("$expand", "")).lower()

        def build() -> list[bytes]:
            out: list[bytes] = []
            for res_l in store.status_ids(sub_l):
                if rg_l or ftype:
                    meta = store.meta(res_l)
                    if meta is None:
                        try:
                            p = parse_id(res_l)
                        except ValueError:
                            continue
                        meta = (p.subscription.lower(), p.resource_group.lower(), p.type.lower())
                    if rg_l and meta[1] != rg_l:
                        continue
                    if ftype and meta[2] != ftype:
                        continue
                out.append(store.status_json(res_l, expand))
            return out

        return self._page(req, ("rh", sub_l, rg_l, ftype, expand), (sub_l, "#rh"), build)

    def _r_rh_list(self, req: ArmRequest) -> ArmResponse:
        return self._rh_list(req, None)

    def _r_rh_rg_list(self, req: ArmRequest) -> ArmResponse:
        return self._rh_list(req, req.route.rg)

    def _rh_current_doc(self, req: ArmRequest) -> dict:
        r = req.route
        self._check_scope(r.sub, r.rg)
        rid = normalize_id(r.resource_path or "")
        st = self.store.availability_status(rid)
        if st is None:
            raise ArmError(404, "ResourceNotFound", f"The resource '{rid}' was not found.")
        if "recommendedactions" not in str(req.query.get("$expand", "")).lower():
            from .health import without_recommended_actions

            st = without_recommended_actions(st)
        return st

    def _r_rh_current(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        return ArmResponse(200, self._rh_current_doc(req))

    def _r_rh_history(self, req: ArmRequest) -> ArmResponse:
        """AvailabilityStatuses_List of one resource: the current status, then the ones before it."""
        self._method(req, "GET")
        current = self._rh_current_doc(req)
        past = self.store.availability_history(normalize_id(req.route.resource_path or ""))[1:]
        if "recommendedactions" not in str(req.query.get("$expand", "")).lower():
            from .health import without_recommended_actions

            past = [without_recommended_actions(d) for d in past]
        return ArmResponse(200, {"value": [current, *past]})

    def _r_rh_events(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        sub = req.route.sub or ""
        self.store.subscription(sub)
        events = self.store.events_of(sub)
        return self._page(req, ("ev", sub.lower()), (sub.lower(), "#ev"), lambda: [_dumpb(e) for e in events])

    def _find_event(self, req: ArmRequest) -> dict:
        sub = req.route.sub or ""
        self.store.subscription(sub)
        tid = (req.route.tracking_id or "").lower()
        for ev in self.store.events_of(sub):
            if (ev.get("name") or "").lower() == tid or (ev.get("id") or "").lower().endswith("/" + tid):
                return ev
        raise ArmError(404, "NotFound", f"The event '{req.route.tracking_id}' was not found.")

    def _r_rh_event(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        return ArmResponse(200, self._find_event(req))

    def _r_rh_event_details(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "POST")
        return ArmResponse(200, self._find_event(req))

    def _r_rh_impacted(self, req: ArmRequest) -> ArmResponse:
        """Resource Health's impactedResources of one event: this subscription's resources the
        event lists (ImpactedResources_ListBySubscriptionId_ListByEventId). An event that lists
        none answers an empty list."""
        self._method(req, "GET")
        event = self._find_event(req)
        sub = (req.route.sub or "").lower()
        tid = event.get("name") or req.route.tracking_id or ""
        items = []
        for target in self.store.impacted_resources(tid):
            try:
                parsed = parse_id(target)
            except ValueError:
                continue
            if parsed.subscription.lower() != sub:
                continue
            name = uuid.uuid5(uuid.NAMESPACE_URL, f"{tid}|{target.lower()}").hex
            items.append(
                _dumpb(
                    {
                        "id": f"/subscriptions/{req.route.sub}/providers/Microsoft.ResourceHealth/events/{tid}/impactedResources/{name}",
                        "name": name,
                        "type": "Microsoft.ResourceHealth/events/impactedResources",
                        "properties": {
                            "targetResourceType": "Microsoft.Compute/VirtualMachines",
                            "targetResourceId": target,
                            "targetRegion": self.store.location_of(target),
                        },
                    }
                )
            )
        return self._page(req, ("impacted", sub, tid.lower()), (sub, "#ev"), lambda: items)

    def _r_rh_resource_events(self, req: ArmRequest) -> ArmResponse:
        self._method(req, "GET")
        r = req.route
        self._check_scope(r.sub, r.rg)
        return ArmResponse(200, {"value": []})

    def _r_unknown(self, req: ArmRequest) -> ArmResponse:
        raise self._no_route(req)
