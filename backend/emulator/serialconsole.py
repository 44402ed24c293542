"""Azure Serial Console in the emulator: the ARM routes, the gateway's
websocket and admin commands, and a small scripted guest console per VM.

ARM routes (bearer token, counted like every ARM request):

- ``GET /subscriptions/{s}/providers/Microsoft.SerialConsole/consoleServices/default``
  -> ``{"properties": {"disabled": bool}}``; ``POST .../default/disableConsole`` and
  ``/enableConsole`` switch it (the estate's ``serial_console.disabled`` lists
  subscriptions that start disabled).
- ``POST {vm id}/providers/Microsoft.SerialConsole/serialPorts/0/connect`` ->
  ``{"connectionString": "wss://127.0.0.1:PORT/_emulator/serialconsole/sessions/{id}/client"}``;
  409 when the VM does not run or has boot diagnostics off, 404 for no VM.

The gateway (under ``/_emulator/`` because, as in Azure, it is another host
that takes the token in the query, ``?authorization=``, or as a bearer header
for admin commands): ``GET .../client`` upgrades to the websocket;
``POST .../adminCommand/{nmi|reset|sysrq}`` answers 200 and acts on the guest:
reset reboots it; NMI makes Windows stop on NMI_HARDWARE_FAILURE and restart, and
Linux log "NMI received for unknown reason" (or panic and restart when the guest
fact ``unknown_nmi_panic`` is set); SysRq b (reboot), c (crash, then restart),
s (sync), u (remount read-only) act as the kernel does, any other key prints the
kernel's SysRq help. ``POST /_emulator/serialconsole/drop`` closes every open
socket (a test's dropped connection).

The guest console is a TEST DOUBLE, not an OS: a line discipline (echo,
Backspace, Ctrl+C, escape sequences swallowed) and a handful of scripted
commands, acted out from the VM's guest facts (``boot``, ``ports``):

- Linux, booted: ``HOST login:`` after the guest fact ``console_issue`` (its
  /etc/issue, written to the port as it is: the hostile estate puts every class
  of terminal payload there), any password for any user (but the administrator a
  VM was created with here, whose password is checked: backend/emulator/accounts.py), then a prompt
  with ``systemctl status|start|restart|enable ssh[d]`` (a refused port 22
  starts answering), ``sudo``, ``exit``, ``reboot``.
- Linux, ``boot: emergency-fstab``: systemd's emergency mode; any root
  password opens ``root@HOST:~#`` where ``cat /etc/fstab``,
  ``mount -o remount,rw /``, ``sed -i 's/A/B/[g]' /etc/fstab`` and
  ``sed -i '/A/d' /etc/fstab`` (only once / is read-write), ``mount -a``,
  ``systemctl daemon-reload|default|reboot``, ``reboot`` and ``exit`` work.
  A boot succeeds when every data-disk line of /etc/fstab carries ``nofail``
  or is gone; the guest facts then say ``boot: ok`` and its silent ports
  answer again (the SSH stand-in, the Connectivity verdict follow).
- Windows: SAC (``SAC>``) with ``?``, ``cmd``, ``ch``, ``ch -si 1``, ``id``,
  ``restart``; the CMD channel asks for credentials (any) and then knows
  ``netsh advfirewall set allprofiles state off``, ``netsh advfirewall firewall
  add rule ... localport=3389 ... action=allow`` (a guest firewall that drops
  3389 lets RDP through), ``sc query|start|config termservice`` and
  ``net start termservice`` (a refused 3389 answers), ``exit``. A Windows
  guest stuck on a stop code has no SAC: it shows the stop code.

Importing this module registers it with every emulator started afterwards.
"""

from __future__ import annotations

import logging
import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import server
from .accounts import may_sign_in
from .ids import normalize_id
from .store import VM_TYPE, Store

log = logging.getLogger("aztriage.emulator.serialconsole")

GATEWAY_PREFIX = "/_emulator/serialconsole"
DEFAULT_PORT = {"22": "ssh", "3389": "rdp"}
DATA_MOUNT = "/datadrive"

