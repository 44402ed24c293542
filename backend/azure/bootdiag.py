"""Boot diagnostics on the real adapter: the serial console log and the
console screenshot of a VM.

Compute's retrieve-boot-diagnostics-data action (``POST
.../retrieveBootDiagnosticsData``, read as raw JSON through the adapter's
pipeline, ``lists.raw_get``) gives two short-lived SAS URLs, for managed
storage and for a customer's storage account alike;
the two blobs are then read over HTTPS through the adapter's own session,
which trusts the same CA as the ARM calls. The URLs are kept per VM until
they expire, so a refresh costs two blob reads; when Blob Storage says a SAS
is no longer valid (403 AuthenticationFailed: expired, or a clock ahead of
ours), the URLs are fetched again once and the read is retried.

A SAS URL is a credential: it is never logged, shown or kept on disk; error
messages name the blob without its query string.

Functions take the ``AzureBackend``; nothing here imports the Azure SDK.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from backend.errors import BackendError, BootDiagnosticsOff
from backend.mapping import parse_time
from backend.models import BootDiagnosticsData, ResourceId
from backend.safetext import safe_line

log = logging.getLogger("aztriage.azure.bootdiag")

SAS_MINUTES = 30  # how long the URLs we ask for live (ARM allows 1 to 1440; its default is 120)
EXPIRY_MARGIN_S = 60.0  # a cached URL this close to its expiry is not used
MAX_BLOB_BYTES = 32 * 1024 * 1024
BLOB_TIMEOUT_S = 30.0

ENABLE_PATCH = {"properties": {"diagnosticsProfile": {"bootDiagnostics": {"enabled": True}}}}


@dataclass(frozen=True)
class SasUris:
    serial_log: str
    screenshot: str
    expires_at: float | None  # epoch seconds, from the URLs' se= (None: unknown)
    fetched_at: float

    def fresh(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or time.time()) < self.expires_at - EXPIRY_MARGIN_S


# Per adapter instance: vm id (lower) -> the last URLs.
_CACHE: weakref.WeakKeyDictionary[Any, dict[str, SasUris]] = weakref.WeakKeyDictionary()


def _cache(backend: Any) -> dict[str, SasUris]:
    return _CACHE.setdefault(backend, {})


def forget(backend: Any, vm_id: str | None = None) -> None:
    """Drop the cached URLs (of one VM, or all)."""
    cache = _cache(backend)
    if vm_id is None:
        cache.clear()
    else:
        cache.pop(vm_id.lower(), None)


def redact(url: str) -> str:
    """A blob URL without its SAS (query string)."""
    p = urlparse(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def _expiry(url: str) -> float | None:
    values = parse_qs(urlparse(url).query).get("se")
    expires = parse_time(values[0]) if values else None
    return expires.timestamp() if expires else None


def _vm_parts(vm_id: str) -> tuple[str, str, str]:
    rid = ResourceId.parse(vm_id)
    if not rid.resource_group or not rid.name or rid.type.lower() != "virtualmachines":
        raise BackendError(f"{vm_id} is not a virtual machine id")
    return rid.subscription_id, rid.resource_group, rid.name


def storage_label(boot_settings: dict[str, Any] | None) -> str:
    uri = (boot_settings or {}).get("storageUri") or (boot_settings or {}).get("storage_uri")
    if uri:
        host = urlparse(uri).hostname or uri
        return f"storage account {host.split('.', 1)[0]}"
    return "managed storage"


async def retrieve_uris(backend: Any, vm_id: str, *, minutes: int = SAS_MINUTES) -> SasUris:
    """Ask Compute for SAS URLs of the VM's serial log and screenshot (POST retrieveBootDiagnosticsData)."""
    from backend.azure.lists import BOOT_DIAGNOSTICS_API_VERSION, raw_get, vm_path

    sub, rg, name = _vm_parts(vm_id)

    async def retrieve() -> dict[str, Any]:
        # Raw JSON, not the SDK's operation and model: a background probe asks for thousands.
        path = vm_path(sub, rg, name) + "/retrieveBootDiagnosticsData"
        return await raw_get(backend.raw_client(), path, BOOT_DIAGNOSTICS_API_VERSION, method="POST", params={"sasUriExpirationTimeInMinutes": minutes})

    try:
        result = await backend.call(f"retrieving the boot diagnostics of VM {name}", retrieve)
    except BackendError as exc:
        if exc.status == 409 and "not enabled" in str(exc).lower():
            raise BootDiagnosticsOff(
                f"boot diagnostics are off on VM {name}: nothing was captured; enable them (scenario enable-boot-diagnostics), then start or restart the VM",
                code="BootDiagnosticsOff",
                status=409,
            ) from None
        raise
    serial, shot = (result.get("serialConsoleLogBlobUri"), result.get("consoleScreenshotBlobUri"))
    serial = serial if isinstance(serial, str) else None
    shot = shot if isinstance(shot, str) else None
    if not serial and not shot:
        raise BackendError(f"retrieving the boot diagnostics of VM {name}: Azure returned no blob URLs", code="NoBootDiagnostics")
    expiries = [e for e in (_expiry(serial or ""), _expiry(shot or "")) if e is not None]
    uris = SasUris(serial or "", shot or "", min(expiries) if expiries else None, time.time())
    _cache(backend)[vm_id.lower()] = uris
    return uris


