"""Realistic serial console logs (what boot diagnostics shows) for the estates' VMs.

Linux logs follow a Hyper-V guest booting on Azure: kernel, systemd, cloud-init
and the Azure Linux Agent. Windows logs follow the Emergency Management
Services (SAC) console. The boot story decides the tail: a clean login prompt,
systemd's emergency mode after a bad /etc/fstab entry, an initramfs shell that
asks for a manual fsck, or a Windows stop code.
"""

from __future__ import annotations

import re
from datetime import datetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

STOP_CODES = {
    "INACCESSIBLE_BOOT_DEVICE": "0x0000007B",
    "CRITICAL_PROCESS_DIED": "0x000000EF",
    "CRITICAL_SERVICE_FAILED": "0x0000005A",
    "UNMOUNTABLE_BOOT_VOLUME": "0x000000ED",
    "BAD_SYSTEM_CONFIG_INFO": "0x00000074",
}


def _rfc2822(t: datetime) -> str:
    return f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} {t:%H:%M:%S} +0000"


_LINUX_HEAD = """\
[    0.000000] Linux version {kernel} (buildd@lcy02-amd64-047) (gcc version 11.4.0, GNU ld 2.38) #{build} SMP
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-{kernel} root=PARTUUID={partuuid} ro console=tty1 console=ttyS0 earlyprintk=ttyS0 panic=-1
[    0.000000] BIOS-provided physical RAM map:
[    0.000000] Hypervisor detected: Microsoft Hyper-V
[    0.000000] Hyper-V: privilege flags low 0xae7f, high 0x3b8030, hints 0x64e24, misc 0xbed7b2
[    0.000000] Hyper-V: Host Build 10.0.25398.1189-1-0
[    0.000000] DMI: Microsoft Corporation Virtual Machine/Virtual Machine, BIOS Hyper-V UEFI Release v4.1 04/06/2024
[    0.000000] tsc: Marking TSC unstable due to running on Hyper-V
[    0.021442] clocksource: hyperv_clocksource_tsc_page: mask: 0xffffffffffffffff
[    0.433190] hv_vmbus: Vmbus version:5.3
[    0.512077] hv_vmbus: registering driver hv_netvsc
[    0.918342] scsi host0: storvsc_host_t
[    1.047710] sd 0:0:0:0: [sda] {os_blocks} 512-byte logical blocks: ({os_gb} GB)
[    1.048002] sd 0:0:0:0: [sda] Write Protect is off
[    1.061554]  sda: sda1 sda14 sda15
[    1.102391] sd 0:0:0:1: [sdb] 150994944 512-byte logical blocks: (77.3 GB/72.0 GiB)
[    1.144820] hv_netvsc 000d3a1b-{mac}: VF slot 1 added
[    2.310988] EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.
[    3.118824] systemd[1]: systemd {systemd} running in system mode (+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP)
[    3.120177] systemd[1]: Detected virtualization microsoft.
[    3.120403] systemd[1]: Detected architecture x86-64.
[    3.131205] systemd[1]: Hostname set to <{name}>.
[  OK  ] Created slice system-modprobe.slice.
[  OK  ] Started Journal Service.
[  OK  ] Finished Load Kernel Modules.
[  OK  ] Started Rule-based Manager for Device Events and Files.
"""