FSTAB = (
    "# /etc/fstab: static file system information.\n"
    "UUID=4b1c2e8a-7f0d-4c55-9a3e-1d2f6b9e0c11 /         ext4 defaults,discard 0 1\n"
    "UUID=9C3A-12F4                            /boot/efi vfat umask=0077      0 1\n"
    f"UUID=0f6e3c1d-2b7a-4e58-8c49-5a1b2c3d4e5f {DATA_MOUNT} ext4 defaults     0 2\n"
    "/dev/disk/cloud/azure_resource-part1      /mnt      auto defaults,nofail,x-systemd.requires=cloud-init.service,_netdev,comment=cloudconfig 0 2\n"
)

EMERGENCY_BANNER = (
    "[FAILED] Failed to mount /datadrive.\r\n"
    "[DEPEND] Dependency failed for Local File Systems.\r\n"
    'You are in emergency mode. After logging in, type "journalctl -xb" to view\r\n'
    'system logs, "systemctl reboot" to reboot, "systemctl default" or "exit"\r\n'
    "to boot into default mode.\r\n"
)
ROOT_PASSWORD_PROMPT = "Give root password for maintenance\r\n(or press Control-D to continue): "


def _props(doc: dict | None) -> dict:
    return (doc or {}).get("properties") or {}


def _os_type(doc: dict) -> str:
    return str(((_props(doc).get("storageProfile") or {}).get("osDisk") or {}).get("osType") or "Linux")


def _boot_enabled(doc: dict) -> bool:
    return bool(((_props(doc).get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}).get("enabled"))


@dataclass
class GuestConsole:
    """One VM's serial port: the state of its scripted console, kept across connections."""

    vm_id: str
    host: str
    os_type: str
    mode: str = ""  # login-user / login-password / shell / emergency-password / emergency / sac / cmd-user / cmd-domain / cmd-password / cmd / halted
    line: str = ""
    user: str = ""
    root_rw: bool = False
    fstab: str = FSTAB
    cmd_open: bool = False
    escape: str = ""  # an escape sequence being swallowed
    outputs: list[Any] = field(default_factory=list)


class SerialState:
    def __init__(self, store: Store, estate: dict):
        self.store = store
        self._initially_disabled = frozenset(s.lower() for s in ((estate.get("serial_console") or {}).get("disabled") or []))
        self.disabled: set[str] = set(self._initially_disabled)
        self.sessions: dict[str, str] = {}  # session id -> vm id (lower)
        self.consoles: dict[str, GuestConsole] = {}
        self.sockets: dict[web.WebSocketResponse, str] = {}  # open socket -> its VM id (lower)
        self.admin_log: list[dict] = []
        self.loaded = id(store.resources)

    def follow_reset(self) -> None:
        """The estate was reset (/_emulator/reset): every guest boots afresh and the service is as the estate says."""
        if self.loaded != id(self.store.resources):
            self.loaded = id(self.store.resources)
            self.consoles.clear()
            self.disabled = set(self._initially_disabled)


def _state(app: web.Application) -> SerialState:
    return app[STATE_KEY]


STATE_KEY: web.AppKey[SerialState] = web.AppKey("aztriage_serial_console", SerialState)


# ---------------------------------------------------------------- the guest
def _facts(store: Store, vm_id: str) -> dict:
    return store.guest_facts(vm_id)


def _boot(store: Store, vm_id: str) -> str:
    return str(_facts(store, vm_id).get("boot") or "ok")


def _fstab_ok(fstab: str) -> bool:
    for raw in fstab.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 4 and parts[1] == DATA_MOUNT and "nofail" not in parts[3].split(","):
            return False
    return True


def _set_boot(store: Store, vm_id: str, boot: str) -> None:
    guest = store.own_guest(vm_id)
    before = str(guest.get("boot") or "ok")
    guest["boot"] = boot
    if boot == "ok" and before != "ok":
        ports = guest.setdefault("ports", {})
        for port, mode in list(ports.items()):
            if mode == "silent" and port in DEFAULT_PORT:
                ports[port] = DEFAULT_PORT[port]
        guest["repairs"] = list(guest.get("repairs") or []) + ["serial console"]
    store.touch(normalize_id(vm_id).lower())
    _sync_guests(store)


def _set_port(store: Store, vm_id: str, port: str, frm: tuple[str, ...], to: str) -> bool:
    guest = store.own_guest(vm_id)
    ports = guest.setdefault("ports", {})
    if ports.get(port) in frm:
        ports[port] = to
        store.touch(normalize_id(vm_id).lower())
        _sync_guests(store)
        return True
    return False