class _BlobError(Exception):
    def __init__(self, status: int, code: str, message: str, *, sas_rejected: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.sas_rejected = sas_rejected


_QUERY = re.compile(r"\?[^\s'\"<>]*")
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_DETAIL = re.compile(r"<AuthenticationErrorDetail>([^<]+)</AuthenticationErrorDetail>")
_XML_MESSAGE = re.compile(r"<Message>([^<\n]+)")


def _check_url(backend: Any, url: str) -> None:
    from backend.settings import is_loopback_url

    parsed = urlparse(url)
    if parsed.scheme != "https":
        raise _BlobError(0, "InsecureUrl", f"Azure returned a blob URL that is not HTTPS ({redact(url)}): not read")
    if is_loopback_url(backend.settings.endpoint) and not is_loopback_url(url):
        # An emulator on loopback must never send us elsewhere.
        raise _BlobError(0, "NotLoopback", f"the endpoint is on loopback but the blob URL is not ({parsed.hostname}): not read")


async def _get_blob(backend: Any, url: str) -> bytes:
    import aiohttp

    _check_url(backend, url)
    session = backend._get_session()
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=BLOB_TIMEOUT_S), headers={"x-ms-version": "2022-11-02"}) as resp:
            if resp.status == 200:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > MAX_BLOB_BYTES:
                        raise _BlobError(200, "TooLarge", f"the blob {redact(url)} is larger than {MAX_BLOB_BYTES // 2**20} MiB: not read")
                    chunks.append(chunk)
                return b"".join(chunks)
            text = (await resp.text(errors="replace"))[:4000]
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        # An exception's text may quote the URL: never with its SAS.
        reason = _QUERY.sub("", str(exc).strip()) or type(exc).__name__
        raise _BlobError(0, "ConnectionFailed", f"cannot read {redact(url)}: {reason}") from None
    xml_code = _XML_CODE.search(text)
    code = resp.headers.get("x-ms-error-code") or (xml_code.group(1) if xml_code else str(resp.status))
    detail = _XML_DETAIL.search(text)
    message = _XML_MESSAGE.search(text)
    what = (detail.group(1) if detail else message.group(1) if message else resp.reason or "").strip()
    rejected = resp.status == 403 and code == "AuthenticationFailed"
    return _raise(resp.status, code, what, url, rejected)


def _raise(status: int, code: str, what: str, url: str, rejected: bool) -> bytes:
    blob = redact(url).rsplit("/", 1)[-1]
    if status == 404:
        raise _BlobError(status, code, f"{blob} does not exist yet: boot diagnostics capture from the VM's next start (start or restart it)")
    if status == 403 and code in ("AuthorizationFailure", "AuthorizationPermissionMismatch"):
        account = (urlparse(url).hostname or "").split(".", 1)[0]
        raise _BlobError(
            status,
            code,
            f"the storage account {account} refuses this network or identity ({code}): allow your address in its firewall, or switch the VM to managed boot diagnostics",
        )
    raise _BlobError(status, code, f"reading {blob} failed: {status} {code}" + (f": {what}" if what else ""), sas_rejected=rejected)


