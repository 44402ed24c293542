"""What the in-place recoveries need from the emulator beyond the core ARM routes.

- ``GET .../virtualMachines/{vm}/vmSizes``: the sizes a VM can be resized to
  (all of the region's when it is deallocated, else those of its hardware
  family), from a small table of real sizes.
- Management locks at any scope (``{scope}/providers/Microsoft.Authorization/locks[/{name}]``):
  list (a resource's own locks and those it inherits), GET, PUT, DELETE; and
  ARM's enforcement: a ReadOnly lock makes every write under its scope fail
  with 409 ScopeLocked (start, stop and restart included: they are POSTs).
- Guest effects, so a demo guest answers again after the right fix:
  * run command: enabling RDP and its firewall rule fixes a silent or refused
    3389; SetRDPPort 3389 fixes a refused 3389; restarting sshd fixes a refused
    22; opening 22 in ufw/firewalld fixes a silent 22. A guest that did not
    boot has no running agent: the command fails as Azure's does.
  * VMAccess (extension PUT): Windows resets the RDP configuration (silent or
    refused 3389 answers again); Linux ``reset_ssh`` restarts sshd with the
    default configuration (refused 22 answers again).
- Resource Health already follows the power state in the core (compute.py).

Nothing here imports the Azure SDK. server.py registers ``recovery_routes``;
importing this module registers the vmSizes and runCommand actions.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from aiohttp import web

from . import compute
from .arm import ArmResponse, error_response, register_action
from .ids import ArmError, normalize_id, parse_id
from .store import Store

LOCK_TYPE = "Microsoft.Authorization/locks"
_LOCKS_MARK = "/providers/microsoft.authorization/locks"
WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")

# name: (vCPUs, memory GiB, max data disks, temporary disk GiB)
SIZES: dict[str, tuple[int, float, int, int]] = {
    "Standard_A1_v2": (1, 2, 2, 10),
    "Standard_A2_v2": (2, 4, 4, 20),
    "Standard_A4_v2": (4, 8, 8, 40),
    "Standard_B1s": (1, 1, 2, 4),
    "Standard_B1ms": (1, 2, 2, 4),
    "Standard_B2s": (2, 4, 4, 8),
    "Standard_B2ms": (2, 8, 4, 16),
    "Standard_B4ms": (4, 16, 8, 32),
    "Standard_DS1_v2": (1, 3.5, 4, 7),
    "Standard_DS2_v2": (2, 7, 8, 14),
    "Standard_DS3_v2": (4, 14, 16, 28),
    "Standard_D2_v3": (2, 8, 4, 50),
    "Standard_D4_v3": (4, 16, 8, 100),
    "Standard_D2s_v3": (2, 8, 4, 16),
    "Standard_D4s_v3": (4, 16, 8, 32),
    "Standard_D2_v5": (2, 8, 4, 0),
    "Standard_D2s_v5": (2, 8, 4, 0),
    "Standard_D4s_v5": (4, 16, 8, 0),
    "Standard_D8s_v5": (8, 32, 16, 0),
    "Standard_D2ds_v5": (2, 8, 4, 75),
    "Standard_D4ds_v5": (4, 16, 8, 150),
    "Standard_D2as_v5": (2, 8, 4, 0),
    "Standard_D4as_v5": (4, 16, 8, 0),
    "Standard_E2s_v5": (2, 16, 4, 0),
    "Standard_E4s_v5": (4, 32, 8, 0),
    "Standard_E8s_v5": (8, 64, 16, 0),
    "Standard_E16s_v5": (16, 128, 32, 0),
    "Standard_F2s_v2": (2, 4, 4, 16),
    "Standard_F4s_v2": (4, 8, 8, 32),
}


def size_doc(name: str) -> dict[str, Any]:
    cores, mem, disks, temp = SIZES[name]
    return {
        "name": name,
        "numberOfCores": cores,
        "osDiskSizeInMB": 1047552,
        "resourceDiskSizeInMB": temp * 1024,
        "memoryInMB": int(mem * 1024),
        "maxDataDiskCount": disks,
    }


_FAMILY = re.compile(r"^standard_([a-z]+?)\d+(?:-\d+)?[a-z]*(?:_(v\d+))?", re.IGNORECASE)


def _family(name: str) -> tuple[str, str]:
    m = _FAMILY.match(name)
    if not m:
        return name.lower(), ""
    return m.group(1).upper().rstrip("S") or m.group(1).upper(), (m.group(2) or "").lower()


def available_sizes(store: Store, vm_id: str) -> list[dict[str, Any]]:
    """A deallocated VM can take any size of the region; a running one those of its hardware family."""
    doc = store.get(vm_id) or {}
    current = ((doc.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize") or ""
    names = list(SIZES)
    if store.power_state(vm_id) != "deallocated":
        family = _family(current)
        names = [n for n in names if _family(n) == family]
    if current in SIZES and current not in names:
        names.insert(0, current)
    return [size_doc(n) for n in names]


def _vm_sizes(arm: Any, req: Any) -> ArmResponse:
    vm_id = req.route.resource_id
    if arm.store.get(vm_id) is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{vm_id}' was not found.")
    return ArmResponse(200, {"value": available_sizes(arm.store, vm_id)})


# --- guest effects -------------------------------------------------------------------


def _booted(guest: dict) -> bool:
    return str(guest.get("boot") or "ok").lower() == "ok"


def _ports(store: Store, vm_id: str) -> dict:
    guest = store.own_guest(vm_id)
    ports = guest.setdefault("ports", {})
    return ports


def _fix_port(store: Store, vm_id: str, port: str, fixes: tuple[str, ...], answer: str) -> bool:
    if not _booted(store.guest_facts(vm_id)):
        return False
    ports = _ports(store, vm_id)
    if ports.get(port) in fixes:
        ports[port] = answer
        store.touch(normalize_id(vm_id).lower())
        return True
    return False


def _script_text(body: dict) -> str:
    script = body.get("script") or []
    if isinstance(script, str):
        script = [script]
    return "\n".join(str(line) for line in script).lower()


_SET_VALUE = re.compile(r"set-itemproperty[^\n;]*-name (userauthentication|securitylayer) -value (\d)")
_WHEN_LAYER = re.compile(r"if \(\$\w+\.securitylayer -eq (\d)\) \{[^}]*-name securitylayer -value (\d)")


def _rdp_security_effect(store: Store, vm_id: str, text: str) -> str:
    """A PowerShell script that sets the RDP-Tcp listener's UserAuthentication / SecurityLayer
    (NLA on or off): the guest's listener answers the next connection with the new values. Its
    output says the values before and after, as the script writes them."""
    if not _booted(store.guest_facts(vm_id)):
        return ""
    guest = store.own_guest(vm_id)
    values = guest.setdefault("rdp_security", {})
    before = {"UserAuthentication": int(values.get("UserAuthentication", 1)), "SecurityLayer": int(values.get("SecurityLayer", 2))}
    conditional = _WHEN_LAYER.search(text)
    for name, value in _SET_VALUE.findall(text[: conditional.start()] if conditional else text):
        values["UserAuthentication" if name == "userauthentication" else "SecurityLayer"] = int(value)
    if conditional and before["SecurityLayer"] == int(conditional.group(1)):
        values["SecurityLayer"] = int(conditional.group(2))
    store.touch(normalize_id(vm_id).lower())
    after = {"UserAuthentication": values.get("UserAuthentication", 1), "SecurityLayer": values.get("SecurityLayer", 2)}
    return (
        f"before: UserAuthentication={before['UserAuthentication']} SecurityLayer={before['SecurityLayer']}\n"
        f"after: UserAuthentication={after['UserAuthentication']} SecurityLayer={after['SecurityLayer']}"
    )


def run_command_effect(store: Store, vm_id: str, body: dict) -> str:
    """Apply a run command's effect on the guest facts; returns a line for StdOut."""
    command = str(body.get("commandId") or "")
    text = _script_text(body)
    params = {str(p.get("name")).upper(): str(p.get("value")) for p in body.get("parameters") or [] if isinstance(p, dict)}
    if command == "RunPowerShellScript" and "userauthentication" in text:
        return _rdp_security_effect(store, vm_id, text)
    if command == "RunPowerShellScript" and ("fdenytsconnections" in text or "enable-netfirewallrule" in text):
        fixed = _fix_port(store, vm_id, "3389", ("silent", "refused"), "rdp")
        return "Remote Desktop enabled; firewall rule group Remote Desktop enabled" + ("" if fixed else " (no change)")
    if command == "SetRDPPort" and params.get("RDPPORT", "3389") == "3389":
        fixed = _fix_port(store, vm_id, "3389", ("refused",), "rdp")
        return "RDP port set to 3389 and allowed in the Windows firewall" + ("" if fixed else " (no change)")
    if command == "ResetRDPCert":
        return "RDP listener certificate removed; a new self-signed certificate will be created"
    if command == "RunShellScript" and ("restart sshd" in text or "restart ssh" in text):
        fixed = _fix_port(store, vm_id, "22", ("refused",), "ssh")
        return "active" if fixed or _ports(store, vm_id).get("22") == "ssh" else "inactive"
    if command == "RunShellScript" and ("ufw allow 22" in text or "add-service=ssh" in text):
        fixed = _fix_port(store, vm_id, "22", ("silent",), "ssh")
        return "port 22 open in the guest firewall" + ("" if fixed else " (no change)")
    return ""