def _sync_guests(store: Store) -> None:
    # The loopback stand-ins (backend/emulator/guest.py) follow at once, as after a run-command.
    for fn in list(store.operation_listeners):
        try:
            fn(store, None)  # type: ignore[arg-type]  # no operation: the guest changed by itself
        except Exception:
            log.debug("a listener did not take the guest change", exc_info=True)


class Shell:
    """Acts out one console: ``feed`` takes the operator's bytes and returns the guest's."""

    def __init__(self, store: Store, console: GuestConsole):
        self.store = store
        self.c = console

    # --- screens
    def greeting(self) -> str:
        c = self.c
        if not c.mode:
            self.boot()
            return self._boot_text()
        return "\r\n" + self.prompt()

    def boot(self) -> None:
        c = self.c
        c.line, c.user, c.root_rw, c.cmd_open = "", "", False, False
        boot = _boot(self.store, c.vm_id)
        if c.os_type.lower() == "windows":
            c.mode = "halted" if boot.startswith("stop-code:") else "sac"
        elif boot == "emergency-fstab":
            c.mode = "emergency-password"
        elif boot != "ok":
            c.mode = "halted"
        else:
            c.mode = "login-user"

    def _boot_text(self) -> str:
        c = self.c
        boot = _boot(self.store, c.vm_id)
        if c.os_type.lower() == "windows":
            if c.mode == "halted":
                code = boot.split(":", 1)[1] if ":" in boot else "UNKNOWN"
                return f"\r\nYour PC ran into a problem and needs to restart.\r\nStop code: {code}\r\n"
            return (
                '\r\nComputer is booting, SAC started and initialized.\r\n\r\nUse the "ch -?" command for information about using channels.\r\nUse the "?" command for general help.\r\n\r\n'
                + self.prompt()
            )
        if c.mode == "emergency-password":
            return "\r\n" + EMERGENCY_BANNER + "\r\n" + self.prompt()
        if c.mode == "halted":
            return f"\r\n[FAILED] The system did not boot ({boot}).\r\n"
        issue = str(_facts(self.store, c.vm_id).get("console_issue") or "").replace("\r\n", "\n").replace("\n", "\r\n")
        return f"\r\n[  OK  ] Reached target Multi-User System.\r\n\r\nUbuntu 22.04.4 LTS {c.host} ttyS0\r\n{issue}\r\n" + self.prompt()

    def prompt(self) -> str:
        c = self.c
        return {
            "login-user": f"{c.host} login: ",
            "login-password": "Password: ",
            "shell": f"{c.user}@{c.host}:~$ ",
            "emergency-password": ROOT_PASSWORD_PROMPT,
            "emergency": f"root@{c.host}:~# ",
            "sac": "SAC>",
            "cmd-user": "Username: ",
            "cmd-domain": "Domain  : ",
            "cmd-password": "Password: ",
            "cmd": "C:\\Windows\\system32>",
        }.get(c.mode, "")

    # --- input
    def feed(self, data: str) -> str:
        out: list[str] = []
        c = self.c
        for ch in data:
            if c.escape:
                c.escape += ch
                if len(c.escape) == 2 and ch not in "[O":
                    c.escape = ""  # ESC + one key (SAC's Esc Tab)
                elif len(c.escape) > 2 and (ch.isalpha() or ch == "~"):
                    c.escape = ""
                continue
            if ch == "\x1b":
                c.escape = ch
                continue
            if c.mode == "halted":
                continue
            if ch in "\r\n":
                line, c.line = c.line, ""
                out.append("\r\n")
                out.append(self.run(line))
                out.append(self.prompt())
            elif ch in "\x7f\b":
                if c.line:
                    c.line = c.line[:-1]
                    if not self._hidden():
                        out.append("\b \b")
            elif ch == "\x03":
                c.line = ""
                out.append("^C\r\n" + self.prompt())
            elif ch == "\x04" and c.mode == "emergency-password":
                out.append("\r\n" + EMERGENCY_BANNER + "\r\n" + self.prompt())
            elif ch == "\x04" and c.mode == "shell" and not c.line:
                out.append("logout\r\n")
                c.mode = "login-user"
                out.append(f"\r\nUbuntu 22.04.4 LTS {c.host} ttyS0\r\n\r\n" + self.prompt())
            elif ch >= " ":
                c.line += ch
                if not self._hidden():
                    out.append(ch)
        return "".join(out)

    def _hidden(self) -> bool:
        return self.c.mode in ("login-password", "emergency-password", "cmd-password")

    def run(self, line: str) -> str:
        c = self.c
        mode = c.mode
        text = line.strip()
        if mode == "login-user":
            if text:
                c.user = re.sub(r"[^a-z0-9_.-]", "", text.lower())[:32] or "user"
                c.mode = "login-password"
            return ""
        if mode == "login-password":
            ok = may_sign_in(_facts(self.store, c.vm_id), c.user, line.rstrip("\r\n"))
            c.mode = "shell" if ok else "login-user"
            return "Welcome to Ubuntu 22.04.4 LTS\r\n\r\n" if ok else "\r\nLogin incorrect\r\n"
        if mode == "emergency-password":
            if not text:
                return "Login incorrect\r\n\r\n"
            c.mode = "emergency"
            return ""
        if mode in ("shell", "emergency"):
            return self._linux(text)
        if mode == "sac":
            return self._sac(text)
        if mode == "cmd-user":
            c.mode = "cmd-domain"
            return ""
        if mode == "cmd-domain":
            c.mode = "cmd-password"
            return ""
        if mode == "cmd-password":
            c.mode = "cmd"
            return "\r\n"
        if mode == "cmd":
            return self._cmd(text)
        return ""

    # --- Linux
    def _linux(self, text: str) -> str:
        c = self.c
        try:
            argv = shlex.split(text)
        except ValueError:
            return "bash: syntax error: unterminated quoted string\r\n"
        if argv[:1] == ["sudo"]:
            argv = argv[1:]
        if not argv:
            return ""
        cmd, args = argv[0], argv[1:]
        if cmd == "cat" and args == ["/etc/fstab"]:
            return c.fstab.replace("\n", "\r\n")
        if cmd == "mount" and args[:2] == ["-o", "remount,rw"] and args[2:] in (["/"], []):
            c.root_rw = True
            return ""
        if cmd == "mount" and args == ["-a"]:
            if _fstab_ok(c.fstab) or _boot(self.store, c.vm_id) != "emergency-fstab":
                return ""
            return f"mount: {DATA_MOUNT}: can't find UUID=0f6e3c1d-2b7a-4e58-8c49-5a1b2c3d4e5f.\r\n"
        if cmd == "sed":
            return self._sed(args)
        if cmd == "systemctl":
            return self._systemctl(args)
        if cmd in ("reboot", "exit") or (cmd == "shutdown" and "-r" in args):
            if cmd == "exit" and c.mode == "shell":
                c.mode = "login-user"
                return f"logout\r\n\r\nUbuntu 22.04.4 LTS {c.host} ttyS0\r\n\r\n"
            return self._reboot()
        if cmd == "journalctl":
            return f"systemd[1]: Timed out waiting for device dev-disk-by\\x2duuid-0f6e3c1d.device.\r\nsystemd[1]: Dependency failed for {DATA_MOUNT}.\r\n"
        if cmd == "help":
            return "emulator shell: cat /etc/fstab, mount -o remount,rw /, mount -a, sed -i, systemctl, reboot, exit\r\n"
        return f"bash: {cmd}: command not found (this emulated console knows: cat, mount, sed, systemctl, reboot, exit)\r\n"

    def _sed(self, args: list[str]) -> str:
        c = self.c
        if len(args) != 3 or not args[0].startswith("-i") or args[2] != "/etc/fstab":
            return "sed: this emulated console knows sed -i 's/A/B/[g]' /etc/fstab and sed -i '/A/d' /etc/fstab\r\n"
        if not c.root_rw:
            return "sed: couldn't open temporary file /etc/sedX3k9Qa: Read-only file system\r\n"
        script = args[1]
        lines = c.fstab.splitlines()
        m = re.fullmatch(r"/(.+)/d", script)
        try:
            if m:
                pattern = re.compile(m.group(1))
                lines = [line for line in lines if not pattern.search(line)]
            else:
                s = re.fullmatch(r"(?:/(?P<addr>[^/]+)/)?s(?P<d>[^\w\s])(?P<pat>.*?)(?P=d)(?P<rep>.*?)(?P=d)(?P<flags>g?)", script)
                if not s:
                    return f"sed: -e expression #1, char {len(script)}: unknown command\r\n"
                pattern = re.compile(s.group("pat"))
                rep = s.group("rep").replace("\\", "\\\\").replace("&", r"\g<0>")
                addr = re.compile(s.group("addr")) if s.group("addr") else None
                count = 0 if s.group("flags") == "g" else 1
                lines = [pattern.sub(rep, line, count=count) if addr is None or addr.search(line) else line for line in lines]
        except re.error as exc:
            return f"sed: -e expression #1: {exc}\r\n"
        c.fstab = "\n".join(lines) + "\n"
        return ""

    def _systemctl(self, args: list[str]) -> str:
        c = self.c
        if not args:
            return ""
        verb = args[0]
        unit = (args[1] if len(args) > 1 else "").removesuffix(".service")
        if verb in ("reboot", "default"):
            return self._reboot()
        if verb == "daemon-reload":
            return ""
        if unit in ("ssh", "sshd"):
            ports = _facts(self.store, c.vm_id).get("ports") or {}
            if verb in ("start", "restart", "enable") and c.mode == "shell":
                _set_port(self.store, c.vm_id, "22", ("refused",), "ssh")
                return ""
            state = "inactive (dead)" if ports.get("22") == "refused" or c.mode == "emergency" else "active (running)"
            return f"* ssh.service - OpenBSD Secure Shell server\r\n     Active: {state}\r\n"
        return f"Unit {unit or verb}.service could not be found.\r\n"

    def _reboot(self) -> str:
        c = self.c
        if _boot(self.store, c.vm_id) == "emergency-fstab" and _fstab_ok(c.fstab):
            _set_boot(self.store, c.vm_id, "ok")
        self.boot()
        return "[  OK  ] Reached target Reboot.\r\nreboot: Restarting system\r\n" + self._boot_text()[: -len(self.prompt()) or None]

    # --- admin commands beside the socket
    def nmi(self) -> str:
        """A non-maskable interrupt: Windows bug-checks (NMI_HARDWARE_FAILURE, a crash dump) and
        restarts; Linux logs the unknown NMI and carries on, or panics and restarts when the guest
        fact ``unknown_nmi_panic`` says kernel.unknown_nmi_panic=1."""
        c = self.c
        if c.os_type.lower() == "windows":
            if c.mode == "halted":
                return ""  # already stopped on a stop code
            self.boot()
            return (
                "\r\nYour PC ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you.\r\n"
                "Stop code: NMI_HARDWARE_FAILURE (0x00000080)\r\n" + self._boot_text()
            )
        if c.mode == "halted":
            return ""
        text = "\r\nUhhuh. NMI received for unknown reason 3d on CPU 0.\r\nDo you have a strange power saving mode enabled?\r\n"
        if _facts(self.store, c.vm_id).get("unknown_nmi_panic"):
            return text + "Kernel panic - not syncing: NMI: Not continuing\r\n" + self._restart()
        return text + "Dazed and confused, but trying to continue\r\n" + self.prompt() + c.line

    def sysrq(self, key: str) -> str:
        """A magic SysRq key to the Linux kernel (Ubuntu's kernel.sysrq=176 allows sync, remount
        read-only and reboot; crash is allowed from the console as the gateway sends it)."""
        c = self.c
        if c.mode == "halted":
            return ""
        after = "\r\n" + self.prompt() + c.line
        if key == "b":
            return "\r\nsysrq: Resetting\r\n" + self._restart()
        if key == "c":
            return "\r\nsysrq: Trigger a crash\r\nKernel panic - not syncing: sysrq triggered crash\r\n" + self._restart()
        if key == "s":
            return "\r\nsysrq: Emergency Sync\r\nEmergency Sync complete" + after
        if key == "u":
            c.root_rw = False
            return "\r\nsysrq: Emergency Remount R/O\r\nEmergency Remount complete" + after
        return (
            "\r\nsysrq: HELP : loglevel(0-9) reboot(b) crash(c) terminate-all-tasks(e) memory-full-oom-kill(f) kill-all-tasks(i) thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) show-memory-usage(m) nice-all-RT-tasks(n) poweroff(o) show-registers(p) show-all-timers(q) unraw(r) sync(s) show-task-states(t) unmount(u) show-blocked-tasks(w) dump-ftrace-buffer(z)"
            + after
        )

    def _restart(self) -> str:
        """The guest restarts at once (no shutdown): it boots as its boot state says."""
        self.boot()
        return "\r\n" + self._boot_text()

    # --- Windows
    def _sac(self, text: str) -> str:
        c = self.c
        words = text.split()
        if not words:
            return ""
        if words[0] in ("?", "help"):
            return "ch   Channel management commands.\r\ncmd  Create a Command Prompt channel.\r\nid   Display the computer identification information.\r\nrestart  Restart the system immediately.\r\n"
        if words[0] == "cmd":
            c.cmd_open = True
            return 'The Command Prompt session was successfully launched.\r\nEVENT:   A new channel has been created.  Use "ch -?" for channel help.\r\nChannel: Cmd0001\r\n'
        if words == ["ch"]:
            return 'Channel List\r\n\r\n(Use "ch -?" for information on using channels)\r\n\r\n# Status  Channel Name\r\n0 (AV)    SAC\r\n' + (
                "1 (AV)    Cmd0001\r\n" if c.cmd_open else ""
            )
        if words[:2] == ["ch", "-si"]:
            if c.cmd_open and words[2:] == ["1"]:
                c.mode = "cmd-user"
                return "Name:                  Cmd0001\r\nDescription:           Command\r\n\r\nPlease enter login credentials.\r\n"
            return "Error: There is no channel present at the specified index.\r\n"
        if words[0] == "id":
            return f"Computer Name: {c.host}\r\n"
        if words[0] == "restart":
            self.boot()
            return "\r\n" + self._boot_text()[: -len(self.prompt()) or None]
        return "Unrecognized command.  Try again.\r\n"

    def _cmd(self, text: str) -> str:
        c = self.c
        low = " ".join(text.lower().split())
        if not low:
            return ""
        if low == "exit":
            c.mode = "sac"
            c.cmd_open = False
            return "\r\nEVENT:   The CMD channel has exited.\r\n"
        if low.startswith("netsh advfirewall set allprofiles state off") or (
            low.startswith("netsh advfirewall firewall add rule") and "localport=3389" in low and "action=allow" in low and "dir=in" in low
        ):
            _set_port(self.store, c.vm_id, "3389", ("silent",), "rdp") if _boot(self.store, c.vm_id) == "ok" else None
            return "Ok.\r\n\r\n"
        if low in ("sc query termservice", "sc.exe query termservice"):
            ports = _facts(self.store, c.vm_id).get("ports") or {}
            state = "1  STOPPED" if ports.get("3389") == "refused" else "4  RUNNING"
            return f"SERVICE_NAME: termservice\r\n        STATE              : {state}\r\n"
        if low.startswith("sc config termservice"):
            return "[SC] ChangeServiceConfig SUCCESS\r\n"
        if low in ("sc start termservice", "net start termservice", "sc.exe start termservice"):
            if _set_port(self.store, c.vm_id, "3389", ("refused",), "rdp"):
                return "The Remote Desktop Services service was started successfully.\r\n"
            return "The requested service has already been started.\r\n"
        return f"'{text.split()[0]}' is not recognized by this emulated console (netsh advfirewall, sc, net start, exit).\r\n"