_LINUX_OK = """\
[  OK  ] Found device Virtual_Disk UEFI.
[  OK  ] Mounted /boot/efi.
[  OK  ] Mounted /mnt.
[  OK  ] Reached target Local File Systems.
         Starting Initial cloud-init job (pre-networking)...
[    6.714093] cloud-init[512]: Cloud-init v. {ci} running 'init-local' at {boot}. Up 6.61 seconds.
[  OK  ] Finished Initial cloud-init job (pre-networking).
[  OK  ] Reached target Network (Pre).
[  OK  ] Started Network Configuration.
[    8.201377] cloud-init[689]: Cloud-init v. {ci} running 'init' at {boot}. Up 8.12 seconds.
[    8.209921] cloud-init[689]: ci-info: ++++++++++++++++++++++++Net device info+++++++++++++++++++++++++
[    8.210144] cloud-init[689]: ci-info: | Device |  Up  |   Address   |      Mask     | Scope  |
[    8.210361] cloud-init[689]: ci-info: |  eth0  | True | {ip:<11} | 255.255.255.0 | global |
[    8.210587] cloud-init[689]: ci-info: |   lo   | True |  127.0.0.1  |   255.0.0.0   |  host  |
[  OK  ] Finished Initial cloud-init job (metadata service crawler).
[  OK  ] Reached target Network is Online.
[  OK  ] Started {sshd}.
         Starting {agent_unit}...
[  OK  ] Started {agent_unit}.
[  OK  ] Reached target Multi-User System.
{agent_lines}
{pretty} {name} ttyS0

{name} login: """

_AGENT_READY = """\
[   12.840213] {agent_tag}: INFO Daemon Daemon Azure Linux Agent Version: 2.11.1.12
[   13.502117] {agent_tag}: INFO Daemon Daemon Provisioning complete
[   14.011844] {agent_tag}: INFO ExtHandler ExtHandler [HEARTBEAT] Agent WALinuxAgent-2.11.1.12 is running as the goal state agent"""

_AGENT_BROKEN = """\
[   12.840213] {agent_tag}: INFO Daemon Daemon Azure Linux Agent Version: 2.2.45
[   13.119774] {agent_tag}: WARNING Daemon Daemon Fetch failed: [HttpError] [HTTP Failed] GET http://168.63.129.16/machine/?comp=goalstate -- IOError timed out -- 6 attempts made
[   43.120388] {agent_tag}: ERROR Daemon Daemon Failed to report status: [ProtocolError] Failed to send status to the WireServer (168.63.129.16)
[   73.551902] {agent_tag}: ERROR ExtHandler ExtHandler Event: name=WALinuxAgent, op=ReportStatus, message=Timeout while contacting the WireServer
[  105.224610] systemd[1]: {agent_unit_short}: Main process exited, code=exited, status=1/FAILURE
[  105.224981] systemd[1]: {agent_unit_short}: Failed with result 'exit-code'."""

_LINUX_FSTAB = """\
[  OK  ] Found device Virtual_Disk UEFI.
[  OK  ] Mounted /boot/efi.
[  OK  ] Mounted /mnt.
[ TIME ] Timed out waiting for device /dev/disk/by-uuid/{bad_uuid}.
[DEPEND] Dependency failed for /datadrive.
[DEPEND] Dependency failed for Local File Systems.
[DEPEND] Dependency failed for File System Check on /dev/disk/by-uuid/{bad_uuid}.
[   97.624118] systemd[1]: datadrive.mount: Job datadrive.mount/start failed with result 'dependency'.
[   97.624402] systemd[1]: local-fs.target: Job local-fs.target/start failed with result 'dependency'.
[   97.624731] systemd[1]: local-fs.target: Triggering OnFailure= dependencies.
[  OK  ] Stopped Dispatch Password Requests to Console Directory Watch.
[  OK  ] Reached target Timer Units.
[  OK  ] Started Emergency Shell.
[  OK  ] Reached target Emergency Mode.
You are in emergency mode. After logging in, type "journalctl -xb" to view
system logs, "systemctl reboot" to reboot, "systemctl default" or "exit"
to boot into default mode.
Give root password for maintenance
(or press Control-D to continue): """

