"""rescue: repair a VM's OS disk on a rescue VM, the runbook's "Mounting
disks to another VM" (Windows and Linux), as `az vm repair` does it, with
the journal and the safety rails of every aztriage run.

1. snapshot the OS disk (the safety net, kept until you release it);
2. a disk copy from the snapshot, in the OS disk's resource group, with the
   same zone, Hyper-V generation, security type and OS type, and a name ARM
   accepts (at most 80 characters, a UTC stamp without fractions);
3. a rescue VM in a NEW resource group made for this run (same region and
   zone, same OS family and generation, no public IP: its NIC sits in the
   VM's own subnet), or an existing VM the operator picks (``--rescue-vm``);
4. the copy attached to it as a data disk;
5. the exact repair commands for this disk on screen (the device at its LUN,
   what the serial log says went wrong), and, when asked (``--run-fixes``),
   the common fixes run on the rescue VM by run command;
6. the run waits for the operator (headless: exit 3, status waiting;
   ``aztriage recover --resume RUN_ID --operator-done`` continues);
7. detach the copy; deallocate the VM; swap its OS disk to the copy
   (refused for another generation, security type or OS type, or a Premium
   disk on a size without premium storage); start it; check that it booted
   and that RDP/SSH answers;
8. delete what the run created for the repair (the rescue group, only when
   it holds nothing but what the ledger lists, never a group that existed
   before); keep the original OS disk (detached, never deleted by aztriage)
   and the snapshot until the operator releases them (``aztriage runs
   --release RUN_ID``).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.adapter import RecoveryBackend
from backend.errors import BackendError
from backend.models import Disk, ResourceId, Vm
from backend.recovery.context import StepContext, StepFailed
from backend.recovery.facts import VmFacts, VmSize, power_state, provisioning, vm_from_documents
from backend.recovery.plan import Check, Kind, Plan, PlanError, Step, Verification, already_done, blocked, not_verified, ready, verified, wait_for_operator
from backend.recovery.scenarios._common import deallocate_to_swap_step, plan
from backend.recovery.scenarios._copies import DiskCopy, disk_copy_step, kept_snapshot_step
from backend.recovery.scenarios._disks import (
    FOR_TAG,
    MAX_GROUP,
    RUN_TAG,
    arm_name,
    data_disk_refs,
    disk_props,
    disk_refusal,
    exists_by,
    free_lun,
    get_vm,
    lun_of,
    os_disk_of,
    resource_id,
    same_id,
    security_type,
    short,
    stamp,
    start_if_stopped,
    swap_os_disk,
    tag_of,
    tracked_create,
    vm_settled,
    wait_for_vm,
)
from backend.recovery.scenarios._factories import run_tagged, summary_step
from backend.recovery.scenarios.run_fix import command_output
from backend.recovery.scenarios.snapshot_disks import snapshot_name
from backend.recovery.steps import power_step, preflight_step, reach_step, reach_timeout
from backend.shellcmd import AND, OR, comment, literal, ps_quote, sh
from backend.verdict import Verdict

ADMIN = "rescueadmin"
RESCUE_OS_SKU = "StandardSSD_LRS"
OUTPUT_KEPT = 2000
# The images az vm repair uses by default, by OS family and Hyper-V generation.
RESCUE_IMAGES = {
    ("linux", "V1"): {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts", "version": "latest"},
    ("linux", "V2"): {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
    ("windows", "V1"): {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter", "version": "latest"},
    ("windows", "V2"): {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-g2", "version": "latest"},
}
FIREWALL_RULE = (
    "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|"
    "Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
)
EFI_GPT_TYPE = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
# What the Windows repair sets in the copy's SYSTEM hive, under a control set: (key, value, type,
# data, what it is for). The common fixes set them under ControlSet001 and ControlSet002; the
# commands shown for a repair by hand, under ControlSet001, each with what it is for.
SYSTEM_HIVE_FIXES = (
    ("Control\\Terminal Server", "fDenyTSConnections", "REG_DWORD", "0", "RDP on"),
    ("Control\\Terminal Server\\WinStations\\RDP-Tcp", "PortNumber", "REG_DWORD", "3389", ""),
    ("Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules", "RemoteDesktop-UserMode-In-TCP", "REG_SZ", FIREWALL_RULE, "the RDP firewall rule"),
    ("Services\\storvsc", "Start", "REG_DWORD", "0", "Azure's storage driver at boot (INACCESSIBLE_BOOT_DEVICE)"),
)


def _windows(os_type: str) -> bool:
    return os_type.lower() == "windows"


def _system_hive_fixes(control_set: str, quote: Callable[[str], str], *, notes: bool) -> list[str]:
    """SYSTEM_HIVE_FIXES as reg add commands under `control_set` of the copy's hive (loaded as
    HKLM\\BROKENSYSTEM), a string's data quoted by `quote`; with `notes`, what each is for as a comment."""
    return [
        f'reg add "HKLM\\BROKENSYSTEM\\{control_set}\\{key}" /v {value} /t {kind} /d {quote(data) if kind == "REG_SZ" else data} /f'
        + (f"   # {note}" if notes and note else "")
        for key, value, kind, data, note in SYSTEM_HIVE_FIXES
    ]


def unavailable(vm: Vm) -> str | None:
    reason = disk_refusal(vm, "copy and repair")
    if reason:
        return reason
    if (vm.security_type or "").lower() == "confidentialvm":
        return f"{vm.name} is a confidential VM: its OS disk is encrypted with a key bound to the VM, so a copy cannot be repaired on another VM"
    if any((e.type or "").lower().startswith("azurediskencryption") for e in vm.extensions):
        return (
            f"{vm.name} uses Azure Disk Encryption: the copy must be unlocked on the rescue VM with its key "
            "(az vm repair create --unlock-encrypted-vm, single-pass ADE only); aztriage does not handle ADE keys"
        )
    return None


# --- what the plan is built from beyond the VM ------------------------------------------------------------


async def gather(backend: RecoveryBackend, vm_id: str, params: dict[str, Any], documents: dict[str, Any]) -> None:
    """The rescue VM the operator picked (same subscription), and what the serial log says."""
    vm = vm_from_documents(documents)
    wanted = (params.get("rescue_vm") or "").strip()
    if wanted:
        rescue_id = await find_rescue_vm(backend.find_vm_ids, vm, wanted)
        try:
            documents["rescue_vm"] = await backend.get_vm_document(rescue_id)
        except BackendError as exc:
            if exc.status == 404:
                raise PlanError(f"no VM with id {rescue_id}") from None
            raise
        await _gather_rescue_vm_fitness(backend, documents)
    if vm.boot_diagnostics.enabled:
        from backend import bootdiag

        try:
            data = await backend.boot_diagnostics(vm, screenshot=False)
        except BackendError as exc:
            documents["boot_verdict_error"] = str(exc)
        else:
            if data.serial_log:
                verdict = await asyncio.to_thread(bootdiag.analyze, data.serial_log, vm.os_type)
                documents["boot_verdict"] = verdict.to_json()
            else:
                documents["boot_verdict_error"] = data.serial_error or "the serial log is empty"


async def find_rescue_vm(find_vm_ids: Callable[[str, list[str]], Awaitable[list[str]]], vm: Vm, wanted: str) -> str:
    """The id of the rescue VM the operator names for `vm` (``--rescue-vm``, or typed in the console):
    an ARM id as given, else the one VM of that name in `vm`'s subscription, found by `find_vm_ids`
    (the backend's VM lists for the CLI, the inventory in the console). PlanError: none, or several."""
    wanted = wanted.strip()
    if wanted.lower().startswith("/subscriptions/"):
        return wanted.rstrip("/")
    found = await find_vm_ids(wanted, [vm.subscription_id])
    if not found:
        raise PlanError(f"no VM named {wanted} in the subscription of {vm.name}: a rescue VM must be in the same subscription and region")
    if len(found) > 1:
        groups = ", ".join(ResourceId.parse(found_id).resource_group for found_id in found)
        raise PlanError(f"{len(found)} VMs are named {wanted} (in {groups}): give the rescue VM's id, /subscriptions/…/virtualMachines/{wanted}")
    return found[0]


async def _gather_rescue_vm_fitness(backend: RecoveryBackend, documents: dict[str, Any]) -> None:
    """Whether the picked rescue VM can do the repair: its Resource Health and whether it
    boots itself (its own serial log). A VM that does not boot cannot repair another's disk."""
    from backend import bootdiag

    doc = documents["rescue_vm"]
    try:
        documents["rescue_vm_health"] = await backend.get_vm_health(doc["id"])
    except BackendError as exc:
        documents["rescue_vm_health_error"] = str(exc)
    rescue = vm_from_documents({"model": doc})
    if not rescue.boot_diagnostics.enabled or power_state(doc) != "running":
        return
    try:
        data = await backend.boot_diagnostics(rescue, screenshot=False)
    except BackendError:
        return  # cannot tell: the plan says nothing about it
    if data.serial_log:
        documents["rescue_vm_boot"] = (await asyncio.to_thread(bootdiag.analyze, data.serial_log, rescue.os_type)).to_json()


# --- the commands ---------------------------------------------------------------------------------------------