# ---------------------------------------------------------------- routes
def _vm_doc(store: Store, vm_path: str) -> dict | None:
    return store.get(vm_path)


def install(app: web.Application, store: Store) -> None:
    estate = getattr(store, "_estate", None) or {}
    state = SerialState(store, estate if isinstance(estate, dict) else {})
    app[STATE_KEY] = state
    ns = r"{ns:(?i:microsoft\.serialconsole)}"

    async def service(request: web.Request) -> web.Response:
        state.follow_reset()
        sub = request.match_info["sub"].lower()
        return web.json_response({"properties": {"disabled": sub in state.disabled}})

    async def switch(request: web.Request) -> web.Response:
        state.follow_reset()
        sub = request.match_info["sub"].lower()
        action = request.match_info["action"].lower()
        if action == "disableconsole":
            state.disabled.add(sub)
        elif action == "enableconsole":
            state.disabled.discard(sub)
        else:
            raise web.HTTPNotFound()
        return web.json_response({"properties": {"disabled": sub in state.disabled}})

    async def connect(request: web.Request) -> web.Response:
        state.follow_reset()
        vm_path = "/" + request.match_info["vm"]
        doc = _vm_doc(store, vm_path)
        if doc is None or doc.get("type", VM_TYPE).lower() != VM_TYPE.lower():
            return web.json_response({"error": {"code": "ResourceNotFound", "message": "The VM was not found."}}, status=404)
        sub = request.match_info["vm"].split("/")[1].lower()
        if sub in state.disabled:
            return web.json_response(
                {"error": {"code": "SerialConsoleDisabled", "message": "Azure Serial Console is not enabled for this subscription."}}, status=409
            )
        power = store.power_state(doc["id"])
        if power not in ("running", "starting"):
            return web.json_response(
                {"error": {"code": "VmNotRunning", "message": "Azure Serial Console requires a virtual machine to be running."}}, status=409
            )
        if not _boot_enabled(doc):
            return web.json_response(
                {"error": {"code": "BootDiagnosticsDisabled", "message": "Azure Serial Console requires boot diagnostics to be enabled."}}, status=409
            )
        sid = secrets.token_hex(8)
        state.sessions[sid] = normalize_id(doc["id"]).lower()
        return web.json_response({"connectionString": f"wss://{request.host}{GATEWAY_PREFIX}/n/connector/{secrets.token_hex(4)}/sessions/{sid}/client"})

    def console_for(vm_l: str) -> GuestConsole:
        state.follow_reset()
        found = state.consoles.get(vm_l)
        if found is None:
            doc = store.get(vm_l) or {}
            host = str(((_props(doc).get("osProfile") or {}).get("computerName")) or doc.get("name") or "vm")[:15]
            found = state.consoles[vm_l] = GuestConsole(vm_id=doc.get("id", vm_l), host=host, os_type=_os_type(doc))
        return found

    async def client(request: web.Request) -> web.StreamResponse:
        if not request.query.get("authorization"):
            return web.Response(status=401, text="authorization required")
        vm_l = state.sessions.get(request.match_info["sid"])
        if vm_l is None:
            return web.Response(status=404, text="no such session")
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        state.sockets[ws] = vm_l
        shell = Shell(store, console_for(vm_l))
        try:
            await ws.send_bytes(shell.greeting().encode())
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    data = bytes(msg.data).decode("utf-8", errors="replace")
                else:
                    break
                out = shell.feed(data)
                if out:
                    await ws.send_bytes(out.encode())
        finally:
            state.sockets.pop(ws, None)
        return ws

    async def admin(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").lower().startswith("bearer "):
            return web.Response(status=401)
        vm_l = state.sessions.get(request.match_info["sid"])
        if vm_l is None:
            return web.Response(status=404)
        command = request.match_info["command"].lower()
        body = await request.json()
        state.admin_log.append({"vm": vm_l, "command": command, "parameters": body.get("commandParameters") or {}})
        console = console_for(vm_l)
        if command not in ("nmi", "reset", "sysrq"):
            return web.Response(status=404)
        if command == "sysrq" and console.os_type.lower() == "windows":
            return web.Response(status=400)
        shell = Shell(store, console)
        if command == "reset":
            shell.boot()
            text = "\r\n" + shell._boot_text()
        elif command == "nmi":
            text = shell.nmi()
        else:
            text = shell.sysrq(str((body.get("commandParameters") or {}).get("SysRqCommand") or ""))
        for ws, socket_vm in list(state.sockets.items()):
            if socket_vm == vm_l and text:
                await ws.send_bytes(text.encode())
        return web.json_response({})

    async def drop(request: web.Request) -> web.Response:
        closed = len(state.sockets)
        for ws in list(state.sockets):
            await ws.close()
        return web.json_response({"closed": closed})

    async def admin_log(request: web.Request) -> web.Response:
        return web.json_response(state.admin_log)

    r = app.router
    r.add_get(f"/subscriptions/{{sub}}/providers/{ns}/consoleServices/default", service)
    r.add_post(f"/subscriptions/{{sub}}/providers/{ns}/consoleServices/default/{{action}}", switch)
    r.add_post(
        f"/{{vm:subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/Microsoft\\.Compute/virtualMachines/[^/]+}}/providers/{ns}/serialPorts/0/connect", connect
    )
    r.add_get(f"{GATEWAY_PREFIX}/n/connector/{{container}}/sessions/{{sid}}/client", client)
    r.add_post(f"{GATEWAY_PREFIX}/n/connector/{{container}}/sessions/{{sid}}/adminCommand/{{command}}", admin)
    r.add_post(f"{GATEWAY_PREFIX}/drop", drop)
    r.add_get(f"{GATEWAY_PREFIX}/admin", admin_log)


server.Emulator.add_routes(install)