async def fetch(
    backend: Any,
    vm_id: str,
    *,
    serial_log: bool = True,
    screenshot: bool = True,
    storage: str = "managed storage",
    minutes: int = SAS_MINUTES,
) -> BootDiagnosticsData:
    """The VM's serial log and/or screenshot. Raises BootDiagnosticsOff (boot
    diagnostics disabled) or BackendError (ARM failed); a blob that cannot be
    read is reported in the result's *_error, the other is still returned."""
    _, _, name = _vm_parts(vm_id)
    cached = _cache(backend).get(vm_id.lower())
    fetches = 0
    if cached is not None and cached.fresh():
        uris = cached
    else:
        uris = await retrieve_uris(backend, vm_id, minutes=minutes)
        fetches += 1
    wanted = [k for k, on in (("serial", serial_log), ("screenshot", screenshot)) if on]

    async def read_all(u: SasUris) -> dict[str, bytes | _BlobError]:
        async def one(kind: str) -> bytes | _BlobError:
            url = u.serial_log if kind == "serial" else u.screenshot
            if not url:
                return _BlobError(0, "NoUrl", f"Azure gave no URL for the {'serial log' if kind == 'serial' else 'screenshot'}")
            try:
                return await _get_blob(backend, url)
            except _BlobError as exc:
                return exc

        results = await asyncio.gather(*(one(k) for k in wanted))
        return dict(zip(wanted, results))

    got = await read_all(uris)
    if any(isinstance(v, _BlobError) and v.sas_rejected for v in got.values()):
        # Expired (or not yet valid by Storage's clock): new URLs, one more try.
        log.info("boot diagnostics URLs of %s were refused by Blob Storage; fetching new ones", name)
        uris = await retrieve_uris(backend, vm_id, minutes=minutes)
        fetches += 1
        retry = [k for k, v in got.items() if isinstance(v, _BlobError) and v.sas_rejected]
        again = await read_all(uris)
        for k in retry:
            got[k] = again[k]

    def text_of(data: bytes) -> str:
        return data.rstrip(b"\x00").decode("utf-8", errors="replace")

    serial = got.get("serial")
    shot = got.get("screenshot")
    return BootDiagnosticsData(
        vm_id=vm_id,
        vm_name=name,
        storage=storage,
        serial_log=text_of(serial) if isinstance(serial, bytes) else None,
        screenshot=shot if isinstance(shot, bytes) else None,
        # Blob Storage's answer (an error code, a <Message>) is text from outside.
        serial_error=safe_line(str(serial)) if isinstance(serial, _BlobError) else None,
        screenshot_error=safe_line(str(shot)) if isinstance(shot, _BlobError) else None,
        fetched_at=datetime.now(UTC),
        sas_fetches=fetches,
    )


async def for_vm(backend: Any, vm: Any, *, serial_log: bool = True, screenshot: bool = True) -> BootDiagnosticsData:
    """`fetch` for a `backend.models.Vm` (its boot diagnostics setting says where they are stored)."""
    boot = getattr(vm, "boot_diagnostics", None)
    if boot is not None and not boot.enabled:
        raise BootDiagnosticsOff(
            f"boot diagnostics are off on VM {vm.name}: nothing was captured; enable them (scenario enable-boot-diagnostics), then start or restart the VM",
            code="BootDiagnosticsOff",
            status=409,
        )
    storage = storage_label({"storageUri": boot.storage_uri} if boot is not None and boot.storage_uri else None)
    return await fetch(backend, vm.id, serial_log=serial_log, screenshot=screenshot, storage=storage)


async def enable(backend: Any, vm_id: str, **lro: Any) -> dict[str, Any]:
    """PATCH diagnosticsProfile.bootDiagnostics.enabled = true (managed storage unless the VM
    names a storage account). Refused under --read-only before any request."""
    _, _, name = _vm_parts(vm_id)
    backend.refuse_write(f"enabling boot diagnostics on VM {name}")
    return await backend.update_vm(vm_id, ENABLE_PATCH, **lro)