def fix_script(os_type: str, lun: int, generation: str) -> tuple[str, list[str]]:
    """(run command id, script) of the common fixes, run on the rescue VM against the copy at `lun`."""
    if _windows(os_type):
        bcd = (
            [
                f"$efi = Get-Partition -DiskNumber $disk.Number | Where-Object {{ $_.GptType -eq '{EFI_GPT_TYPE}' }} | Select-Object -First 1",
                "if ($efi) { $efi | Add-PartitionAccessPath -AccessPath 'S:\\' -ErrorAction SilentlyContinue; $bcd = 'S:\\EFI\\Microsoft\\Boot\\BCD' } else { throw 'no EFI system partition on the copy' }",
            ]
            if generation == "V2"
            else ['$bcd = "$d\\boot\\bcd"']
        )
        script = [
            "$ErrorActionPreference = 'Stop'",
            f"$disk = Get-Disk | Where-Object {{ $_.Location -match 'LUN {lun}\\b' -and $_.Number -ne 0 }} | Select-Object -First 1",
            f"if (-not $disk) {{ throw 'REFUSED: no disk at LUN {lun}' }}",
            "if ($disk.IsOffline) { Set-Disk -Number $disk.Number -IsOffline $false }",
            "Set-Disk -Number $disk.Number -IsReadOnly $false",
            "$part = Get-Partition -DiskNumber $disk.Number | Where-Object { $_.Type -eq 'Basic' } | Sort-Object Size -Descending | Select-Object -First 1",
            "if (-not $part.DriveLetter) { $part | Add-PartitionAccessPath -AssignDriveLetter; $part = Get-Partition -DiskNumber $disk.Number -PartitionNumber $part.PartitionNumber }",
            '$d = "$($part.DriveLetter):"',
            'Write-Output "copy of the OS disk at LUN ' + str(lun) + ': $d"',
            "chkdsk $d /f",
            'reg load HKLM\\BROKENSYSTEM "$d\\Windows\\System32\\config\\SYSTEM"',
            "foreach ($cs in 'ControlSet001','ControlSet002') {",
            *("  " + line for line in _system_hive_fixes("$cs", lambda data: f'"{data}"', notes=False)),
            "}",
            "reg unload HKLM\\BROKENSYSTEM",
            *bcd,
            "bcdedit /store $bcd /set '{bootmgr}' device partition=$d",
            "bcdedit /store $bcd /set '{default}' device partition=$d",
            "bcdedit /store $bcd /set '{default}' osdevice partition=$d",
            "Set-Disk -Number $disk.Number -IsOffline $true",
            "Write-Output 'done: the copy is offline and can be detached'",
        ]
        return "RunPowerShellScript", script
    dev = f"/dev/disk/azure/scsi1/lun{lun}"
    script = [
        "set -u",
        f"disk={dev}",
        'dev=$(readlink -f "$disk")',
        'echo "copy of the OS disk: $disk -> $dev"; lsblk -f "$dev"',
        "dmesg | grep SCSI | tail -3",
        "root=$(lsblk -lnpbo NAME,FSTYPE,SIZE \"$dev\" | awk '$2 ~ /^(ext[234]|xfs|btrfs)$/ {print $3, $1}' | sort -n | tail -1 | cut -d' ' -f2)",
        '[ -n "$root" ] || { echo "REFUSED: no Linux root file system on $dev" >&2; exit 1; }',
        'if findmnt -S "$root" >/dev/null; then echo "REFUSED: $root is mounted: it is never checked while mounted" >&2; exit 1; fi',
        'fstype=$(lsblk -no FSTYPE "$root")',
        'if [ "$fstype" = xfs ]; then xfs_repair "$root"; else fsck -yM "$root"; fi',
        'mkdir -p /rescue && mount $([ "$fstype" = xfs ] && echo -o nouuid) "$root" /rescue',
        "cp /rescue/etc/fstab /rescue/etc/fstab.aztriage.bak",
        'awk \'BEGIN{OFS="\\t"} /^[[:space:]]*#/ || NF<4 {print; next} $2!="/" && $2!="/boot" && $2!="/boot/efi" && $3!="swap" && $4 !~ /nofail/ {$4=$4",nofail"} {print}\' /rescue/etc/fstab.aztriage.bak > /rescue/etc/fstab',
        "findmnt --verify --tab-file /rescue/etc/fstab || true",
        "sshd -t -f /rescue/etc/ssh/sshd_config && echo 'sshd_config: ok'",
        "for d in dev proc sys; do mount --bind /$d /rescue/$d; done",
        "chroot /rescue systemctl enable ssh 2>/dev/null || chroot /rescue systemctl enable sshd",
        "umount -R /rescue",
        "echo 'done: the copy is unmounted and can be detached'",
    ]
    return "RunShellScript", script


def repair_commands(os_type: str, lun: int, generation: str, vm_name: str, copy_name: str, verdict: dict[str, Any] | None) -> list[str]:
    """What to type on the rescue VM for this disk at this LUN, and what the serial log adds.

    Windows: PowerShell as Administrator; Linux: bash as root. Names and the log's
    evidence line only ever appear in comments (one line, no control characters);
    the serial log's commands were built from checked, quoted facts (backend/bootdiag.py)."""
    lun = int(lun)
    vm_name, copy_name = comment(vm_name), comment(copy_name)
    if _windows(os_type):
        bcd = ["# diskpart: select the copy's EFI partition, assign letter=S   (Gen2: the BCD is S:\\EFI\\Microsoft\\Boot\\BCD)"] if generation == "V2" else []
        store = "S:\\EFI\\Microsoft\\Boot\\BCD" if generation == "V2" else "F:\\boot\\bcd"
        lines = [
            f"diskmgmt.msc   # the disk at LUN {lun} is the copy {copy_name}: bring it online; its Windows partition is F: below",
            f"Get-Disk | Where-Object Location -match 'LUN {lun}'   # the same disk from PowerShell",
            "chkdsk F: /f",
            "reg load HKLM\\BROKENSYSTEM F:\\Windows\\System32\\config\\SYSTEM   # the copy's SYSTEM hive",
            "reg query HKLM\\BROKENSYSTEM\\Select /v Current   # the control set in use (001 below)",
            *_system_hive_fixes("ControlSet001", ps_quote, notes=True),
            "reg unload HKLM\\BROKENSYSTEM",
            *bcd,
            f"bcdedit /store {store} /enum /v",
            f"bcdedit /store {store} /set '{{default}}' device partition=F:",
            f"bcdedit /store {store} /set '{{default}}' osdevice partition=F:",
            f"diskmgmt.msc   # take the disk at LUN {lun} offline again before it is detached",
        ]
    else:
        dev = f"/dev/disk/azure/scsi1/lun{lun}"
        part = f"{dev}-part1"
        lines = [
            sh(
                "lsblk",
                "-f",
                dev,
                note=f"the copy {copy_name} of {vm_name}'s OS disk; its root file system is the largest ext4/xfs partition (-part1 on Azure's images)",
            ),
            literal("dmesg | grep SCSI | tail   # the same disk by its sdX name"),
            sh("findmnt", part, OR, "echo", "not mounted: safe to check", note="never run fsck on a mounted file system"),
            sh("fsck", "-yM", part, note=f"xfs: xfs_repair {part}"),
            sh("mkdir", "-p", "/rescue", AND, "mount", part, "/rescue", note="xfs: mount -o nouuid"),
            sh(
                "cp",
                "/rescue/etc/fstab",
                "/rescue/etc/fstab.bak",
                AND,
                "vi",
                "/rescue/etc/fstab",
                note="add nofail to (or comment out) the entries of data disks that are gone",
            ),
            sh("findmnt", "--verify", "--tab-file", "/rescue/etc/fstab"),
            sh("sshd", "-t", "-f", "/rescue/etc/ssh/sshd_config", note="then fix what it names in /rescue/etc/ssh/sshd_config"),
            sh("umount", "/rescue", note="before the copy is detached"),
        ]
    if verdict and verdict.get("signatures"):
        first = verdict["signatures"][0]
        lines.append("# " + comment(f"the serial log of {vm_name} says: {verdict.get('summary')} - line {first.get('line_number')}: {first.get('line')}"))
        for command in verdict.get("repair") or ():
            fixed = command.replace("/dev/disk/azure/scsi1/lun0", f"/dev/disk/azure/scsi1/lun{lun}")
            if fixed not in lines:
                lines.append(fixed)
    return lines


