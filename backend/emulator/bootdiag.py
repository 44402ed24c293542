"""Boot diagnostics in the emulator: the retrieve action and the two blobs.

- ``POST .../virtualMachines/{vm}/retrieveBootDiagnosticsData[?sasUriExpirationTimeInMinutes=N]``
  answers ``{consoleScreenshotBlobUri, serialConsoleLogBlobUri}``: SAS-style
  HTTPS URLs on the emulator's own loopback address that expire (``se=``,
  on the emulator's clock, so ``/_emulator/advance`` expires them). A VM
  with boot diagnostics off gets 409 as from ARM. The action only reads:
  it is not counted as a write.
- ``GET /_emulator/storage/{account}/{container}/{blob}?sv=..&se=..&sig=..``
  serves the blobs as Blob Storage does: a SAS that is expired, tampered
  with or missing gets 403 with a storage-style XML error. The serial log
  is a page blob (the text, then NULs up to a 512-byte page); the
  screenshot a BMP the emulator draws with Pillow from the guest's console.
  Managed storage and a customer's storage account (``storageUri``) differ
  in the account name, as in Azure. The routes sit under ``/_emulator/``
  because a blob request carries a SAS, not ARM's bearer token.
- ``GET /_emulator/bootdiag``: counters for tests (blob requests, expired
  refusals, retrievals).

What the guest shows comes from the estate's guest facts: ``serial_log``
(the text of the boot the estate describes) and ``boot`` (ok,
emergency-fstab, fsck, stop-code:CODE). When ``boot`` changes (a rescue
repair sets it to ok), the log gains a new boot that shows it, and the
screenshot follows. A VM whose boot diagnostics were off at load and were
enabled since has no blobs until it starts again (404 BlobNotFound).

Importing this module registers it with every emulator started afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import os
import re
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from aiohttp import web

from . import compute, server
from .arm import ArmResponse, register_action
from .ids import ArmError, normalize_id
from .store import VM_TYPE, Store

log = logging.getLogger("aztriage.emulator.bootdiag")

DEFAULT_SAS_MINUTES = 120
SAS_VERSION = "2022-11-02"
PAGE = 512
STORAGE_PREFIX = "/_emulator/storage"
SCREEN_COLUMNS, SCREEN_ROWS = 80, 25
CELL_W, CELL_H = 8, 16
ACTION = "retrieveBootDiagnosticsData"
# Power operations after which a guest has booted (again).
BOOT_KINDS = {"create", "start", "restart", "redeploy", "performmaintenance", "reapply"}


@dataclass
class BootDiagState:
    key: bytes = field(default_factory=lambda: os.urandom(32))
    original_boot: dict[str, str] = field(default_factory=dict)  # vm id (lower) -> boot fact at load
    enabled_at_load: set[str] = field(default_factory=set)
    booted_since: set[str] = field(default_factory=set)  # started after load (boot diagnostics then capture)
    blobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # "account/container/blob" -> (vm id, kind)
    resources_seen: int = 0
    blob_requests: int = 0
    expired: int = 0
    retrievals: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"blob_requests": self.blob_requests, "expired": self.expired, "retrievals": self.retrievals}


_STATES: weakref.WeakKeyDictionary[Store, BootDiagState] = weakref.WeakKeyDictionary()


def _state(store: Store) -> BootDiagState:
    state = _STATES.get(store)
    if state is None:
        state = _STATES[store] = BootDiagState()
    if state.resources_seen != id(store.resources):
        # First use, or the store was reset to its estate: what was true at load is true again.
        # Read from the estate itself (never mutated), not the live store: a write may come before our first use.
        state.resources_seen = id(store.resources)
        estate = getattr(store, "_estate", None) or {}
        state.original_boot = {normalize_id(vm_id).lower(): str((facts or {}).get("boot") or "ok") for vm_id, facts in (estate.get("guest") or {}).items()}
        state.enabled_at_load = {
            normalize_id(doc["id"]).lower() for doc in estate.get("resources") or () if str(doc.get("type") or "").lower() == VM_TYPE and _enabled(doc)
        }
        state.booted_since = set()
    return state


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _boot_settings(doc: dict) -> dict:
    return (_props(doc).get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}


def _enabled(doc: dict) -> bool:
    return bool(_boot_settings(doc).get("enabled"))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_date(dt: datetime) -> str:
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


# --- naming -----------------------------------------------------------------------------------


def _account(doc: dict) -> tuple[str, bool]:
    """(storage account, is it the customer's) of a VM's boot diagnostics."""
    uri = _boot_settings(doc).get("storageUri")
    if uri:
        host = urlparse(uri).hostname or ""
        return host.split(".", 1)[0] or "customerstorage", True
    digest = hashlib.sha1(doc["id"].lower().encode()).hexdigest()
    return f"md-bootdiag-{digest[:10]}", False


def _names(store: Store, doc: dict) -> tuple[str, str, str]:
    """(container, serial log blob, screenshot blob) as Azure names them."""
    iv = store.peek_instance_view(doc["id"].lower()) if hasattr(store, "peek_instance_view") else {}
    given = (iv or {}).get("bootDiagnostics") or {}
    serial_uri = given.get("serialConsoleLogBlobUri")
    shot_uri = given.get("consoleScreenshotBlobUri")
    if serial_uri and shot_uri:
        serial_path = urlparse(serial_uri).path.strip("/").split("/", 1)
        shot_path = urlparse(shot_uri).path.strip("/").split("/", 1)
        if len(serial_path) == 2 and len(shot_path) == 2:
            return serial_path[0], serial_path[1], shot_path[1]
    name = doc.get("name") or "vm"
    vm_guid = _props(doc).get("vmId") or hashlib.md5(doc["id"].lower().encode()).hexdigest()
    container = f"bootdiagnostics-{name.replace('-', '').replace('_', '')[:9].lower()}-{vm_guid}"
    return container, f"{name}.{vm_guid}.serialconsole.log", f"{name}.{vm_guid}.screenshot.bmp"


def _sign(state: BootDiagState, path: str, start: str, expiry: str) -> str:
    mac = hmac.new(state.key, f"r\n{start}\n{expiry}\n/blob/{path}\n{SAS_VERSION}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def sas_url(base_url: str, state: BootDiagState, path: str, now: float, minutes: int) -> str:
    start = _iso(_utc(now - 300))
    expiry = _iso(_utc(now + minutes * 60))
    query = {"sv": SAS_VERSION, "st": start, "se": expiry, "sr": "b", "sp": "r", "sig": _sign(state, path, start, expiry)}
    return f"{base_url}{STORAGE_PREFIX}/{quote(path)}?{urlencode(query)}"


# --- the retrieve action ----------------------------------------------------------------------


def _retrieve(arm: Any, req: Any) -> ArmResponse:
    store: Store = arm.store
    doc = store.get(req.route.resource_id)
    if doc is None:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{req.route.resource_id}' was not found.")
    raw = req.query.get("sasuriexpirationtimeinminutes")
    minutes = DEFAULT_SAS_MINUTES
    if raw not in (None, ""):
        try:
            minutes = int(raw)
        except ValueError:
            minutes = 0
        if not 1 <= minutes <= 1440:
            raise ArmError(400, "InvalidParameter", "The value of parameter sasUriExpirationTimeInMinutes is invalid: it must be between 1 and 1440.")
    if not _enabled(doc):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Boot diagnostics are not enabled for the virtual machine '{doc.get('name')}'. Enable boot diagnostics "
            "(diagnosticsProfile.bootDiagnostics.enabled) and start the virtual machine to capture its serial log and screenshot.",
        )
    state = _state(store)
    state.retrievals += 1
    account, _custom = _account(doc)
    container, serial_blob, shot_blob = _names(store, doc)
    now = store.now()
    out = {}
    for key, blob, kind in (("consoleScreenshotBlobUri", shot_blob, "screenshot"), ("serialConsoleLogBlobUri", serial_blob, "serial")):
        path = f"{account}/{container}/{blob}"
        state.blobs[path] = (doc["id"], kind)
        out[key] = sas_url(req.base_url, state, path, now, minutes)
    return ArmResponse(200, out)


# --- what the guest shows -----------------------------------------------------------------------


def _image_for(doc: dict) -> dict:
    from .estates._common import IMAGES

    ref = (_props(doc).get("storageProfile") or {}).get("imageReference") or {}
    wanted = tuple(str(ref.get(k) or "").lower() for k in ("publisher", "offer", "sku"))
    for img in IMAGES.values():
        if tuple(str(img.get(k) or "").lower() for k in ("publisher", "offer", "sku")) == wanted:
            return img
    os_type = str(((_props(doc).get("storageProfile") or {}).get("osDisk") or {}).get("osType") or "Linux")
    return IMAGES["win2019" if os_type.lower() == "windows" else "ubuntu2204"]


def _private_ip(store: Store, doc: dict) -> str:
    from .guest import nic_facts

    for nic in nic_facts(store, doc):
        if nic.private_ip:
            return nic.private_ip
    return "10.0.0.4"


def _generated_log(store: Store, doc: dict, boot: str, facts: dict) -> str:
    from .estates.serial import serial_log

    return serial_log(
        name=doc.get("name") or "vm",
        image=_image_for(doc),
        private_ip=_private_ip(store, doc),
        boot=boot,
        boot_time=_utc(store.now()).replace(microsecond=0),
        agent_ready=compute.agent_ready(facts),
    )


def serial_text(store: Store, doc: dict) -> str | None:
    """The serial console log of a VM as the blob holds it now; None when there is none yet."""
    state = _state(store)
    vm_l = doc["id"].lower()
    if vm_l not in state.enabled_at_load and vm_l not in state.booted_since:
        return None  # enabled since load: nothing is captured until the VM boots
    facts = store.guest_facts(doc["id"])
    current = str(facts.get("boot") or "ok")
    original = state.original_boot.get(vm_l, current)
    if vm_l not in state.enabled_at_load:
        return _generated_log(store, doc, current, facts)
    text = facts.get("serial_log")
    if not isinstance(text, str) or not text:
        text = _generated_log(store, doc, original, facts)
    if current != original:
        # The guest boots differently now (a rescue repair): the log shows that boot after the old one.
        text = text.rstrip("\n") + "\n" + _generated_log(store, doc, current, facts)
    return text


def page_blob(text: str) -> bytes:
    data = text.encode("utf-8")
    pad = (-len(data)) % PAGE
    return data + b"\x00" * pad


# --- the screenshot -------------------------------------------------------------------------------


BLACK = (0, 0, 0)
GREY = (170, 170, 170)
WHITE = (255, 255, 255)
BSOD_BLUE = (0, 120, 215)
LOCK_BLUE = (10, 40, 80)


def _wrap(lines: list[str], width: int = SCREEN_COLUMNS) -> list[str]:
    out: list[str] = []
    for line in lines:
        line = line.expandtabs(8)
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return out


# What a terminal shows of the log: escape sequences act, other control characters show nothing.
_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][0-9A-B])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The first line of a boot: the kernel's banner (Linux), the boot manager (Windows).
_LINUX_START = re.compile(r"^\[\s*0\.0+\] Linux version ")
_WINDOWS_START = "Loading Windows Boot Manager"
_STOP_CODE = re.compile(r"^Stop code: ([A-Z0-9_]+)")


def _screen_lines(text: str) -> list[str]:
    text = _ESCAPE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_CONTROL.sub("", line).rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _last_boot(lines: list[str], os_type: str) -> list[str]:
    """The lines of the last boot in the log: a console shows only what this boot wrote."""
    if os_type.lower() == "windows":
        starts = [i for i, line in enumerate(lines) if line.startswith(_WINDOWS_START)]
    else:
        starts = [i for i, line in enumerate(lines) if _LINUX_START.match(line)]
    return lines[starts[-1] :] if starts else lines


def console_screen(os_type: str, boot: str, log_text: str) -> tuple[str, list[tuple[int, str, int]]]:
    """What the VM's console shows: (kind, [(row, text, scale)]) on an 80x25 text screen.
    The boot story decides: Linux shows the end of its last boot; Windows a stop screen
    (the estate's stop code, or one the last boot in the log shows), or the sign-in screen."""
    scope = _last_boot(_screen_lines(log_text), os_type)
    if os_type.lower() == "windows":
        code = boot.split(":", 1)[1] if boot.startswith("stop-code:") else None
        if code is None:
            code = next((m.group(1) for m in map(_STOP_CODE.match, reversed(scope)) if m), None)
        if code:
            return "bsod", [
                (3, ":(", 4),
                (9, "Your PC ran into a problem and needs to restart. We're", 1),
                (10, "just collecting some error info, and then we'll restart", 1),
                (11, "for you.", 1),
                (13, "100% complete", 1),
                (17, "For more information about this issue and possible fixes,", 1),
                (18, "visit https://www.windows.com/stopcode", 1),
                (20, "If you call a support person, give them this info:", 1),
                (21, f"Stop code: {code}", 1),
            ]
        when = next((line.split("Time:", 1)[1].strip() for line in scope if line.startswith("Time:")), "")
        clock = when[11:16] if len(when) >= 16 else "--:--"
        day = when[:10] if len(when) >= 10 else ""
        return "lock", [(5, clock, 4), (11, day, 2), (20, "Press Ctrl+Alt+Delete to sign in.", 1)]
    return "text", [(i, text, 1) for i, text in enumerate(_wrap(scope)[-(SCREEN_ROWS - 1) :])]


def draw_screenshot(os_type: str, boot: str, log_text: str) -> bytes:
    """The console as a BMP (Azure's screenshot format), drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    kind, rows = console_screen(os_type, boot, log_text)
    # The console's font has Latin-1 only (as a VGA text console has one code page): anything
    # else a guest writes (bidi controls, CJK) is drawn as "?", never a failed screenshot.
    rows = [(row, "".join(ch if ord(ch) <= 0xFF else "?" for ch in text), scale) for row, text, scale in rows]
    background, ink = {"bsod": (BSOD_BLUE, WHITE), "lock": (LOCK_BLUE, WHITE)}.get(kind, (BLACK, GREY))
    width, height = SCREEN_COLUMNS * CELL_W, SCREEN_ROWS * CELL_H
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default_imagefont()
    left = 4 * CELL_W if kind == "bsod" else (0 if kind == "text" else None)
    for row, text, scale in rows:
        if not text:
            continue
        if scale == 1:
            x = left if left is not None else (width - len(text) * CELL_W) // 2
            for col, ch in enumerate(text):
                if ch != " ":
                    draw.text((x + col * CELL_W + 1, row * CELL_H + 3), ch, font=font, fill=ink)
            continue
        glyphs = Image.new("RGB", (len(text) * CELL_W, CELL_H), background)
        small = ImageDraw.Draw(glyphs)
        for col, ch in enumerate(text):
            small.text((col * CELL_W + 1, 3), ch, font=font, fill=ink)
        big = glyphs.resize((glyphs.width * scale, glyphs.height * scale), Image.Resampling.NEAREST)
        x = left if left is not None else (width - big.width) // 2
        image.paste(big, (x, row * CELL_H))
    out = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(out, format="BMP")
    return out.getvalue()


# --- the blob routes -------------------------------------------------------------------------------


def _storage_error(status: int, code: str, message: str, detail: str | None = None) -> web.Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{os.urandom(8).hex()}\nTime:{_iso(datetime.now(UTC))}</Message>'
    if detail:
        body += f"<AuthenticationErrorDetail>{detail}</AuthenticationErrorDetail>"
    body += "</Error>"
    return web.Response(status=status, body=body.encode(), content_type="application/xml", headers={"x-ms-error-code": code})


def install(app: web.Application, store: Store) -> None:
    """Route extension: the blob data plane and the counters."""
    _state(store)  # what was true at load, before any request changes it

    def on_operation(_store: Store, op: Any) -> None:
        if op.status == "Succeeded" and str(op.kind or "").lower() in BOOT_KINDS and op.resource_id:
            _state(store).booted_since.add(normalize_id(op.resource_id).lower())

    if on_operation not in store.operation_listeners:
        store.operation_listeners.append(on_operation)

    async def blob(request: web.Request) -> web.StreamResponse:
        st = _state(store)
        st.blob_requests += 1
        if request.method.upper() not in ("GET", "HEAD"):
            return _storage_error(403, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.")
        path = request.match_info["path"]
        q = request.query
        sig, start, expiry = q.get("sig"), q.get("st", ""), q.get("se", "")
        if not sig:
            return _storage_error(404, "ResourceNotFound", "The specified resource does not exist.")
        if q.get("sv") != SAS_VERSION or not hmac.compare_digest(sig, _sign(st, path, start, expiry)):
            return _storage_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
                "Signature did not match.",
            )
        now = _utc(store.now())
        try:
            ends = datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            begins = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _storage_error(403, "AuthenticationFailed", "Server failed to authenticate the request.", "The signed expiry time is not valid.")
        if now > ends or now < begins:
            st.expired += 1
            return _storage_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
                f"Signature not valid in the specified time frame: Start [{_http_date(begins)}] - Expiry [{_http_date(ends)}] - Current [{_http_date(now)}]",
            )
        target = st.blobs.get(path)
        doc = store.get(target[0]) if target is not None else None
        if target is None or doc is None:
            return _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        store.apply_due()
        text = serial_text(store, doc)
        if text is None:
            return _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        if target[1] == "serial":
            data, ctype, blob_type = page_blob(text), "text/plain", "PageBlob"
        else:
            os_type = str(((_props(doc).get("storageProfile") or {}).get("osDisk") or {}).get("osType") or "Linux")
            boot = str(store.guest_facts(doc["id"]).get("boot") or "ok")
            data, ctype, blob_type = draw_screenshot(os_type, boot, text), "image/bmp", "BlockBlob"
        headers = {"x-ms-blob-type": blob_type, "x-ms-version": SAS_VERSION, "Last-Modified": _http_date(now)}
        if request.method.upper() == "HEAD":
            return web.Response(status=200, headers=headers | {"Content-Length": str(len(data))}, content_type=ctype)
        return web.Response(status=200, body=data, content_type=ctype, headers=headers)

    async def counters(request: web.Request) -> web.Response:
        return web.json_response(_state(store).to_json())

    app.router.add_route("*", STORAGE_PREFIX + "/{path:.+}", blob)
    app.router.add_get("/_emulator/bootdiag", counters)


register_action(VM_TYPE, ACTION, _retrieve)
server.READ_ACTIONS.add(ACTION.lower())
server.Emulator.add_routes(install)