def append_stdout(operation: Any, lines: list[str]) -> None:
    """Add `lines` to what a finished run command's StdOut status says."""
    if lines and isinstance(operation.result, dict):
        for status in operation.result.get("value") or []:
            if "StdOut" in (status.get("code") or ""):
                status["message"] = "\n".join(x for x in (status.get("message"), *lines) if x)


def _run_command(arm: Any, req: Any) -> ArmResponse:
    """POST runCommand: the core's run command, plus its effect on the guest when it succeeds."""
    store: Store = arm.store
    route = req.route
    doc = store.get(route.resource_id)
    if doc is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{route.resource_id}' was not found.")
    arm._check_writable(route.sub or "", route.rg)
    vm_id = doc["id"]
    body = req.body if isinstance(req.body, dict) else {}
    make = arm.operation_factory(req, vm_id, namespace="Microsoft.Compute", location=doc.get("location"))
    op = compute.vm_action(store, vm_id, "runCommand", req.body, make)
    core_success = op.on_success

    def success(operation: Any) -> None:
        if not _booted(store.guest_facts(vm_id)):
            raise ArmError(
                409,
                "VMAgentStatusCommunicationError",
                f"VM '{doc.get('name')}' has not reported status for VM agent or extensions. Verify that the OS is up and healthy, "
                "the VM has a running VM agent, and that it can establish outbound connections to Azure storage.",
            )
        if core_success is not None:
            core_success(operation)
        line = run_command_effect(store, vm_id, body)
        append_stdout(operation, [line] if line else [])

    op.on_success = success
    return arm.lro_response(req, op, 202)