def _password() -> str:
    """A strong password for the rescue VM's administrator: sent once in the create request,
    never journaled or shown (reset it with reset-access to sign in)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(24))
    return core + secrets.choice(string.ascii_uppercase) + secrets.choice(string.ascii_lowercase) + secrets.choice(string.digits) + "!"


# --- the plan -------------------------------------------------------------------------------------------------------


def _doc(facts: VmFacts, key: str, resource: str | None) -> dict[str, Any] | None:
    for doc in facts.documents.get(key) or ():
        if same_id(doc.get("id"), resource):
            return doc
    return None


def _generation(facts: VmFacts, os_doc: dict[str, Any] | None) -> str:
    return str(disk_props(os_doc).get("hyperVGeneration") or facts.vm.hyper_v_generation or facts.instance_view.get("hyperVGeneration") or "V1").upper()


def _agent(model: dict[str, Any] | None) -> str:
    agent = (((model or {}).get("properties") or {}).get("instanceView") or {}).get("vmAgent") or {}
    for status in agent.get("statuses") or ():
        if status.get("displayStatus"):
            return status["displayStatus"]
    return "Unknown"


def _os_type_of(model: dict[str, Any] | None) -> str:
    props = (model or {}).get("properties") or {}
    ref = (props.get("storageProfile") or {}).get("osDisk") or {}
    return str(ref.get("osType") or ("Windows" if (props.get("osProfile") or {}).get("windowsConfiguration") else "Linux"))


@dataclass(frozen=True)
class RescueLayout:
    """Every name and id a rescue run uses, computed once from the VM's documents and
    the parameters. The names carry the moment the facts were read, so a resumed run
    (which rebuilds its plan from the journal's documents) finds the same ones."""

    facts: VmFacts
    vm: Vm
    windows: bool
    stamp: str  # UTC yyyymmddHHMMSS of the facts: part of every name this run creates
    run_fixes: bool
    picked: str | None  # the rescue VM the operator named, as given
    os_disk: Disk
    os_id: str
    os_doc: dict[str, Any] | None
    generation: str  # the OS disk's Hyper-V generation (V1/V2)
    os_disk_rid: ResourceId
    sub: str
    location: str
    zones: list[str]
    disk_sku: str
    disk_security: dict[str, Any] | None
    snap_id: str
    copy_name: str
    copy_id: str
    tags_base: dict[str, str]
    group: str  # the rescue group made for this run (a new rescue VM only)
    group_id: str
    rescue_doc: dict[str, Any] | None  # the operator's rescue VM, or None: a new one
    rescue_id: str
    rescue_name: str
    lun: int  # where the copy is attached on the rescue VM
    nic_name: str
    nic_id: str
    rescue_os_disk: str
    rescue_os_disk_id: str
    subnet_id: str | None
    image: dict[str, str]
    rescue_security: dict[str, Any] | None
    command_id: str
    script: list[str]
    verdict: dict[str, Any] | None  # what the serial log says (gather)
    credential: str | None  # how the operator signs in to a new rescue VM: "password", "ssh_key" or None (a random password)

    @property
    def new_rescue(self) -> bool:
        return self.rescue_doc is None

    @property
    def token_kept(self) -> bool:
        """Whether a write to the rescue VM may journal its continuation token: the token holds
        ARM's first answer, the VM's model, which names the operator's SSH key when one was given."""
        return not (self.new_rescue and self.credential == "ssh_key")


def rescue_layout(facts: VmFacts, params: dict[str, Any]) -> RescueLayout:
    vm = facts.vm
    windows = _windows(vm.os_type)
    st = stamp(facts)
    picked = (params.get("rescue_vm") or "").strip() or None
    os_disk = vm.os_disk
    os_id = os_disk.id or ""
    os_doc = _doc(facts, "disks", os_id)
    generation = _generation(facts, os_doc)
    os_rid = ResourceId.parse(os_id) if os_id else ResourceId(vm.subscription_id, vm.resource_group, "", "", "")
    sub = vm.subscription_id
    security_profile = disk_props(os_doc).get("securityProfile")
    copy_name = arm_name(vm.name, f"-osdisk-rescued-{st}")

    # the rescue VM: a new one in a group of its own, or the operator's
    group = arm_name(f"rescue-{vm.name}", f"-{st}", MAX_GROUP)
    rescue_doc = facts.documents.get("rescue_vm") if picked else None
    if rescue_doc is not None:
        rescue_id = rescue_doc["id"]
        rescue_name = rescue_doc.get("name") or short(rescue_id)
        lun = free_lun(rescue_doc)
    else:
        rescue_name = arm_name(f"rescue-{vm.name}", "", 15 if windows else 64)
        rescue_id = resource_id(sub, group, "Microsoft.Compute/virtualMachines", rescue_name)
        lun = 0
    nic_name = arm_name(rescue_name, "-nic")
    rescue_os_disk = arm_name(rescue_name, "-osdisk")
    subnet_id = None
    for nic in facts.documents.get("nics") or ():
        for cfg in (nic.get("properties") or {}).get("ipConfigurations") or ():
            subnet_id = subnet_id or ((cfg.get("properties") or {}).get("subnet") or {}).get("id")
    vm_security = (facts.model.get("properties") or {}).get("securityProfile") or {}
    trusted_launch = (vm_security.get("securityType") or "").lower() == "trustedlaunch"
    command_id, script = fix_script(vm.os_type, lun, generation)
    credential = params.get("credential") or None
    if credential not in (None, "password", "ssh_key"):
        raise PlanError(f"unknown credential {credential!r}: a password or an SSH public key")
    if credential and picked:
        raise PlanError(f"{rescue_name} is your own VM and keeps its accounts: --password-stdin and --ssh-key are for a new rescue VM")
    if credential == "ssh_key" and windows:
        raise PlanError("a Windows rescue VM takes a password, not an SSH key")
    return RescueLayout(
        facts=facts,
        vm=vm,
        windows=windows,
        stamp=st,
        run_fixes=bool(params.get("run_fixes")),
        picked=picked,
        os_disk=os_disk,
        os_id=os_id,
        os_doc=os_doc,
        generation=generation,
        os_disk_rid=os_rid,
        sub=sub,
        location=(os_doc or {}).get("location") or vm.location,
        zones=list((os_doc or {}).get("zones") or vm.zones or ()),
        disk_sku=((os_doc or {}).get("sku") or {}).get("name") or os_disk.sku or "Premium_LRS",
        disk_security=copy.deepcopy(security_profile) if security_profile else None,
        snap_id=resource_id(os_rid.subscription_id or sub, os_rid.resource_group, "Microsoft.Compute/snapshots", snapshot_name(os_disk.name, st)),
        copy_name=copy_name,
        copy_id=resource_id(sub, os_rid.resource_group, "Microsoft.Compute/disks", copy_name),
        tags_base={FOR_TAG: vm.name},
        group=group,
        group_id=f"/subscriptions/{sub}/resourceGroups/{group}",
        rescue_doc=rescue_doc,
        rescue_id=rescue_id,
        rescue_name=rescue_name,
        lun=lun,
        nic_name=nic_name,
        nic_id=resource_id(sub, group, "Microsoft.Network/networkInterfaces", nic_name),
        rescue_os_disk=rescue_os_disk,
        rescue_os_disk_id=resource_id(sub, group, "Microsoft.Compute/disks", rescue_os_disk),
        subnet_id=subnet_id,
        image=RESCUE_IMAGES[("windows" if windows else "linux", "V2" if generation == "V2" else "V1")],
        rescue_security={"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}} if trusted_launch else None,
        command_id=command_id,
        script=script,
        verdict=facts.documents.get("boot_verdict"),
        credential=credential,
    )


def _blockers(layout: RescueLayout) -> list[str]:
    vm, picked, rescue_doc, rescue_id = layout.vm, layout.picked, layout.rescue_doc, layout.rescue_id
    rescue_name = layout.rescue_name
    sub, location, zones, disk_sku = layout.sub, layout.location, layout.zones, layout.disk_sku
    reason = unavailable(vm)
    blockers: list[str] = [reason] if reason else []
    if picked and rescue_doc is None:
        blockers.append(f"the rescue VM {picked} was not read")
    if rescue_doc is not None:
        if same_id(rescue_id, vm.id):
            blockers.append("the rescue VM must be another VM than the one being repaired")
        if ResourceId.parse(rescue_id).subscription_id.lower() != sub.lower():
            blockers.append(f"{rescue_name} is in another subscription: a disk can only be attached within its subscription")
        if (rescue_doc.get("location") or "").lower() != location.lower():
            blockers.append(f"{rescue_name} is in {rescue_doc.get('location')}, the disk copy will be in {location}: a disk attaches only in its region")
        if zones and sorted(rescue_doc.get("zones") or ()) != sorted(zones):
            blockers.append(f"{rescue_name} is not in zone {','.join(zones)} like the disk copy: a zonal disk attaches only in its zone")
        if _os_type_of(rescue_doc).lower() != vm.os_type.lower():
            blockers.append(f"{rescue_name} runs {_os_type_of(rescue_doc)} and the disk is {vm.os_type}: repair it from a VM of the same OS family")
        if power_state(rescue_doc) != "running":
            blockers.append(f"{rescue_name} is {power_state(rescue_doc)}: start it first, the repair happens on it")
        elif layout.run_fixes and _agent(rescue_doc) != "Ready":
            blockers.append(f"the VM agent of {rescue_name} reports '{_agent(rescue_doc)}': the common fixes need it (or leave out --run-fixes)")
        blockers += _rescue_vm_unfit(layout)
    if rescue_doc is None and not layout.subnet_id:
        blockers.append(f"the subnet of {vm.name}'s NIC could not be read: the rescue VM needs a network; pick an existing one with --rescue-vm")
    premium = disk_sku.lower().startswith(("premium", "ultra"))
    if premium and VmSize(vm.size, None, None, None, None).premium_io is False:
        blockers.append(f"the OS disk is {disk_sku} and {vm.size} has no premium storage: Azure would refuse the swap; resize first")
    return blockers


# Verdicts (backend/verdict.py) of a VM that cannot serve as a rescue VM: it does not boot itself,
# or Azure has it unavailable. The console's chooser offers none of them.
UNFIT_RESCUE_VERDICTS = frozenset({"not-booting", "platform-incident", "platform-unhealthy"})


def rescue_vm_refusal(vm: Vm, other: Vm, verdict: Verdict | None) -> str | None:
    """Why `other` (as the inventory knows it, with its verdict) cannot be the rescue VM that repairs
    `vm`'s OS disk, in one sentence; None: it can. The console lists only the VMs this passes and
    refuses a name typed there with its sentence; the plan checks the VM again as it reads it."""
    name = other.name
    if other.id.lower() == vm.id.lower():
        return f"{name} is the VM being repaired: the rescue VM must be another one"
    if other.subscription_id.lower() != vm.subscription_id.lower():
        return f"{name} is in another subscription: a disk can only be attached within its subscription"
    if other.location.lower() != vm.location.lower():
        return f"{name} is in {other.location} and {vm.name} in {vm.location}: a disk attaches only in its region"
    if other.os_type.lower() != vm.os_type.lower():
        return f"{name} runs {other.os_type} and the disk is {vm.os_type}: repair it from a VM of the same OS family"
    if other.vmss_id:
        return f"{name} is an instance of a scale set, which its model rebuilds: pick a standalone VM"
    if vm.zones and sorted(other.zones) != sorted(vm.zones):
        where = f"zone {','.join(other.zones)}" if other.zones else "no zone"
        return f"{name} is in {where} and the disk copy will be in zone {','.join(vm.zones)}: a zonal disk attaches only in its zone"
    if other.power_state != "running":
        return f"{name} is {other.power_state or 'in no known power state'}: start it first, the repair happens on it"
    if other.availability_state != "Available":
        return f"{name} is {other.availability_state or 'Unknown'} in Resource Health: pick a VM that is Available"
    if verdict is not None and verdict.id in UNFIT_RESCUE_VERDICTS:
        return f"{name} cannot repair another VM's disk ({verdict.label}: {verdict.summary})"
    return None


def _rescue_vm_unfit(layout: RescueLayout) -> list[str]:
    """A picked rescue VM must be Available in Resource Health and boot itself."""
    docs, name = layout.facts.documents, layout.rescue_name
    out = []
    health = docs.get("rescue_vm_health")
    state = ((health or {}).get("properties") or {}).get("availabilityState")
    if state and state != "Available":
        out.append(f"{name} is {state} in Resource Health: pick a VM that is Available")
    boot = docs.get("rescue_vm_boot") or {}
    if boot.get("booted") is False:
        out.append(f"{name} does not boot itself ({boot.get('summary') or 'see its serial log'}): pick a VM that boots")
    return out


def _controller(model: dict[str, Any] | None) -> str:
    storage = ((model or {}).get("properties") or {}).get("storageProfile") or {}
    return str(storage.get("diskControllerType") or "SCSI").upper().replace("NVME", "NVMe")


def rescue_vm_mismatches(layout: RescueLayout) -> list[str]:
    """A picked rescue VM of another Hyper-V generation or disk controller than the broken VM:
    a known cause of failed repairs and swaps (az vm repair). Warned, not refused."""
    doc = layout.rescue_doc
    if doc is None:
        return []
    out = []
    view = (doc.get("properties") or {}).get("instanceView") or {}
    theirs = str(view.get("hyperVGeneration") or "").upper()
    if theirs and theirs != layout.generation:
        out.append(
            f"{layout.rescue_name} is Hyper-V generation {theirs} and {layout.vm.name}'s disk is {layout.generation}: "
            "the repair tools boot and mount another layout (BIOS/MBR or UEFI/GPT); a rescue VM of the same generation is safer."
        )
    ours, theirs_c = _controller(layout.facts.model), _controller(doc)
    if ours != theirs_c:
        out.append(
            f"{layout.rescue_name} attaches disks by {theirs_c} and {layout.vm.name} by {ours}: device names differ "
            "(/dev/sdX or /dev/nvme0nX) and a repair written for one may not fit the other; a rescue VM with the same controller is safer."
        )
    return out


def _warnings(layout: RescueLayout) -> list[str]:
    vm, verdict = layout.vm, layout.verdict
    warnings: list[str] = rescue_vm_mismatches(layout)
    for lock in layout.facts.locks or ():
        if lock.level.lower() == "cannotdelete" and lock.scope_kind == "subscription" and layout.new_rescue:
            warnings.append(
                f"{lock.describe()}: it also covers the rescue group, which the cleanup then cannot delete; delete it yourself after removing the lock."
            )
    if verdict and verdict.get("summary"):
        warnings.append(f"Serial log: {verdict['summary']}.")
    if layout.new_rescue and layout.credential is None:
        warnings.append(
            f"No way in was given for the rescue VM: {ADMIN} gets a random password that is never kept. Give your SSH key (Linux) or a password "
            f"(--ssh-key FILE or --password-stdin; asked in the console), or set one later with reset-access before you sign in."
        )
    warnings.append(
        f"{vm.name} is down until the repaired disk is swapped in; the original OS disk stays, detached, and the snapshot is kept until you release it (aztriage runs --release RUN_ID)."
    )
    if vm.power_state == "running":
        warnings.append("The snapshot of a running VM is crash-consistent (like pulling the plug): right for a VM that does not boot.")
    return warnings


def sign_in(layout: RescueLayout) -> str:
    """How the operator signs in to a new rescue VM: the account and what proves it (never the secret)."""
    if layout.credential == "ssh_key":
        return f"{ADMIN} with your SSH public key (password sign-in off)"
    if layout.credential == "password":
        return f"{ADMIN} with the password you typed (never kept)"
    return f"nobody yet: {ADMIN} has a random password that is never kept"


def reach(layout: RescueLayout, private_ip: str | None = None) -> list[str]:
    """Where a new rescue VM is reached (it has no public IP): lines of prose, each command on an
    indented line of its own, whole, so it is copied as it is (fold_text folds it for a narrow screen)."""
    address = private_ip or "PRIVATE_IP"
    name = layout.rescue_name
    lines: list[str] = []
    if layout.credential is None:
        lines += [f"First give {ADMIN} a password or key:", "    " + sh("aztriage", "recover", "--vm", name, "--scenario", "reset-access", "--password-stdin")]
    where = f"from a machine in {layout.vm.name}'s virtual network (a VPN, or another VM there)"
    if not private_ip:
        where += " (PRIVATE_IP: the rescue VM's private address, shown when it is created)"
    bastion = [
        "az",
        "network",
        "bastion",
        "rdp" if layout.windows else "ssh",
        "--name",
        "BASTION",
        "--resource-group",
        "BASTION_GROUP",
        "--target-resource-id",
        layout.rescue_id,
    ]
    if layout.windows:
        lines += [f"By RDP {where}:", "    " + sh("mstsc", f"/v:{address}")]
    else:
        lines += [f"By SSH {where}:", "    " + sh("ssh", f"{ADMIN}@{address}")]
        bastion += ["--auth-type", "ssh-key" if layout.credential == "ssh_key" else "password", "--username", ADMIN]
    lines += ["or through Azure Bastion:", "    " + sh(*bastion)]
    console = "or its serial console (i in the console)"
    if layout.credential == "ssh_key":
        console += ", which signs in with a password: set one with reset-access first"
    lines += [console + ":", "    " + sh("aztriage", "console", "--vm", name)]
    return lines


def one_line(lines: list[str]) -> str:
    """reach()'s lines as one line (the journal's message, a CLI line): a command ends at its ';'."""
    return " ".join(line.strip() + (";" if line[:1].isspace() else "") for line in lines).rstrip(";")


def _instructions(layout: RescueLayout, private_ip: str | None = None) -> str:
    """What the operator does on the rescue VM, with the commands for this disk at its LUN, each
    command on an indented line of its own (whole, so it pastes as it is)."""
    vm, rescue_name, lun, copy_name = layout.vm, layout.rescue_name, layout.lun, layout.copy_name
    commands = repair_commands(vm.os_type, lun, layout.generation, vm.name, copy_name, layout.verdict)
    head = f"Repair the copy {copy_name} ({vm.os_type}, attached at LUN {lun}) on the rescue VM {rescue_name}"
    if layout.new_rescue:
        lines = [head + (f" (private IP {private_ip}, no public IP)." if private_ip else ": it has no public IP."), f"Sign in as {sign_in(layout)}."]
        lines += reach(layout, private_ip)
    else:
        lines = [head + f", where the copy is the disk at LUN {lun}."]
    return "\n".join(
        lines
        + [f"Then, as {'Administrator (PowerShell)' if layout.windows else 'root'}:"]
        + [f"  {line}" for line in commands]
        + [
            "When the copy is repaired (and unmounted), say so (d in the Recovery pane):",
            "  " + sh("aztriage", "recover", "--resume", "RUN_ID", "--operator-done"),
        ]
    )


async def rescue_private_ip(ctx: StepContext, layout: RescueLayout) -> str | None:
    """The new rescue VM's private IP, read from its NIC (dynamic: known once the NIC exists)."""
    if not layout.new_rescue:
        return None
    doc = await ctx.backend.get_nic(layout.nic_id)
    for cfg in ((doc or {}).get("properties") or {}).get("ipConfigurations") or ():
        address = (cfg.get("properties") or {}).get("privateIPAddress")
        try:
            return str(ipaddress.ip_address(str(address))) if address else None
        except ValueError:
            return None  # not an address: never pasted into a command
    return None


def _snapshot_step(layout: RescueLayout) -> Step | None:
    """1. The snapshot of the OS disk: the safety net, kept until the operator releases it."""
    if not layout.os_disk.id:
        return None
    note = f"snapshot of {layout.vm.name}'s original OS disk: kept until you release it"
    return kept_snapshot_step(layout.facts, layout.os_disk, "OS", layout.snap_id, note)


def _copy_step(layout: RescueLayout) -> Step:
    """2. A copy of the OS disk from the snapshot, in the OS disk's resource group."""
    vm, os_doc, generation, zones = layout.vm, layout.os_doc, layout.generation, layout.zones
    copy_name, disk_sku = layout.copy_name, layout.disk_sku
    copy_props: dict[str, Any] = {
        "creationData": {"createOption": "Copy", "sourceResourceId": layout.snap_id},
        "osType": vm.os_type,
        "hyperVGeneration": generation,
    }
    if layout.disk_security:
        copy_props["securityProfile"] = layout.disk_security
    disk_copy = DiskCopy(
        copy_id=layout.copy_id,
        snapshot_id=layout.snap_id,
        location=layout.location,
        sku=disk_sku,
        zones=tuple(zones),
        tags=layout.tags_base,
        properties=copy_props,
        creating_note=f"copy of {vm.name}'s OS disk, repaired on the rescue VM",
        # Kept until released (or until it becomes the VM's OS disk, in the swap step).
        kept_note=f"copy of {vm.name}'s OS disk, repaired on the rescue VM: kept until you release it",
    )

    def mismatch(doc: dict[str, Any]) -> str | None:
        problems = _mismatch(doc, generation, security_type(disk_props(os_doc)), vm.os_type)
        if sorted(doc.get("zones") or ()) != sorted(zones):
            problems.append(f"zone {','.join(doc.get('zones') or ()) or 'none'} instead of {','.join(zones) or 'none'}")
        return f"the copy {copy_name} does not match the OS disk: " + "; ".join(problems) if problems else None

    def described(doc: dict[str, Any]) -> str:
        props = disk_props(doc)
        return f"copy {copy_name}: {generation}, {security_type(props)}, {props.get('osType')}, " + (f"zone {','.join(zones)}" if zones else "regional")

    return disk_copy_step(
        disk_copy,
        key="copy-disk",
        title=f"Copy the OS disk from the snapshot to {copy_name}",
        why="The repair works on a copy: the original OS disk and the snapshot stay untouched whatever happens on the rescue VM.",
        changes=f"creates disk {copy_name} ({disk_sku}, {generation}, {security_type(disk_props(os_doc))}"
        + (f", zone {','.join(zones)}" if zones else "")
        + f") in {layout.os_disk_rid.resource_group}",
        undo="release it with aztriage runs --release RUN_ID while it is not the VM's OS disk",
        created=f"disk {copy_name} created from the snapshot",
        mismatch=mismatch,
        described=described,
    )


def _group_step(layout: RescueLayout) -> Step:
    """3. The rescue VM's resource group (a new rescue VM only)."""
    vm, sub, location, tags_base = layout.vm, layout.sub, layout.location, layout.tags_base
    group, group_id = layout.group, layout.group_id

    async def group_pre(ctx: StepContext) -> Check:
        return run_tagged(
            ctx,
            await ctx.backend.get_group(sub, group),
            absent=f"no group named {group} yet",
            made=f"resource group {group} exists (made by this run)",
            foreign=f"a resource group named {group} already exists and was not made by this run: aztriage never uses (or deletes) a group it did not create",
        )

    async def group_run(ctx: StepContext) -> str:
        body = {"location": location, "tags": dict(tags_base, **{RUN_TAG: ctx.run_id})}
        await tracked_create(
            ctx,
            group_id,
            kind="resource-group",
            note=f"made for the rescue of {vm.name}; deleted by the run's cleanup",
            create=lambda: ctx.backend.create_group(sub, group, body),
            exists=exists_by(lambda: ctx.backend.get_group(sub, group)),
        )
        return f"resource group {group} created in {location}"

    async def group_verify(ctx: StepContext) -> Verification:
        doc = await ctx.backend.get_group(sub, group)
        if doc is None or tag_of(doc, RUN_TAG) != ctx.run_id:
            return not_verified(f"resource group {group} does not exist (or is not this run's)")
        await ctx.record_resource(group_id, kind="resource-group", state="created")
        return verified(f"resource group {group} in {doc.get('location')}, tagged {RUN_TAG}={ctx.run_id}")

    return Step(
        key="rescue-group",
        title=f"Create resource group {group} for the rescue VM",
        why="A group of its own holds everything the repair needs and nothing else, so the cleanup deletes exactly that.",
        changes=f"creates resource group {group} in {location}, tagged {RUN_TAG}",
        kind=Kind.CHANGE,
        undo="the cleanup step deletes it",
        creates="resource-group",
        precondition=group_pre,
        run=group_run,
        verify=group_verify,
    )


def _nic_step(layout: RescueLayout) -> Step:
    """The rescue VM's NIC, in the VM's own subnet, without a public IP."""
    vm, location, tags_base, group = layout.vm, layout.location, layout.tags_base, layout.group
    nic_name, nic_id, subnet_id = layout.nic_name, layout.nic_id, layout.subnet_id

    async def nic_pre(ctx: StepContext) -> Check:
        return run_tagged(
            ctx,
            await ctx.backend.get_nic(nic_id),
            absent=f"no NIC named {nic_name} yet",
            made=f"NIC {nic_name} exists",
            foreign=f"a NIC named {nic_name} exists in {group} and was not made by this run",
        )

    async def nic_run(ctx: StepContext) -> str:
        body = {
            "location": location,
            "tags": dict(tags_base, **{RUN_TAG: ctx.run_id}),
            "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic"}}]},
        }

        async def create() -> Any:
            return await ctx.backend.put_nic(nic_id, body, **await ctx.lro("nic", journal_token=False))

        exists = exists_by(lambda: ctx.backend.get_nic(nic_id))
        await tracked_create(ctx, nic_id, kind="network-interface", note="NIC of the rescue VM (deleted with its group)", create=create, exists=exists)
        return f"NIC {nic_name} created in subnet {short(subnet_id or '')}"

    async def nic_verify(ctx: StepContext) -> Verification:
        if await ctx.backend.get_nic(nic_id) is None:
            return not_verified(f"NIC {nic_name} does not exist")
        await ctx.record_resource(nic_id, kind="network-interface", state="created")
        return verified(f"NIC {nic_name} in subnet {short(subnet_id or '')} (no public IP)")

    return Step(
        key="rescue-nic",
        title=f"Create the rescue VM's NIC {nic_name}",
        why=f"The rescue VM sits in {vm.name}'s own subnet, reachable the way {vm.name} is, without a public IP.",
        changes=f"creates NIC {nic_name} in {group}, in subnet {short(subnet_id or '?')}",
        kind=Kind.CHANGE,
        undo="deleted with the group by the cleanup step",
        creates="network-interface",
        precondition=nic_pre,
        run=nic_run,
        verify=nic_verify,
    )