_LINUX_FSCK = """\
[    2.298431] EXT4-fs (sda1): INFO: recovery required on readonly filesystem
[    2.298877] EXT4-fs (sda1): write access will be enabled during recovery
[    2.911203] EXT4-fs error (device sda1): ext4_lookup:1855: inode #1837601: comm systemd: deleted inode referenced: 1837622
[    2.911804] EXT4-fs (sda1): errors detected, forcing fsck
Begin: Running /scripts/local-premount ... done.
Begin: Will now check root file system ... fsck from util-linux 2.37.2
[/usr/sbin/fsck.ext4 (1) -- /dev/sda1] fsck.ext4 -a -C0 /dev/sda1
cloudimg-rootfs contains a file system with errors, check forced.
cloudimg-rootfs: Inodes that were part of a corrupted orphan linked list found.

cloudimg-rootfs: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.
        (i.e., without -a or -p options)
fsck exited with status code 4
done.
Failure: File system check of the root filesystem failed
The root filesystem on /dev/sda1 requires a manual fsck


BusyBox v1.30.1 (Ubuntu 1:1.30.1-7ubuntu3) built-in shell (ash)
Enter 'help' for a list of built-in commands.

(initramfs) """

_WIN_HEAD = """\
Loading Windows Boot Manager...
Windows Boot Manager: booting {{current}} from \\Windows\\system32\\winload.efi
Windows Boot Loader: loading {product} (build {build})
Starting Windows...

Computer is booting, SAC started and initialized.

Use the "ch -?" command for information about using channels.
Use the "?" command for general help.


SAC>
"""

_WIN_OK = """\
EVENT: The CMD command is now available.
SAC>i
Net: 10, Ip={ip}  Subnet=255.255.255.0  Gateway={gw}
Net: 10, Ip=fe80::{ll}
SAC>id
Computer Name: {cname}
Computer GUID: {{{guid}}}
Processor Architecture: AMD64
Build Number: {build}
Product: {product}
Applied Service Pack: None
Version Number: 10.0
Build Type: Multiprocessor Free
Product Type: {ptype}
Network Interface Card: Microsoft Hyper-V Network Adapter
Time: {time}
SAC>
EVENT: A new channel has been created.  Use "ch -?" for channel help.
Channel: Cmd0001
SAC>
{agent_lines}"""

_WIN_AGENT_READY = "EVENT: Windows Azure Guest Agent (WindowsAzureGuestAgent) reported Ready.\nSAC>"
_WIN_AGENT_BROKEN = (
    "EVENT: The Windows Azure Guest Agent service terminated unexpectedly. It has done this 3 time(s).\n"
    "EVENT: The RdAgent service entered the stopped state.\nSAC>"
)

_WIN_STOP = """\
Windows is loading files...
Loading driver: \\SystemRoot\\System32\\drivers\\storvsc.sys
Loading driver: \\SystemRoot\\System32\\drivers\\disk.sys
Loading driver: \\SystemRoot\\System32\\drivers\\volmgr.sys

Your PC ran into a problem and needs to restart. We're just collecting some
error info, and then we'll restart for you.

*** STOP: {hex} (0xFFFFF8052A26F7E8, 0xFFFFFFFFC0000034, 0x0000000000000000, 0x0000000000000000)
Stop code: {code}
Collecting data for crash dump ...
Initializing disk for crash dump ...
Dumping physical memory to disk: 100
Physical memory dump complete.

Loading Windows Boot Manager...
Windows Boot Manager: booting {{current}} from \\Windows\\system32\\winload.efi
Starting Windows...
Windows is loading files...

Your PC ran into a problem and needs to restart.
*** STOP: {hex} (0xFFFFF8052A26F7E8, 0xFFFFFFFFC0000034, 0x0000000000000000, 0x0000000000000000)
Stop code: {code}
Windows Boot Manager: Windows failed to start. A recent hardware or software change might be the cause.
Status: 0xc000000e
Info: The boot selection failed because a required device is inaccessible.
"""


def _hexish(name: str, n: int) -> str:
    h = 0
    for ch in name:
        h = (h * 131 + ord(ch)) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"[:n]