def extension_effect(store: Store, op: Any) -> None:
    """After a VMAccess extension PUT succeeds: reset the guest's remote access."""
    if op.status != "Succeeded" or "/extensions/" not in (op.resource_id or "").lower():
        return
    ext = store.get(op.resource_id)
    if ext is None:
        return
    props = ext.get("properties") or {}
    ext_type = str(props.get("type") or "").lower()
    vm_id = parse_id(op.resource_id).parent_id or ""
    if store.get(vm_id) is None:
        return
    protected = props.get("protectedSettings") or {}
    if ext_type == "vmaccessagent":
        _fix_port(store, vm_id, "3389", ("silent", "refused"), "rdp")
    elif ext_type == "vmaccessforlinux" and protected.get("reset_ssh"):
        _fix_port(store, vm_id, "22", ("refused",), "ssh")
    if "protectedSettings" in props:
        # ARM never returns protected settings; the store keeps none once applied.
        doc = store.own(op.resource_id)
        doc.get("properties", {}).pop("protectedSettings", None)


# --- management locks --------------------------------------------------------------------


def lock_scope(lock_id: str) -> str:
    low = lock_id.lower()
    cut = low.find(_LOCKS_MARK)
    return normalize_id(lock_id[:cut]) if cut >= 0 else ""


def _covers(scope: str, target: str) -> bool:
    s, t = scope.lower().rstrip("/"), target.lower().rstrip("/")
    return t == s or t.startswith(s + "/")


def locks_over(store: Store, target: str) -> list[dict]:
    """Locks on `target` and on every scope above it (subscription, group, parent resources)."""
    return [doc for doc in store.all_of_type(LOCK_TYPE) if _covers(lock_scope(doc["id"]), target)]


def locks_under(store: Store, scope: str) -> list[dict]:
    return [doc for doc in store.all_of_type(LOCK_TYPE) if _covers(scope, lock_scope(doc["id"]))]