def _rescue_vm_step(layout: RescueLayout) -> Step:
    """The new rescue VM: the same OS family, generation, region and zone."""
    vm, windows, generation, location = layout.vm, layout.windows, layout.generation, layout.location
    zones, tags_base, group, rescue_id = layout.zones, layout.tags_base, layout.group, layout.rescue_id
    rescue_name, nic_id, rescue_os_disk, rescue_os_disk_id = layout.rescue_name, layout.nic_id, layout.rescue_os_disk, layout.rescue_os_disk_id
    image, rescue_security = layout.image, layout.rescue_security

    credential = layout.credential

    def rescue_body(run_id: str, secrets_given: dict[str, str]) -> dict[str, Any]:
        os_profile: dict[str, Any] = {"computerName": arm_name(rescue_name, "", 15) if windows else rescue_name, "adminUsername": ADMIN}
        if credential == "ssh_key":
            # Key only: no password to guess; the key goes where Azure's Linux agent installs it.
            key = {"path": f"/home/{ADMIN}/.ssh/authorized_keys", "keyData": secrets_given["ssh_key"]}
            os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [key]}, "provisionVMAgent": True}
        else:
            os_profile["adminPassword"] = secrets_given["password"] if credential == "password" else _password()
            if windows:
                os_profile["windowsConfiguration"] = {"provisionVMAgent": True}
            else:
                os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": False, "provisionVMAgent": True}
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": vm.size},
            "storageProfile": {
                "imageReference": dict(image),
                "osDisk": {
                    "name": rescue_os_disk,
                    "osType": vm.os_type,
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {"storageAccountType": RESCUE_OS_SKU},
                    "deleteOption": "Delete",
                },
            },
            "osProfile": os_profile,
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True, "deleteOption": "Delete"}}]},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        }
        if rescue_security:
            props["securityProfile"] = rescue_security
        body: dict[str, Any] = {"location": location, "tags": dict(tags_base, **{RUN_TAG: run_id}), "properties": props}
        if zones:
            body["zones"] = zones
        return body

    async def rescue_pre(ctx: StepContext) -> Check:
        doc = await get_vm(ctx, rescue_id)
        if doc is not None and tag_of(doc, RUN_TAG) == ctx.run_id and provisioning(doc)[0] == "failed":
            return ready(f"the earlier create of {rescue_name} failed: sending it again")
        return run_tagged(
            ctx,
            doc,
            absent=f"no VM named {rescue_name} yet",
            made=f"the rescue VM {rescue_name} exists",
            foreign=f"a VM named {rescue_name} exists in {group} and was not made by this run",
        )

    async def rescue_run(ctx: StepContext) -> str:
        await ctx.record_resource(rescue_os_disk_id, kind="disk", state="creating", note="OS disk of the rescue VM (deleted with its group)")

        if credential and not ctx.secrets.get(credential):
            raise StepFailed(f"the {credential.replace('_', ' ')} for {ADMIN} was not given (secrets are never kept: give it again)")

        async def create() -> Any:
            body = rescue_body(ctx.run_id, ctx.secrets)
            existing = await get_vm(ctx, rescue_id)
            if existing is not None and os_disk_of(existing):
                # Sent again after a failed create: the VM keeps the OS disk it already has.
                body["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"] = os_disk_of(existing)
            # No continuation token: the request carries the generated password. A resumed
            # run recognises the VM itself (its precondition) and waits for it.
            return await ctx.backend.put_vm(rescue_id, body, **await ctx.lro("rescue-vm", journal_token=False))

        exists = exists_by(lambda: get_vm(ctx, rescue_id))
        await tracked_create(ctx, rescue_id, kind="rescue-vm", note=f"rescue VM for {vm.name} (deleted with its group)", create=create, exists=exists)
        started = await start_if_stopped(ctx, rescue_id, rescue_name, "rescue-start")
        return f"rescue VM {rescue_name} created ({vm.size}, {image['offer']} {image['sku']})" + started

    async def rescue_verify(ctx: StepContext) -> Verification:
        doc = await wait_for_vm(ctx, rescue_id, vm_settled)
        if doc is None:
            return not_verified(f"the rescue VM {rescue_name} does not exist")
        state, _ = provisioning(doc)
        if state != "succeeded" or power_state(doc) != "running":
            return not_verified(f"the rescue VM {rescue_name} is {power_state(doc)}, provisioning {state}")
        await ctx.record_resource(rescue_id, kind="rescue-vm", state="created")
        if await ctx.backend.get_disk_document(rescue_os_disk_id) is not None:
            await ctx.record_resource(rescue_os_disk_id, kind="disk", state="created")
        address = await rescue_private_ip(ctx, layout)
        where = f"; private IP {address}, no public IP" if address else "; no public IP"
        return verified(f"rescue VM {rescue_name} runs ({_os_type_of(doc)}, {generation}" + (f", zone {','.join(zones)}" if zones else "") + ")" + where)

    return Step(
        key="rescue-vm",
        title=f"Create the rescue VM {rescue_name}",
        why=f"A working {vm.os_type} VM of the same generation ({generation}) in the same region" + (" and zone" if zones else "") + " to attach the copy to.",
        changes=f"creates VM {rescue_name} ({vm.size}, {image['offer']} {image['sku']}) in {group}, no public IP; sign-in: {sign_in(layout)}",
        kind=Kind.CHANGE,
        undo="deleted with the group by the cleanup step",
        creates="rescue-vm",
        uses_secrets=bool(credential),
        precondition=rescue_pre,
        run=rescue_run,
        verify=rescue_verify,
    )