_NAME = "\x00name\x00"
_IP = "\x00ip\x00"
_IPPAD = "\x00ippad\x00"
_CNAME = "\x00cname\x00"
_GW = "\x00gw\x00"
_TOKEN_RE = re.compile("\x00(name|ip|ippad|cname|gw)\x00")
_cache: dict[tuple, list[str]] = {}


def serial_log(*, name: str, image: dict, private_ip: str, boot: str, boot_time: datetime, agent_ready: bool = True) -> str:
    """The serial console text for one VM (a few dozen lines, ends where the boot stopped)."""
    key = (image["os_name"], image.get("kernel"), image["exact"], boot, boot_time, agent_ready)
    parts = _cache.get(key)
    if parts is None:
        if len(_cache) > 4096:
            _cache.clear()
        # literal, token, literal, token, ... (re.split keeps the captured token names)
        parts = _cache[key] = _TOKEN_RE.split(_render(image, boot, boot_time, agent_ready))
    values = {
        "name": name,
        "ip": private_ip,
        "ippad": f"{private_ip:<11}",
        "cname": name[:15].upper(),
        "gw": private_ip.rsplit(".", 1)[0] + ".1",
    }
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return "".join(out)


def _render(image: dict, boot: str, boot_time: datetime, agent_ready: bool) -> str:
    hx = _hexish(image["exact"] + image["sku"], 16)
    name = _NAME
    private_ip = _IP
    if image["os"] == "Linux":
        rhel = image["family"] == "rhel"
        agent_tag = "waagent[1012]" if rhel else "python3[1012]"
        agent_unit = "Azure Linux Agent" if rhel else "Azure Linux Agent (walinuxagent)"
        head = _LINUX_HEAD.format(
            kernel=image["kernel"],
            build=int(hx[:4], 16) % 90 + 10,
            partuuid=f"{hx[:8]}-{hx[8:12]}-4{hx[13:16]}-9a1c-{hx[:12]}",
            os_blocks=62914560,
            os_gb="32.2",
            mac=hx[:8],
            systemd=image["systemd"],
            name=name,
        )
        if boot == "emergency-fstab":
            tail = _LINUX_FSTAB.format(bad_uuid=f"{hx[8:16]}-1c2d-4e5f-8a9b-{hx[:12]}")
        elif boot == "fsck":
            # fsck runs in the initramfs, before the root file system is mounted and systemd starts
            head = head.split("[    2.310988] EXT4-fs", 1)[0]
            tail = _LINUX_FSCK
        else:
            agent_lines = (_AGENT_READY if agent_ready else _AGENT_BROKEN).format(
                agent_tag=agent_tag, agent_unit_short="waagent.service" if rhel else "walinuxagent.service"
            )
            tail = _LINUX_OK.format(
                boot=_rfc2822(boot_time),
                ci=image.get("cloudinit", "24.1.3"),
                ip=_IPPAD,
                sshd="OpenSSH server daemon" if rhel else "OpenBSD Secure Shell server",
                agent_unit=agent_unit,
                agent_lines=agent_lines,
                pretty=image["pretty"],
                name=name,
            )
        return head + tail
    product = image["os_name"]
    head = _WIN_HEAD.format(product=product, build=image["build"])
    if boot.startswith("stop-code:"):
        code = boot.split(":", 1)[1]
        return head.rsplit("SAC>\n", 1)[0] + _WIN_STOP.format(code=code, hex=STOP_CODES.get(code, "0x000000EF"))
    guid = f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-8d1e-{hx[4:16]}".upper()
    return head + _WIN_OK.format(
        ip=private_ip,
        gw=_GW,
        ll=f"{hx[:4]}:{hx[4:8]}:{hx[8:12]}:{hx[12:16]}%4",
        cname=_CNAME,
        guid=guid,
        build=image["build"],
        product=product,
        ptype="WinNT" if "Windows 1" in product else "ServerNT",
        time=boot_time.strftime("%Y-%m-%d %H:%M:%S"),
        agent_lines=_WIN_AGENT_READY if agent_ready else _WIN_AGENT_BROKEN,
    )