def _clean_scope(raw: str) -> str:
    # The SDK sends an empty parent path as '//': ARM reads it as one slash.
    return "/" + "/".join(s for s in raw.split("/") if s)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _target_of(path: str) -> str:
    """The resource a request acts on: an action or child collection path minus its last segment."""
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    if "providers" in low:
        i = len(low) - 1 - low[::-1].index("providers")
        tail = segs[i + 2 :]
        if len(tail) % 2 == 1:  # .../{type}/{name}/{action}
            segs = segs[:-1]
    return "/" + "/".join(segs)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k != "protectedSettings"}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _without_protected_settings(response: web.StreamResponse) -> web.StreamResponse:
    """ARM never returns an extension's protected settings (passwords, keys): neither does the emulator."""
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray)) or b"protectedSettings" not in body:
        return response
    try:
        doc = json.loads(body)
    except ValueError:
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    out = web.Response(status=response.status, body=json.dumps(_scrub(doc)).encode(), headers=headers)
    out.content_type = "application/json"
    return out


def recovery_routes(app: web.Application, store: Store) -> None:
    """Route extension (server.py): management locks, ScopeLocked, no protectedSettings in answers, VMAccess effects."""

    async def locks_list(request: web.Request) -> web.Response:
        scope = _clean_scope(request.match_info["scope"])
        try:
            parsed = parse_id(scope)
        except ValueError:
            return _json(404, {"error": {"code": "InvalidScope", "message": f"'{scope}' is not a valid scope."}})
        found = locks_over(store, scope)
        if not parsed.names:  # group or subscription level: also the locks below
            found += [d for d in locks_under(store, scope) if d not in found]
        return _json(200, {"value": found})

    async def lock_item(request: web.Request) -> web.Response:
        scope = _clean_scope(request.match_info["scope"])
        name = request.match_info["name"]
        lock_id = f"{scope}/providers/Microsoft.Authorization/locks/{name}"
        existing = store.get(lock_id)
        method = request.method.upper()
        if method == "GET":
            if existing is None:
                return _json(404, {"error": {"code": "LockNotFound", "message": f"The lock '{name}' could not be found."}})
            return _json(200, existing)
        if method == "DELETE":
            if existing is None:
                return web.Response(status=204)
            store.remove(lock_id, reason="delete")
            return web.Response(status=200)
        try:
            body = await request.json()
        except ValueError:
            return _json(400, {"error": {"code": "InvalidRequestContent", "message": "The request content was invalid."}})
        props = dict((body or {}).get("properties") or {})
        level = str(props.get("level") or "")
        if level.lower() not in ("readonly", "cannotdelete"):
            return _json(400, {"error": {"code": "LockLevelInvalid", "message": "The lock level must be 'CanNotDelete' or 'ReadOnly'."}})
        props["level"] = "ReadOnly" if level.lower() == "readonly" else "CanNotDelete"
        doc = {"id": lock_id, "name": name, "type": LOCK_TYPE, "properties": props}
        store.put(copy.deepcopy(doc))
        return _json(200 if existing else 201, doc)

    pattern = r"/{scope:(?i:subscriptions)/.+?}/providers/{ns:(?i:microsoft\.authorization)}/locks"
    app.router.add_get(pattern, locks_list)
    app.router.add_route("*", pattern + "/{name}", lock_item)

    @web.middleware
    async def scope_locked(request: web.Request, handler: Any) -> web.StreamResponse:
        path_l = request.path.lower()
        if request.method.upper() in WRITE_METHODS and path_l.startswith("/subscriptions/") and _LOCKS_MARK not in path_l:
            target = _target_of(request.path)
            read_only = [d for d in locks_over(store, target) if str((d.get("properties") or {}).get("level")).lower() == "readonly"]
            if read_only:
                scopes = ", ".join(f"'{lock_scope(d['id'])}'" for d in read_only)
                err = ArmError(
                    409,
                    "ScopeLocked",
                    f"The scope '{target}' cannot perform write operation because following scope(s) are locked: {scopes}. "
                    "Please remove the lock and try again.",
                )
                resp = error_response(err)
                return _json(resp.status, resp.body)
        response = await handler(request)
        return _without_protected_settings(response)

    app.middlewares.append(scope_locked)
    if extension_effect not in store.operation_listeners:
        store.operation_listeners.append(extension_effect)


register_action("Microsoft.Compute/virtualMachines", "vmSizes", _vm_sizes, method="GET")
register_action("Microsoft.Compute/virtualMachines", "runCommand", _run_command)