def _picked_check_step(layout: RescueLayout) -> Step:
    """The operator's rescue VM, checked before the copy goes to it."""
    copy_id, rescue_id, rescue_name, lun = layout.copy_id, layout.rescue_id, layout.rescue_name, layout.lun

    async def picked_verify(ctx: StepContext) -> Verification:
        doc = await get_vm(ctx, rescue_id)
        if doc is None:
            return not_verified(f"{rescue_name} no longer exists")
        if power_state(doc) != "running":
            return not_verified(f"{rescue_name} is {power_state(doc)}: start it first")
        taken = lun_of(doc, copy_id)
        if taken is None and lun in {ref.get("lun") for ref in data_disk_refs(doc)}:
            return not_verified(f"LUN {lun} of {rescue_name} is in use now: resume after freeing it, or start a new run")
        return verified(f"{rescue_name} runs ({_os_type_of(doc)}); the copy goes to its LUN {lun}")

    return Step(
        key="rescue-check",
        title=f"Check the rescue VM {rescue_name}",
        why="The copy is attached to a VM you picked: it must run, in the same region and zone, with a free LUN.",
        changes="nothing (reads the VM)",
        kind=Kind.CHECK,
        verify=picked_verify,
    )


def _attach_step(layout: RescueLayout) -> Step:
    """4. The copy attached to the rescue VM as a data disk."""
    windows, copy_name, copy_id, rescue_id = layout.windows, layout.copy_name, layout.copy_id, layout.rescue_id
    rescue_name, lun = layout.rescue_name, layout.lun

    async def attach_pre(ctx: StepContext) -> Check:
        doc = await get_vm(ctx, rescue_id)
        if doc is None:
            return blocked(f"the rescue VM {rescue_name} does not exist")
        at = lun_of(doc, copy_id)
        if at is not None:
            return already_done(f"the copy is attached to {rescue_name} at LUN {at}")
        if lun in {ref.get("lun") for ref in data_disk_refs(doc)}:
            return blocked(f"LUN {lun} of {rescue_name} is in use")
        copy_doc = await ctx.backend.get_disk_document(copy_id)
        if copy_doc is None:
            return blocked(f"the copy {copy_name} does not exist")
        if copy_doc.get("managedBy"):
            return blocked(f"the copy {copy_name} is attached to {short(copy_doc['managedBy'])}")
        return ready(f"LUN {lun} of {rescue_name} is free")

    async def attach_run(ctx: StepContext) -> str:
        doc = await get_vm(ctx, rescue_id)
        if doc is None:
            raise StepFailed(f"the rescue VM {rescue_name} does not exist")
        disks = data_disk_refs(doc) + [
            {"lun": lun, "name": copy_name, "createOption": "Attach", "caching": "None", "managedDisk": {"id": copy_id}, "deleteOption": "Detach"}
        ]
        await ctx.backend.update_vm(
            rescue_id, {"properties": {"storageProfile": {"dataDisks": disks}}}, **await ctx.lro("attach", journal_token=layout.token_kept)
        )
        return f"copy attached to {rescue_name} at LUN {lun}"

    async def attach_verify(ctx: StepContext) -> Verification:
        doc = await get_vm(ctx, rescue_id)
        at = lun_of(doc, copy_id)
        if at is None:
            return not_verified(f"the copy is not attached to {rescue_name}")
        device = f"disk at LUN {at}" if windows else f"/dev/disk/azure/scsi1/lun{at}"
        return verified(f"the copy is {device} on {rescue_name}")

    return Step(
        key="attach-copy",
        title=f"Attach the copy to {rescue_name} at LUN {lun}",
        why="On the rescue VM the copy is an ordinary data disk: its file systems (or its registry) can be checked and edited.",
        changes=f"attaches {copy_name} as a data disk of {rescue_name} at LUN {lun}",
        kind=Kind.CHANGE,
        undo="the detach step detaches it",
        precondition=attach_pre,
        run=attach_run,
        verify=attach_verify,
    )


