"""Azure Serial Console on the real adapter: preflight, connect, the websocket
and the admin commands, as ``az serial-console`` (Azure/azure-cli-extensions,
src/serial-console/azext_serialconsole/custom.py) does them:

- preflight (``check_resource``): ``GET /subscriptions/{s}/providers/
  Microsoft.SerialConsole/consoleServices/default`` must say
  ``properties.disabled: false``; the VM (``$expand=instanceView``) must run
  and have boot diagnostics on. We add what Microsoft's docs require beside
  it: a custom boot-diagnostics storage account whose firewall does not
  allow the serial console's addresses for the VM's geography blocks the
  console (``backend.serialconsole``), and Windows client SKUs have no SAC.
- connect: ``POST {vm id}/providers/Microsoft.SerialConsole/serialPorts/0/
  connect`` answers ``{"connectionString": "wss://..."}``; the CLI opens
  ``connectionString + "?authorization=" + <ARM access token>``.
- the stream is raw terminal bytes; the CLI sends each keystroke as a
  frame, the gateway answers in text or binary frames.
- admin commands: the connection string with ``wss`` -> ``https`` and
  ``/client`` -> ``/adminCommand/{nmi|reset|sysrq}``, POSTed with the bearer
  token and ``{"command", "requestId", "commandParameters"}`` (SysRq:
  ``{"SysRqCommand": key}``).

The socket and the admin calls go through the adapter's own aiohttp session,
so they trust only what the ARM calls trust (the configured CA file). The
token is a credential: the URL that carries it is never logged or shown.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

import aiohttp
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from yarl import URL

from backend import mapping
from backend.adapter import SerialTarget
from backend.azure.lists import raw_get
from backend.errors import BackendError, SerialConsoleClosed, SerialConsoleRefused
from backend.models import ResourceId, StorageAccount
from backend.safetext import safe_json

if TYPE_CHECKING:
    from backend.azure.backend import AzureBackend

log = logging.getLogger("aztriage.azure.serial")

API_VERSION = "2018-05-01"  # what the CLI's vendored client sends (the spec also has 2024-07-01)
STORAGE_API_VERSION = "2023-01-01"
ADMIN_COMMANDS = ("nmi", "reset", "sysrq")
CONNECT_TIMEOUT_S = 20.0
# Windows client editions (Windows 10/11 images) have no Special Administration Console.
CLIENT_OFFERS = ("windows-10", "windows-11", "windows-7", "windows10", "windows11")


def _refused(reason: str, message: str, status: int | None = None) -> SerialConsoleRefused:
    return SerialConsoleRefused(reason, message, status=status)


def _power(doc: dict[str, Any]) -> str:
    statuses = (((doc.get("properties") or {}).get("instanceView") or {}).get("statuses")) or []
    for status in statuses:
        code = str((status or {}).get("code") or "")
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1].lower()
    return "unknown"


def _is_windows_client(doc: dict[str, Any]) -> bool:
    props = doc.get("properties") or {}
    image = (props.get("storageProfile") or {}).get("imageReference") or {}
    offer = str(image.get("offer") or "").lower()
    publisher = str(image.get("publisher") or "").lower()
    return publisher == "microsoftwindowsdesktop" or any(offer.startswith(o) for o in CLIENT_OFFERS)


def _os_type(doc: dict[str, Any]) -> str:
    props = doc.get("properties") or {}
    os_type = ((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType")
    if os_type:
        return "Windows" if str(os_type).lower() == "windows" else "Linux"
    os_name = str(((props.get("instanceView") or {}).get("osName")) or "")
    return "Windows" if "windows" in os_name.lower() else "Linux"


def _storage_account(uri: str | None) -> str | None:
    if not uri:
        return None
    host = urlparse(uri).hostname or ""
    name = host.split(".", 1)[0]
    return name or None


async def _raw(backend: AzureBackend, what: str, path: str, api_version: str) -> dict[str, Any]:
    try:
        return await raw_get(backend.raw_client(), path, api_version)
    except ResourceNotFoundError:
        raise
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise _refused("forbidden", f"{what} was forbidden (403): the serial console needs Virtual Machine Contributor on the VM.", 403) from exc
        raise


async def preflight(backend: AzureBackend, vm_id: str) -> SerialTarget:
    """The checks the CLI makes before it connects, and the ones the docs add; the first that fails is raised."""
    rid = ResourceId.parse(vm_id)
    try:
        service = await _raw(
            backend,
            "Reading the serial console service",
            f"/subscriptions/{quote(rid.subscription_id, safe='')}/providers/Microsoft.SerialConsole/consoleServices/default",
            API_VERSION,
        )
    except SerialConsoleRefused:
        raise
    except ResourceNotFoundError:
        service = {}
    except (TimeoutError, HttpResponseError, aiohttp.ClientError, OSError) as exc:
        raise BackendError(f"Reading the serial console service failed: {exc.__class__.__name__}.") from exc
    if (service.get("properties") or {}).get("disabled") is not False:
        raise _refused("disabled", "The serial console is disabled for this subscription (az serial-console enable turns it on).")
    try:
        doc = await backend.get_vm_document(vm_id)
    except BackendError as exc:
        if exc.status == 403:
            raise _refused(
                "forbidden", f"Reading VM {rid.name} was forbidden (403): the serial console needs Virtual Machine Contributor on the VM.", 403
            ) from exc
        if exc.status == 404:
            raise _refused("not-found", f"VM {rid.name} was not found.", 404) from exc
        raise
    power = _power(doc)
    if power not in ("running", "starting"):
        raise _refused("not-running", f"VM {rid.name} is {power}: the serial console needs it running.")
    boot = ((doc.get("properties") or {}).get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}
    if not boot.get("enabled"):
        raise _refused("boot-diagnostics-off", f"VM {rid.name} has boot diagnostics off: the serial console needs them on (managed storage works).")
    os_type = _os_type(doc)
    if os_type == "Windows" and _is_windows_client(doc):
        raise _refused("no-sac", f"VM {rid.name} runs a Windows client edition, which has no Special Administration Console (SAC).")
    account = _storage_account(boot.get("storageUri"))
    if account:
        await _check_storage_firewall(backend, rid, account, str(doc.get("location") or ""))
    return SerialTarget(vm_id=vm_id, vm_name=rid.name, os_type=os_type)


async def storage_account(backend: AzureBackend, subscription_id: str, resource_group: str, name: str) -> StorageAccount | None:
    """``GET .../Microsoft.Storage/storageAccounts/{name}`` (the ``StorageAccounts`` capability)."""
    path = (
        f"/subscriptions/{quote(subscription_id, safe='')}/resourceGroups/{quote(resource_group, safe='')}"
        f"/providers/Microsoft.Storage/storageAccounts/{quote(name, safe='')}"
    )

    async def fetch() -> StorageAccount:
        return mapping.storage_account(safe_json(await raw_get(backend.raw_client(), path, STORAGE_API_VERSION)))

    try:
        return await backend.call(f"reading storage account {name}", fetch)
    except BackendError as exc:
        if exc.status == 404:
            return None
        raise


async def _check_storage_firewall(backend: AzureBackend, rid: ResourceId, account_name: str, region: str) -> None:
    # As the CLI: the account is looked up in the VM's resource group. One aztriage cannot
    # read (elsewhere, or no Reader on it) is not held against the VM: the gateway may still pass.
    try:
        account = await backend.storage_account(rid.subscription_id, rid.resource_group, account_name)
    except BackendError:
        log.debug("boot diagnostics storage account %s not readable", account_name, exc_info=True)
        return
    from backend.serialconsole import storage_firewall_refusal  # here: every command builds an AzureBackend, few open a serial console

    refusal = storage_firewall_refusal(account, region) if account is not None else None
    if refusal:
        raise _refused("storage-firewall", refusal)


async def connect(backend: AzureBackend, vm_id: str) -> AzureSerialStream:
    target = await preflight(backend, vm_id)
    rid = ResourceId.parse(vm_id)
    path = (
        f"/subscriptions/{quote(rid.subscription_id, safe='')}/resourceGroups/{quote(rid.resource_group, safe='')}"
        f"/providers/Microsoft.Compute/virtualMachines/{quote(rid.name, safe='')}"
        "/providers/Microsoft.SerialConsole/serialPorts/0/connect"
    )
    request = HttpRequest("POST", path, params={"api-version": API_VERSION}, json={})
    try:
        response = await backend.raw_client().send_request(request, stream=True)
        await response.read()
    except (TimeoutError, aiohttp.ClientError, OSError, HttpResponseError) as exc:
        raise BackendError(f"Connecting the serial console of {rid.name} failed: {exc.__class__.__name__}.") from exc
    status = response.status_code
    if status == 403:
        raise _refused("forbidden", f"Connecting the serial console of {rid.name} was forbidden (403): it needs Virtual Machine Contributor on the VM.", 403)
    if status != 200:
        raise BackendError(f"Connecting the serial console of {rid.name} failed (HTTP {status}).", status=status)
    try:
        connection = str(response.json()["connectionString"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"The serial console of {rid.name} answered without a connection string.") from exc
    if not connection.startswith("wss://"):
        raise BackendError(f"The serial console of {rid.name} answered with a connection string that is not wss://.")
    token = (await backend._credential.get_token(backend.settings.scope)).token
    session = backend._get_session()
    url = URL(connection).update_query(authorization=token)
    try:
        ws = await session.ws_connect(url, heartbeat=30.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0), max_msg_size=4 * 1024 * 1024)
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 403:
            raise _refused("forbidden", f"The serial console gateway refused {rid.name} (403).", 403) from exc
        raise BackendError(f"The serial console gateway refused the connection to {rid.name} (HTTP {exc.status}).", status=exc.status) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise BackendError(f"The serial console gateway of {rid.name} could not be reached: {exc.__class__.__name__}.") from exc
    return AzureSerialStream(session, ws, connection, token, target)


class AzureSerialStream:
    """An open serial console websocket (implements ``backend.adapter.SerialStream``)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, connection: str, token: str, target: SerialTarget):
        self._session = session
        self._ws = ws
        self._connection = connection
        self._token = token
        self.target = target

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def send(self, data: bytes) -> None:
        if self._ws.closed:
            raise SerialConsoleClosed("The serial console connection is closed.")
        try:
            # As the CLI: keystrokes go out as text frames.
            await self._ws.send_str(data.decode("utf-8", errors="replace"))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise SerialConsoleClosed("The serial console connection dropped.") from exc

    async def receive(self) -> bytes:
        while True:
            try:
                msg = await self._ws.receive()
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                raise SerialConsoleClosed("The serial console connection dropped.") from exc
            if msg.type == aiohttp.WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data:
                    return str(msg.data).encode("utf-8", errors="replace")
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise SerialConsoleClosed("The serial console connection closed.")

    def admin_url(self, command: str) -> str:
        base = "https://" + self._connection[len("wss://") :]
        return base.replace("/client", f"/adminCommand/{command}")

    async def admin(self, command: str, sysrq_key: str | None = None) -> None:
        if command not in ADMIN_COMMANDS:
            raise BackendError(f"{command!r} is not a serial console admin command (nmi, reset, sysrq).")
        params: dict[str, str] = {}
        if command == "sysrq":
            if not sysrq_key or len(sysrq_key) != 1 or not sysrq_key.isalnum():
                raise BackendError("A SysRq command is one letter or digit.")
            if self.target["os_type"] == "Windows":
                raise BackendError("SysRq is for Linux VMs only.")
            params = {"SysRqCommand": sysrq_key}
        body = {"command": command, "requestId": str(uuid.uuid4()), "commandParameters": params}
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            async with self._session.post(self.admin_url(command), json=body, headers=headers) as resp:
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise BackendError(f"Sending {command} to {self.target['vm_name']} failed: {exc.__class__.__name__}.") from exc
        if status == 403:
            raise _refused("forbidden", f"Sending {command} to {self.target['vm_name']} was forbidden (403).", 403)
        if status != 200:
            raise BackendError(f"Sending {command} to {self.target['vm_name']} failed (HTTP {status}).", status=status)

    async def close(self) -> None:
        if not self._ws.closed:
            await self._ws.close()