def _fixes_step(layout: RescueLayout) -> Step:
    """5. The common fixes, run on the rescue VM by run command (--run-fixes)."""
    windows, copy_id, rescue_id, rescue_name = layout.windows, layout.copy_id, layout.rescue_id, layout.rescue_name
    lun, command_id, script = layout.lun, layout.command_id, layout.script

    async def fixes_pre(ctx: StepContext) -> Check:
        doc = await get_vm(ctx, rescue_id)
        if doc is None:
            return blocked(f"the rescue VM {rescue_name} does not exist")
        if power_state(doc) != "running" or _agent(doc) != "Ready":
            return blocked(
                f"{rescue_name} is {power_state(doc)} with its VM agent '{_agent(doc)}': run command needs both; repair the copy by hand (the next step lists the commands)"
            )
        if lun_of(doc, copy_id) is None:
            return blocked(f"the copy is not attached to {rescue_name}")
        return ready(f"{rescue_name} runs and its agent is ready")

    async def fixes_run(ctx: StepContext) -> str:
        started = time.monotonic()
        result = await ctx.backend.run_command(rescue_id, command_id, script=script, **await ctx.lro("fixes"))
        stdout, stderr = command_output(result)
        await ctx.save(stdout=stdout[-OUTPUT_KEPT:], stderr=stderr[-OUTPUT_KEPT:])
        for line in [x for x in stdout.strip().splitlines() if x.strip()][-6:]:
            await ctx.log(line[:200])
        return f"{command_id} ran on {rescue_name} in {time.monotonic() - started:.0f} s"

    async def fixes_verify(ctx: StepContext) -> Verification:
        if ctx.recognised:
            return verified(ctx.recognised)
        out = (ctx.outputs.get("stdout") or "") + "\n" + (ctx.outputs.get("stderr") or "")
        refused = [line for line in out.splitlines() if "REFUSED" in line]
        if refused:
            return not_verified(refused[0].strip()[:200])
        lines = [x for x in (ctx.outputs.get("stdout") or "").strip().splitlines() if x.strip()]
        return verified("the common fixes ran: " + (lines[-1][:200] if lines else "no output"))

    return Step(
        key="common-fixes",
        title=f"Run the common fixes on {rescue_name} by run command",
        why=(
            "chkdsk, the SYSTEM hive's RDP, firewall and storvsc settings, and the BCD: what makes most Windows VMs boot and answer RDP again."
            if windows
            else "fsck on the root file system, nofail on data-disk entries in fstab, a checked sshd_config: what makes most Linux VMs boot and answer SSH again."
        ),
        changes=f"runs {command_id} on {rescue_name} against the copy at LUN {lun} (never the rescue VM's own disks)",
        kind=Kind.CHANGE,
        warnings=("Run command runs as SYSTEM/root, one at a time, cannot be cancelled and needs outbound HTTPS from the rescue VM to Azure.",),
        needs_agent=True,
        undo="the original OS disk and the snapshot are untouched: make a new copy to start over",
        precondition=fixes_pre,
        run=fixes_run,
        verify=fixes_verify,
    )


def _repair_step(layout: RescueLayout) -> Step:
    """6. The operator repairs the copy; the run waits."""
    copy_name, rescue_name = layout.copy_name, layout.rescue_name

    async def operator_pre(ctx: StepContext) -> Check:
        address = await rescue_private_ip(ctx, layout)
        where = f" (private IP {address}; sign in as {sign_in(layout)}: {one_line(reach(layout, address))})" if layout.new_rescue else ""
        # The instructions again, now that the rescue VM's address is known: what the operator is shown.
        return wait_for_operator(
            f"repair the copy {copy_name} on {rescue_name}{where}, then resume with --operator-done", instructions=_instructions(layout, address)
        )

    async def operator_verify(ctx: StepContext) -> Verification:
        return verified("the operator said the copy is repaired")

    return Step(
        key="repair",
        title=f"Repair the copy on {rescue_name} (you)",
        why="Only a person can judge what the disk needs; the commands for this disk are listed, and the run waits until you say it is done.",
        changes=f"whatever you change on the copy {copy_name}; the original OS disk and the snapshot stay untouched",
        kind=Kind.MANUAL,
        instructions=_instructions(layout),
        precondition=operator_pre,
        verify=operator_verify,
    )


def _detach_step(layout: RescueLayout) -> Step:
    """The copy detached from the rescue VM."""
    vm, copy_name, copy_id, rescue_id = layout.vm, layout.copy_name, layout.copy_id, layout.rescue_id
    rescue_name = layout.rescue_name

    async def detach_pre(ctx: StepContext) -> Check:
        doc = await get_vm(ctx, rescue_id)
        if doc is None or lun_of(doc, copy_id) is None:
            copy_doc = await ctx.backend.get_disk_document(copy_id)
            if copy_doc is None:
                return blocked(f"the copy {copy_name} no longer exists")
            if copy_doc.get("managedBy") and not same_id(copy_doc.get("managedBy"), vm.id):
                return blocked(f"the copy {copy_name} is attached to {short(copy_doc['managedBy'])}")
            return already_done(f"the copy is not attached to {rescue_name}")
        return ready(f"the copy is at LUN {lun_of(doc, copy_id)} of {rescue_name}")

    async def detach_run(ctx: StepContext) -> str:
        doc = await get_vm(ctx, rescue_id)
        disks = [ref for ref in data_disk_refs(doc) if not same_id((ref.get("managedDisk") or {}).get("id"), copy_id)]
        await ctx.backend.update_vm(
            rescue_id, {"properties": {"storageProfile": {"dataDisks": disks}}}, **await ctx.lro("detach", journal_token=layout.token_kept)
        )
        return f"copy detached from {rescue_name}"

    async def detach_verify(ctx: StepContext) -> Verification:
        copy_doc = await ctx.backend.get_disk_document(copy_id)
        if copy_doc is None:
            return not_verified(f"the copy {copy_name} no longer exists")
        owner = copy_doc.get("managedBy")
        if owner and not same_id(owner, vm.id):
            return not_verified(f"the copy is still attached to {short(owner)}")
        return verified(f"the copy {copy_name} is detached")

    return Step(
        key="detach-copy",
        title=f"Detach the copy from {rescue_name}",
        why="A disk is attached to one VM at a time: it has to leave the rescue VM to become the OS disk.",
        changes=f"detaches {copy_name} from {rescue_name}",
        kind=Kind.CHANGE,
        undo="attach it again (the repair step's commands still apply)",
        precondition=detach_pre,
        run=detach_run,
        verify=detach_verify,
    )


def _deallocate_step(layout: RescueLayout) -> Step:
    """The VM deallocated: Azure swaps the OS disk of a deallocated VM only."""
    return deallocate_to_swap_step(layout.facts, "start it (until the swap it still has its original OS disk)")


def _swap_step(layout: RescueLayout) -> Step:
    """7. The VM's OS disk swapped to the repaired copy."""
    vm, os_disk, os_id, generation = layout.vm, layout.os_disk, layout.os_id, layout.generation
    copy_name, copy_id = layout.copy_name, layout.copy_id

    async def swap_pre(ctx: StepContext) -> Check:
        model = await ctx.current_model()
        if same_id(os_disk_of(model), copy_id):
            return already_done(f"{vm.name} already boots from {copy_name}")
        power = power_state(model)
        if power not in ("stopped", "deallocated"):
            return blocked(f"{vm.name} is {power}: Azure swaps the OS disk only of a stopped (deallocated) VM")
        copy_doc = await ctx.backend.get_disk_document(copy_id)
        if copy_doc is None:
            return blocked(f"the copy {copy_name} does not exist")
        if copy_doc.get("managedBy"):
            return blocked(f"the copy {copy_name} is still attached to {short(copy_doc['managedBy'])}: detach it first")
        current_os = await ctx.backend.get_disk_document(os_disk_of(model) or "") if os_disk_of(model) else None
        want_generation = str(disk_props(current_os).get("hyperVGeneration") or generation).upper()
        want_security = str(((model.get("properties") or {}).get("securityProfile") or {}).get("securityType") or "Standard")
        want_os = str((((model.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}).get("osType") or vm.os_type)
        problems = _mismatch(copy_doc, want_generation, want_security, want_os)
        sku = (copy_doc.get("sku") or {}).get("name") or ""
        size = ((model.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize") or vm.size
        if sku.lower().startswith(("premium", "ultra")) and VmSize(size, None, None, None, None).premium_io is False:
            problems.append(f"the copy is {sku} and {size} has no premium storage")
        if problems:
            return blocked(f"the copy {copy_name} cannot be {vm.name}'s OS disk: " + "; ".join(problems) + "; nothing was swapped")
        return ready(f"{vm.name} is {power}; the copy matches ({want_generation}, {want_security}, {want_os})")

    async def swap_run(ctx: StepContext) -> str:
        model = await ctx.current_model()
        original = os_disk_of(model)
        if original and not same_id(original, copy_id):
            await ctx.save(original_os_disk=original)
        return await swap_os_disk(ctx, vm, copy_id)

    async def swap_verify(ctx: StepContext) -> Verification:
        model = await ctx.current_model()
        if not same_id(os_disk_of(model), copy_id):
            return not_verified(f"{vm.name} still boots from {short(os_disk_of(model) or '?')}")
        original = await ctx.backend.get_disk_document(os_id)
        if original is None:
            return not_verified(f"the original OS disk {os_disk.name} is gone")
        if original.get("managedBy"):
            return not_verified(f"the original OS disk {os_disk.name} is attached to {short(original['managedBy'])}")
        await ctx.record_resource(copy_id, kind="disk-copy", state="in-use", note=f"the OS disk of {vm.name} now (yours: aztriage never deletes it)")
        return verified(f"{vm.name} boots from {copy_name}; the original OS disk {os_disk.name} is kept, detached")

    return Step(
        key="swap-os-disk",
        title=f"Swap {vm.name}'s OS disk to the repaired copy",
        why="The VM keeps its identity, NICs, IPs and data disks; only the disk it boots from changes.",
        changes=f"sets the OS disk of {vm.name} to {copy_name}; the original OS disk {os_disk.name} is detached and kept",
        kind=Kind.CHANGE,
        undo=f"swap back: set the OS disk to {os_disk.name} again (deallocated VM)",
        precondition=swap_pre,
        run=swap_run,
        verify=swap_verify,
    )


def _start_step(layout: RescueLayout) -> Step:
    """The VM started on the repaired disk."""
    facts, vm, os_disk = layout.facts, layout.vm, layout.os_disk
    return power_step(
        facts,
        action="start",
        key="start",
        title=f"Start {vm.name} on the repaired disk",
        why="The proof of the repair is the VM booting.",
        changes=f"starts {vm.name}",
        kind=Kind.CHANGE,
        undo=f"to undo the repair: deallocate {vm.name} and swap its OS disk back to {os_disk.name}",
        allowed_from=(),
        final_power="running",
        done_when=lambda m: f"{vm.name} is running" if power_state(m) == "running" else None,
    )


def _boot_check_step(layout: RescueLayout) -> Step:
    """Did it boot? The serial log says."""
    vm = layout.vm

    async def boot_verify(ctx: StepContext) -> Verification:
        from backend import bootdiag

        deadline = time.monotonic() + reach_timeout(ctx.settings)
        while True:
            try:
                data = await ctx.backend.boot_diagnostics(vm, screenshot=False)
            except BackendError as exc:
                return verified(f"the serial log could not be read ({exc}); the next check tries RDP/SSH")
            result = await asyncio.to_thread(bootdiag.analyze, data.serial_log or "", vm.os_type)
            if result.booted:
                return verified(f"serial log: {result.summary}")
            if time.monotonic() >= deadline:
                if result.booted is False:
                    return not_verified(f"the serial log says {vm.name} still does not boot: {result.problem}")
                return verified(f"serial log: {result.summary}")
            await asyncio.sleep(max(0.2, min(5.0, (ctx.settings.polling_interval or 5.0) * 5)))

    return Step(
        key="check-boot",
        title="Check in the serial log that it booted",
        why="Azure saying the VM runs says nothing about the OS: the serial log shows whether the boot reached the login prompt.",
        changes="nothing (reads the serial log through boot diagnostics)",
        kind=Kind.CHECK,
        verify=boot_verify,
    )


def _cleanup_step(layout: RescueLayout) -> Step:
    """8. The rescue group deleted, when it holds only what the run's ledger lists."""
    os_id, sub, snap_id, copy_name = layout.os_id, layout.sub, layout.snap_id, layout.copy_name
    copy_id, group, group_id = layout.copy_id, layout.group, layout.group_id

    async def cleanup_pre(ctx: StepContext) -> Check:
        doc = await ctx.backend.get_group(sub, group)
        if doc is None:
            return already_done(f"resource group {group} is gone")
        if tag_of(doc, RUN_TAG) != ctx.run_id:
            return blocked(f"resource group {group} was not made by this run: aztriage never deletes it")
        ledger = {r.resource_id.lower() for r in ctx.journal.resources(ctx.run_id)}
        held = await ctx.backend.group_resources(sub, group)
        strangers = [r.get("name") or short(r.get("id") or "") for r in held if (r.get("id") or "").lower() not in ledger]
        if strangers:
            return blocked(
                f"resource group {group} holds {', '.join(strangers)}, which this run did not create: move or delete them, then resume (the group stays)"
            )
        copy_doc = await ctx.backend.get_disk_document(copy_id)
        if copy_doc is not None and copy_doc.get("managedBy") and (copy_doc["managedBy"].lower().startswith(group_id.lower() + "/")):
            return blocked(f"the copy {copy_name} is still attached to {short(copy_doc['managedBy'])}")
        return ready(f"resource group {group} holds only what this run created: " + ", ".join(r.get("name") or "" for r in held))

    async def cleanup_run(ctx: StepContext) -> str:
        await ctx.backend.delete_group(sub, group, **await ctx.lro("group-delete"))
        return f"resource group {group} deleted with the rescue VM, its NIC and its OS disk"

    async def cleanup_verify(ctx: StepContext) -> Verification:
        if await ctx.backend.get_group(sub, group) is not None:
            return not_verified(f"resource group {group} still exists")
        for kept, what in ((copy_id, "the repaired disk"), (snap_id, "the snapshot"), (os_id, "the original OS disk")):
            doc = await (ctx.backend.get_snapshot(kept) if kept == snap_id else ctx.backend.get_disk_document(kept))
            if doc is None:
                return not_verified(f"{what} {short(kept)} is gone")
        prefix = group_id.lower() + "/"
        for res in ctx.journal.resources(ctx.run_id):
            if res.resource_id.lower() == group_id.lower() or res.resource_id.lower().startswith(prefix):
                ctx.journal.record_resource(
                    ctx.run_id,
                    res.resource_id,
                    kind=res.kind,
                    step_key=res.step_key,
                    state="deleted",
                    note=f"deleted with resource group {group} by the run's cleanup",
                )
        return verified(f"resource group {group} is gone; the repaired disk, the snapshot and the original OS disk are all still there")

    return Step(
        key="cleanup",
        title=f"Delete the rescue group {group}",
        why="The rescue VM, its NIC and its OS disk are no longer needed; the group holds only what this run created.",
        changes=f"deletes resource group {group} (checked first: it holds only resources in this run's ledger); keeps the repaired disk, the snapshot and the original OS disk",
        kind=Kind.CHANGE,
        undo=None,
        precondition=cleanup_pre,
        run=cleanup_run,
        verify=cleanup_verify,
    )


def _report_step(layout: RescueLayout) -> Step:
    """What the VM boots from now, what is kept and what was deleted."""
    vm, os_disk, copy_name, rescue_doc = layout.vm, layout.os_disk, layout.copy_name, layout.rescue_doc
    rescue_name = layout.rescue_name

    async def summary_lines(ctx: StepContext) -> list[str]:
        ledger = ctx.journal.resources(ctx.run_id)
        lines = [f"{vm.name} boots from the repaired copy {copy_name}"]
        lines.append(f"kept, never deleted by aztriage: the original OS disk {os_disk.name} (detached; swap it back to undo)")
        keep = [r for r in ledger if r.state == "keep"]
        if keep:
            lines.append(
                "kept until you release them (aztriage runs --release " + ctx.run_id + "): " + ", ".join(f"{r.kind} {short(r.resource_id)}" for r in keep)
            )
        gone = [r for r in ledger if r.state == "deleted"]
        if gone:
            lines.append("deleted by the cleanup: " + ", ".join(f"{r.kind} {short(r.resource_id)}" for r in gone))
        if rescue_doc is not None:
            lines.append(f"{rescue_name} is yours and stays as it was (the copy is detached from it)")
        return lines

    return summary_step("What the VM boots from now, what is kept and what was deleted.", summary_lines)


def build(facts: VmFacts, params: dict[str, Any]) -> Plan:
    layout = rescue_layout(facts, params)
    vm, new_rescue = layout.vm, layout.new_rescue
    steps: list[Step | None] = [
        preflight_step(facts),
        _snapshot_step(layout),
        _copy_step(layout),
        _group_step(layout) if new_rescue else None,
        _nic_step(layout) if new_rescue else None,
        _rescue_vm_step(layout) if new_rescue else _picked_check_step(layout),
        _attach_step(layout),
        _fixes_step(layout) if layout.run_fixes else None,
        _repair_step(layout),
        _detach_step(layout),
        _deallocate_step(layout),
        _swap_step(layout),
        _start_step(layout),
        _boot_check_step(layout) if vm.boot_diagnostics.enabled else None,
        reach_step(facts),
        _cleanup_step(layout) if new_rescue else None,
        _report_step(layout),
    ]
    run_fixes, picked, os_disk, snap_id = layout.run_fixes, layout.picked, layout.os_disk, layout.snap_id
    copy_name, group, rescue_name, lun = layout.copy_name, layout.group, layout.rescue_name, layout.lun
    details: tuple[tuple[str, str, str], ...] = (
        ("OS disk", os_disk.name, copy_name),
        ("rescue VM", "-", f"{rescue_name} (new, in {group})" if new_rescue else f"{rescue_name} (yours, LUN {lun})"),
        ("kept", "-", f"snapshot {short(snap_id)}; original OS disk {os_disk.name}"),
    )
    if new_rescue:
        details += (("sign-in", "-", sign_in(layout)), ("reached", "-", "private IP only (VPN, Bastion) or serial console"))
    return plan(
        "rescue",
        "Repair the OS disk on a rescue VM",
        facts,
        steps,
        f"Snapshot and copy {vm.name}'s OS disk, repair the copy on {'a new rescue VM' if new_rescue else rescue_name}, and swap it in as the OS disk.",
        warnings=_warnings(layout),
        blockers=_blockers(layout),
        details=details,
        params={"rescue_vm": picked, "run_fixes": run_fixes, "credential": layout.credential},
        needs_secrets=(layout.credential,) if layout.credential else (),
        interrupts=True,
    )


def _mismatch(disk: dict[str, Any], generation: str, security: str, os_type: str) -> list[str]:
    props = disk_props(disk)
    out = []
    got_generation = str(props.get("hyperVGeneration") or "V1").upper()
    if got_generation != generation.upper():
        out.append(f"Hyper-V generation {got_generation}, the VM is {generation}")
    if security_type(props).lower() != security.lower():
        out.append(f"security type {security_type(props)}, the VM is {security}")
    if str(props.get("osType") or "").lower() != os_type.lower():
        out.append(f"OS type {props.get('osType')}, the VM is {os_type}")
    return out
