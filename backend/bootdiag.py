"""What a VM's serial console log says about its last boot.

Pure (no I/O, no Textual, no SDK): the log as boot diagnostics serves it goes
in, a verdict comes out. The verdict names known signatures, each with the
evidence line (the line an operator would point at), the recovery scenario it
calls for, and the repair commands for that scenario, filled in from the log
where the log tells (the missing device's UUID, the partition fsck wants, the
stop code).

Only the last boot counts: a serial log holds every boot since the VM was
started on its host, so a failed boot followed by a clean one is a VM that
boots. ``boots(lines)`` finds the boundaries (a Linux kernel starting at
0.000000, the Windows Boot Manager loading); the console highlights the last.

On the rescue VM (scenario ``rescue``) the copy of the OS disk is the first
data disk: ``/dev/disk/azure/scsi1/lun0`` on Linux, a new drive letter (F: in
the commands below) on Windows. The commands are what the runbook's "Mounting
disks to another VM" asks the operator to type, made specific.
"""

from __future__ import annotations

import bisect
import codecs
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend import shellcmd as shell
from backend.safetext import safe_text

LINUX = "Linux"
WINDOWS = "Windows"

RESCUE_DISK = "/dev/disk/azure/scsi1/lun0"  # the OS disk copy, attached at LUN 0 of the rescue VM
RESCUE_MOUNT = "/rescue"
WINDOWS_DRIVE = "F:"

# Terminal escapes a guest writes (colours, titles, hyperlinks): CSI with its parameter and
# intermediate bytes, OSC up to BEL or ST (never past the next ESC or line end, so a
# sequence without end costs one scan), charset selection. Linear time, like every
# pattern here that reads the guest's text. A log with more escapes than any console
# writes (a hostile one) has its ESC bytes deleted without parsing: each match costs.
_ANSI = re.compile(r"\x1b\[[0-?]*+[ -/]*+[@-~]|\x1b\][^\x07\x1b\n]*+(?:\x07|\x1b\\)?|\x1b[()][0-9A-B]")
_MAX_ESCAPES = 100_000
# C0 but tab and line feed, DEL, and C1 (U+0080-U+009F: 8-bit CSI, OSC, DCS among them).
_C0 = bytes([*range(0x09), *range(0x0B, 0x0D), *range(0x0E, 0x20), 0x7F])
_C0_C1 = _C0 + bytes(range(0x80, 0xA0))
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")


def _strip_controls(text: str) -> str:
    """`text` without C0 (but tab and line feed), DEL and C1: by byte tables where the
    text fits in Latin-1 (one pass each way), else C1 by a pattern over its UTF-8."""
    if text.isascii():
        return text.encode("ascii").translate(None, _C0).decode("ascii")
    try:
        return text.encode("latin-1").translate(None, _C0_C1).decode("latin-1")
    except UnicodeEncodeError:
        pass
    # Valid UTF-8 (encoded from str): deleting whole C1 sequences cannot join the bytes around them into a new one.
    data = text.encode("utf-8", errors="surrogatepass").translate(None, _C0)
    return _C1_UTF8.sub(b"", data).decode("utf-8", errors="replace")


def _clean_piece(piece: str, parse_escapes: bool) -> list[str]:
    if parse_escapes:
        piece = _ANSI.sub("", piece)
    piece = _strip_controls(piece.replace("\r\n", "\n").replace("\r", "\n"))
    # What else cannot be shown as it is (bidi controls, zero-width characters, line
    # separators) is made visible the way every other untrusted string is (backend/safetext).
    return [line if line.isprintable() else _shown(line) for line in (raw.rstrip() for raw in piece.split("\n"))]


def _shown(line: str) -> str:
    """safe_text on a line, 64 KiB at a time (a translate call holds the GIL; code points are never split)."""
    return "".join(safe_text(line[i : i + 65536]) for i in range(0, len(line), 65536))


def clean_lines(text: str | bytes | None) -> list[str]:
    """The log as lines an operator reads: no terminal escapes, no control characters
    (C0, DEL, C1: removed), no carriage returns, bidi and invisible characters shown
    (``<U+202E>``). Bytes are decoded as UTF-8 (bad bytes become U+FFFD).

    Done in pieces of whole lines (about _CHUNK characters): the console runs this in a
    worker thread, and no single call may hold the GIL for long."""
    if text is None:
        return []
    escapes = text.count(b"\x1b") if isinstance(text, bytes) else text.count("\x1b")
    parse_escapes = 0 < escapes <= _MAX_ESCAPES
    if isinstance(text, bytes):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: Iterable[str] = itertools.chain((decoder.decode(text[i : i + _CHUNK]) for i in range(0, len(text), _CHUNK)), [decoder.decode(b"", final=True)])
    else:
        parts = (text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK))
    lines: list[str] = []
    pending: list[str] = []  # the start of a line not ended yet
    for part in parts:
        cut = part.rfind("\n")
        if cut < 0:
            pending.append(part)
            continue
        pending.append(part[: cut + 1])
        lines.extend(_clean_piece("".join(pending), parse_escapes)[:-1])
        pending = [part[cut + 1 :]]
    lines.extend(_clean_piece("".join(pending), parse_escapes))
    while lines and not lines[-1]:
        lines.pop()
    return lines


def tail(text: str | bytes | None, count: int = 50) -> list[str]:
    lines = clean_lines(text)
    return lines[-count:] if count > 0 else []


# --- where each boot starts ------------------------------------------------------------

# Patterns searched over the whole log start with a literal (the engine skips to it
# fast); "at the start of a line" is a look-behind after it, not a leading ^.
_KERNEL_TIME = re.compile(r"\[(?<![^\n]\[)[^\S\n]*+(\d++\.\d++)\]")
_WINDOWS_START = re.compile(r"Loading Windows Boot Manager(?<![^\n]Loading Windows Boot Manager)")
# Firmware and boot loader lines that belong to the boot that follows them.
_PRELUDE = re.compile(
    r"^(?:$|BdsDxe:|UEFI|EFI stub:|Booting `|Booting from|GNU GRUB|Loading Linux|Loading initial ramdisk|"
    r"Welcome to GRUB|error: no such device|SeaBIOS|iPXE|Press ESC|Boot0)",
    re.IGNORECASE,
)
_ALSO_WINDOWS_START = (
    re.compile(r"Windows Boot (?:Manager: booting|Loader:)(?<![^\n]Windows Boot Manager: booting)(?<![^\n]Windows Boot Loader:)"),
    re.compile(r"Starting Windows(?<![^\n]Starting Windows)"),
)


@dataclass(frozen=True)
class Boot:
    start: int  # index of the first line of this boot
    end: int  # index one past its last line

    def __len__(self) -> int:
        return self.end - self.start


# The analysis runs in a worker thread beside the console's event loop, and a regex call
# holds the GIL until it returns: the log is searched in chunks of about _CHUNK characters
# (whole lines), so no single call keeps the console waiting. Patterns read the first
# _LINE_CAP characters of a line (a console line is under 1 KiB; the kernel's are 1 KiB at most).
_CHUNK = 1 << 18
_LINE_CAP = 1 << 16


class _Chunk:
    __slots__ = ("first", "offsets", "text")

    def __init__(self, first: int, lines: Sequence[str]) -> None:
        self.first = first  # index (in the whole log) of its first line
        self.text = "\n".join(lines)
        self.offsets = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))

    def line_of(self, pos: int) -> int:
        return self.first + bisect.bisect_right(self.offsets, pos) - 1


class _Text:
    """Lines joined into chunks, and where each line starts: a pattern searches a chunk of
    the log in one call (fast, linear) instead of one call per line."""

    def __init__(self, lines: Sequence[str], start: int = 0, end: int | None = None) -> None:
        end = len(lines) if end is None else end
        self.start, self.end = start, end
        capped = [line if len(line) <= _LINE_CAP else line[:_LINE_CAP] for line in lines[start:end]]
        ends = list(itertools.accumulate(len(line) + 1 for line in capped))
        self.chunks: list[_Chunk] = []
        i = 0
        while i < len(capped):
            j = max(i + 1, bisect.bisect_right(ends, (ends[i - 1] if i else 0) + _CHUNK, i))
            self.chunks.append(_Chunk(start + i, capped[i:j]))
            i = j

    def first(self, rx: re.Pattern[str]) -> tuple[int, re.Match[str]] | None:
        """The first match in the text, with the index of its line."""
        for chunk in self.chunks:
            m = rx.search(chunk.text)
            if m:
                return chunk.line_of(m.start()), m
        return None

    def finditer(self, rx: re.Pattern[str]) -> Iterator[tuple[int, re.Match[str]]]:
        for chunk in self.chunks:
            for m in rx.finditer(chunk.text):
                yield chunk.line_of(m.start()), m

    def contains(self, needle: str) -> bool:
        return any(needle in chunk.text for chunk in self.chunks)

    def count_lines(self, rx: re.Pattern[str]) -> int:
        """How many lines `rx` matches (each line once: a match takes the rest of its line)."""
        whole_line = _rest_of_line(rx)
        return sum(len(whole_line.findall(chunk.text)) for chunk in self.chunks)


@functools.lru_cache(maxsize=64)
def _rest_of_line(rx: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(f"(?:{rx.pattern})[^\\n]*+", rx.flags)


def boots(lines: Sequence[str], text: _Text | None = None) -> list[Boot]:
    """The boots in a log, oldest first (always at least one for a non-empty log)."""
    if not lines:
        return []
    text = text or _Text(lines)
    starts: list[int] = []
    # Only the lines these patterns match change anything below: find them in one pass each.
    events = [(i, 0, m.group(1)) for i, m in text.finditer(_KERNEL_TIME)]
    events += [(i, 1, "") for i, _ in text.finditer(_WINDOWS_START)]
    events += [(i, 2, "") for rx in _ALSO_WINDOWS_START for i, _ in text.finditer(rx)]
    events.sort()
    last_time: float | None = None
    windows_seen = False
    for i, kind, stamp in events:
        if kind == 0:
            if stamp == "0.000000":
                if last_time is None or last_time > 0.0:
                    starts.append(i)
                last_time = 0.0
            else:
                last_time = float(stamp)
        elif kind == 1:
            starts.append(i)
            windows_seen = True
        elif not windows_seen and not any(_WINDOWS_START.match(x) for x in lines[max(0, i - 3) : i]):
            # A log cut before the boot manager line: the loader line starts the boot.
            starts.append(i)
            windows_seen = True
    # Firmware and GRUB lines just before a start belong to that boot.
    final: list[int] = []
    for s in starts:
        j = s
        floor = final[-1] + 1 if final else 0
        while j > floor and _PRELUDE.match(lines[j - 1]):
            j -= 1
        final.append(j)
    starts = sorted(set(final))
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    out = [Boot(s, e) for s, e in zip(starts, starts[1:] + [len(lines)])]
    # Text before the first real boot (a truncated previous boot) stays a boot of its own only when it says something.
    if len(out) > 1 and all(not lines[i].strip() for i in range(out[0].start, out[0].end)):
        out = out[1:]
        out[0] = Boot(0, out[0].end)
    return out


def last_boot(lines: Sequence[str]) -> Boot:
    found = boots(lines)
    return found[-1] if found else Boot(0, 0)


# --- signatures ------------------------------------------------------------------------


# Every pattern below reads text the guest wrote, a whole boot at a time (``^``/``$``
# are line ends): each must run in time linear in the text. So no ``.*`` between two
# parts (a line full of the first part would make it scan the rest once per
# occurrence): ``_then`` scans only up to the next occurrence; tokens are matched
# from their start (``(?<!\S)``) or possessively; nothing matches across a line end.


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.MULTILINE) for p in patterns)


def _then(first: str, later: str) -> str:
    """A line with `first` and, after it, `later`, in linear time: from each `first`
    the scan stops at the next one (where the search starts again)."""
    return f"{first}(?:(?!{first}|{later})[^\\n])*+{later}"


Repair = Callable[[dict[str, str]], list[str]]


@dataclass(frozen=True)
class Signature:
    id: str
    title: str  # short, for a table cell and a verdict ("emergency mode (fstab)")
    os_type: str  # Linux / Windows
    explain: str  # one sentence: what it means
    triggers: tuple[re.Pattern[str], ...]  # any of them in the last boot: the signature is there
    evidence: tuple[re.Pattern[str], ...]  # the line to show, best first (else the first trigger line)
    recommended_scenario: str
    blocks_boot: bool  # the OS did not come up (no network change can make RDP/SSH answer)
    repair: Repair


@dataclass(frozen=True)
class Finding:
    """A signature found in the last boot."""

    signature: Signature
    line: str  # the evidence line, as in the log
    line_number: int  # 1-based, in the whole log
    facts: dict[str, str] = field(default_factory=dict)  # what the log told (device, stop code, ...)
    repair: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.signature.id

    @property
    def recommended_scenario(self) -> str:
        return self.signature.recommended_scenario

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.signature.title,
            "line": self.line,
            "line_number": self.line_number,
            "recommended_scenario": self.recommended_scenario,
            "blocks_boot": self.signature.blocks_boot,
            "explain": self.signature.explain,
            "repair": list(self.repair),
        }


# --- repair commands ---------------------------------------------------------------------
#
# Facts come from the guest's serial log: text the guest (or whoever owns it)
# wrote. A fact enters a command only when it has the exact shape it must have
# (below), and then as one quoted word (backend/shellcmd.py). A fact of another
# shape is not used: the command falls back to its generic form, and a comment
# line at the head of the repair says why.

_PATH_PART = r"[A-Za-z0-9_+:-][A-Za-z0-9._+:-]{0,127}"  # no leading dot: no "." or ".." components
_DEVICE = re.compile(rf"/dev(?:/{_PATH_PART}){{1,8}}")
_FACT_SHAPES: dict[str, tuple[re.Pattern[str], str, str]] = {
    # fact: (its exact shape, what it is, what the commands do without it)
    "root": (
        re.compile(rf"/dev/mapper/{_PATH_PART}|/dev(?:/{_PATH_PART}){{1,8}}|(?:PART)?(?:UUID|LABEL)=[A-Za-z0-9._+:-]{{1,64}}"),
        "the root= device on the kernel command line",
        "the commands mount the copy's first partition; lsblk shows the real root",
    ),
    "device": (_DEVICE, "the device the log names", "the commands use the generic partition and name no fstab entry"),
    "mount": (
        re.compile(rf"/(?:{_PATH_PART}(?:/{_PATH_PART}){{0,15}})?"),
        "the mount point the log names",
        "edit /etc/fstab by hand",
    ),
    "kernel": (
        re.compile(r"[0-9][A-Za-z0-9._+~-]{0,127}"),
        "the kernel release in 'Linux version'",
        "the initramfs is rebuilt for every kernel",
    ),
    "config_file": (
        re.compile(r"/etc/ssh/sshd_config(?:\.d/[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"),
        "the sshd configuration file sshd named",
        "the commands use /etc/ssh/sshd_config",
    ),
    "config_line": (re.compile(r"[0-9]{1,7}"), "the line number sshd named", "open the file and look for what sshd -t names"),
}


def _has_shape(key: str, value: str) -> bool:
    """Whether a fact may enter a command (facts with no shape here never do: they are only compared)."""
    shape = _FACT_SHAPES.get(key)
    return shape is None or (shape[0].fullmatch(value) is not None and "/../" not in value + "/")


class Facts(dict[str, str]):
    """What the log told, handed to a repair builder: ``get`` gives a fact only when
    it has its exact shape (``_FACT_SHAPES``) and notes why it left one out."""

    def __init__(self, raw: dict[str, str]) -> None:
        super().__init__(raw)
        self.notes: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key)
        if value is None:
            return default
        if _has_shape(key, value):
            return value
        _, what, instead = _FACT_SHAPES[key]
        note = shell.literal(f"# not used: {what} is not of the shape a command can take safely; {instead}")
        if note not in self.notes:
            self.notes.append(note)
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def usable(self) -> dict[str, str]:
        """The facts that have their shape (those a command may take)."""
        return {key: value for key, value in self.items() if _has_shape(key, value)}


def _partition(device: str | None) -> str:
    """The partition of the rescue VM's copy that was `device` on the broken VM."""
    if device:
        m = re.search(r"(?:sd[a-z]|vd[a-z]|xvd[a-z])(\d+)$", device) or re.search(r"nvme\d+n\d+p(\d+)$", device)
        if m:
            return f"{RESCUE_DISK}-part{m.group(1)}"
    return f"{RESCUE_DISK}-part1"


def _find_disk() -> list[str]:
    return [
        shell.sh("lsblk", "-f", RESCUE_DISK, note="the copy of the OS disk on the rescue VM (LUN 0); dmesg | grep SCSI shows its sdX name"),
    ]


def _mount_root(facts: dict[str, str] | None = None) -> list[str]:
    root = (facts or {}).get("root") or ""
    if root.startswith("/dev/mapper/"):
        return [
            shell.literal(
                "vgscan && vgchange -ay   # the root file system is on LVM; if the rescue VM has a volume group of the same name, vgimportclone the copy first"
            ),
            shell.sh("mkdir", "-p", RESCUE_MOUNT, shell.AND, "mount", root, RESCUE_MOUNT),
        ]
    partition = _partition(root if root.startswith("/dev/") else None)
    return [shell.sh("mkdir", "-p", RESCUE_MOUNT, shell.AND, "mount", partition, RESCUE_MOUNT, note="the partition lsblk shows as the root file system")]


def _chroot() -> list[str]:
    return [shell.literal(f"for d in dev proc sys; do mount --bind /$d {RESCUE_MOUNT}/$d; done")]


def _umount() -> list[str]:
    return [shell.sh("umount", "-R", RESCUE_MOUNT, note="then detach the copy; the rescue scenario swaps it in as the OS disk")]


def _repair_fstab(facts: dict[str, str]) -> list[str]:
    device = facts.get("device") or ""
    key = device.rsplit("/", 1)[-1] if "/by-uuid/" in device or "/by-label/" in device else device
    key = key.rstrip(".")
    mount = facts.get("mount")
    fstab = f"{RESCUE_MOUNT}/etc/fstab"
    out = _find_disk() + _mount_root(facts) + [shell.sh("cp", fstab, f"{fstab}.bak")]
    if key:
        what = f"the entry for {device}" + (f" ({mount})" if mount else "")
        out.append(shell.sh("grep", "-nF", "--", key, fstab, note=f"{what}: the device never appeared"))
        out.append(shell.sh("sed", "-i", f"\\|{shell.sed_literal(key)}| s|^|# |", fstab, note="comment it out, or add nofail to its options"))
    elif mount:
        out.append(shell.sh("grep", "-nF", "--", f" {mount} ", fstab, note=f"the entry for {mount}"))
        out.append(shell.sh("sed", "-i", f"\\| {shell.sed_literal(mount)} | s|^|# |", fstab, note="comment it out, or add nofail to its options"))
    else:
        out.append(shell.sh("vi", fstab, note="comment out (or add nofail to) the entries of data disks that are gone"))
    out.append(shell.sh("findmnt", "--verify", "--tab-file", fstab, note="checks the edited file"))
    return out + _umount()


def _repair_fsck(facts: dict[str, str]) -> list[str]:
    device = facts.get("device")
    part = _partition(device)
    was = f"was {device} on the broken VM" if device else ""
    if facts.get("filesystem") == "xfs":
        check = shell.sh("xfs_repair", part, note=(f"{was}   # " if was else "") + "if it refuses because of a dirty log: mount and umount it once, then again")
    else:
        check = shell.sh("fsck", "-yM", part, note=was)
    return _find_disk() + [
        shell.sh("findmnt", part, shell.OR, "echo", "not mounted: safe to check", note="never run fsck on a mounted file system"),
        check,
        shell.sh("fsck", "-yM", part, note="again, until it reports clean"),
    ]


def _repair_kernel_panic(facts: dict[str, str]) -> list[str]:
    kernel = facts.get("kernel")
    reason = facts.get("reason") or ""
    boot = f"{RESCUE_MOUNT}/boot"
    out = _find_disk() + _mount_root(facts) + _chroot() + [shell.sh("ls", "-l", boot, note=f"an initrd/initramfs for {kernel or '<kernel version>'}?")]
    if kernel and ("unable to mount root" in reason.lower() or "initramfs" in reason.lower() or "init" in reason.lower()):
        out.append(shell.sh("chroot", RESCUE_MOUNT, "update-initramfs", "-u", "-k", kernel, note=f"RHEL/SUSE: chroot {RESCUE_MOUNT} dracut -f --kver {kernel}"))
    else:
        out.append(shell.sh("chroot", RESCUE_MOUNT, "update-initramfs", "-u", "-k", "all", note=f"RHEL/SUSE: chroot {RESCUE_MOUNT} dracut -f --regenerate-all"))
    out.append(
        shell.sh(
            "chroot",
            RESCUE_MOUNT,
            "update-grub",
            note=f"RHEL: chroot {RESCUE_MOUNT} grub2-mkconfig -o /boot/grub2/grub.cfg; or make the previous kernel the default",
        )
    )
    return out + _umount()


def _repair_disk_full(facts: dict[str, str]) -> list[str]:
    return (
        _find_disk()
        + _mount_root(facts)
        + [
            shell.sh("df", "-h", RESCUE_MOUNT),
            shell.literal(f"du -xh --max-depth=3 {RESCUE_MOUNT}/var {RESCUE_MOUNT}/home {RESCUE_MOUNT}/tmp 2>/dev/null | sort -h | tail -15"),
            shell.sh("journalctl", "-D", f"{RESCUE_MOUNT}/var/log/journal", "--vacuum-size=200M"),
            shell.literal(f"find {RESCUE_MOUNT}/var/log -name '*.gz' -delete   # rotated logs; or expand the OS disk instead"),
        ]
        + _umount()
    )


def _repair_cloud_init(facts: dict[str, str]) -> list[str]:
    return [
        shell.literal("cloud-init status --long   # over SSH if it answers; else on the rescue VM read the same log below"),
        shell.literal("grep -nE 'WARNING|ERROR|Traceback' /var/log/cloud-init.log | tail -20"),
        shell.literal("curl -s -H Metadata:true 'http://169.254.169.254/metadata/instance?api-version=2021-02-01' | head -c 300   # can the guest reach IMDS?"),
        shell.literal("cloud-init collect-logs   # a tarball for a support case"),
    ]


def _repair_agent(facts: dict[str, str]) -> list[str]:
    return [
        shell.literal("systemctl status walinuxagent waagent 2>/dev/null | head -20   # over SSH; else on the rescue VM: /rescue/var/log/waagent.log"),
        shell.literal("tail -50 /var/log/waagent.log"),
        shell.literal("curl -s 'http://168.63.129.16/?comp=versions'   # the WireServer must answer, or the agent cannot report"),
        shell.literal("ip route get 168.63.129.16; iptables -S | grep 168.63.129.16   # a route or firewall rule in the way?"),
        shell.literal("systemctl restart walinuxagent 2>/dev/null || systemctl restart waagent"),
    ]


def _repair_sshd(facts: dict[str, str]) -> list[str]:
    line = facts.get("config_line")
    config = facts.get("config_file") or "/etc/ssh/sshd_config"
    out = (
        _find_disk()
        + _mount_root(facts)
        + [
            shell.sh("chroot", RESCUE_MOUNT, "sshd", "-t", note=f"prints the offending line of {config}"),
            shell.sh("cp", f"{RESCUE_MOUNT}{config}", f"{RESCUE_MOUNT}{config}.bak"),
        ]
    )
    if line:
        out.append(shell.sh("sed", "-n", f"{int(line)}p", f"{RESCUE_MOUNT}{config}", note="the line sshd refused: fix or remove it"))
    else:
        out.append(shell.sh("vi", f"{RESCUE_MOUNT}{config}", note="fix what sshd -t names"))
    out.append(shell.literal("# or, without a rescue VM: aztriage recover --scenario reset-access (VMAccess resets the SSH configuration)"))
    return out + _umount()


# Windows: the commands are for PowerShell as Administrator on the rescue VM. No fact
# from the log enters them (the stop code only picks which ones); BCD identifiers are
# quoted because PowerShell would take {default} for a script block.


def _win_common() -> list[str]:
    return [
        f"diskmgmt.msc   # on the rescue VM: bring the attached copy online and note its drive letter ({WINDOWS_DRIVE} below)",
    ]


def _win_pending_updates() -> list[str]:
    d = WINDOWS_DRIVE
    return [
        f"dism /image:{d}\\ /get-packages /format:table   # an update in 'Install Pending' state?",
        f"dism /image:{d}\\ /cleanup-image /revertpendingactions",
    ]


def _win_bcd() -> list[str]:
    d = WINDOWS_DRIVE
    return [
        f"bcdedit /store {d}\\boot\\bcd /enum /v   # Gen1; Gen2 (UEFI): assign the EFI partition a letter (S:) with diskpart and use S:\\EFI\\Microsoft\\Boot\\BCD",
        f"bcdedit /store {d}\\boot\\bcd /set '{{bootmgr}}' device partition={d}",
        f"bcdedit /store {d}\\boot\\bcd /set '{{default}}' device partition={d}",
        f"bcdedit /store {d}\\boot\\bcd /set '{{default}}' osdevice partition={d}",
        f"bcdboot {d}\\Windows /s S: /f ALL   # rebuilds the boot files on the system partition S: when the BCD is missing",
    ]


def _repair_stop_code(facts: dict[str, str]) -> list[str]:
    d = WINDOWS_DRIVE
    code = (facts.get("code") or "").upper()
    out = _win_common()
    if code in ("INACCESSIBLE_BOOT_DEVICE", "0X0000007B"):
        out += [f"chkdsk {d} /f"]
        out += _win_pending_updates()
        out += [
            f"reg load HKLM\\BROKENSYSTEM {d}\\windows\\system32\\config\\SYSTEM",
            "reg query HKLM\\BROKENSYSTEM\\ControlSet001\\Services\\storvsc /v Start   # must be 0 (boot start) for Azure's storage driver",
            "reg add HKLM\\BROKENSYSTEM\\ControlSet001\\Services\\storvsc /v Start /t REG_DWORD /d 0 /f",
            "reg unload HKLM\\BROKENSYSTEM",
        ]
        out += _win_bcd()[:1]
    elif code in ("CRITICAL_PROCESS_DIED", "CRITICAL_SERVICE_FAILED"):
        out += [f"chkdsk {d} /f", f"sfc /scannow /offbootdir={d}\\ /offwindir={d}\\windows"] + _win_pending_updates()
    elif code == "UNMOUNTABLE_BOOT_VOLUME":
        out += [f"chkdsk {d} /f /r   # repairs the volume's file system"]
    elif code == "BAD_SYSTEM_CONFIG_INFO":
        out += [
            f"reg load HKLM\\BROKENSYSTEM {d}\\windows\\system32\\config\\SYSTEM   # an error here means the hive is damaged",
            "reg unload HKLM\\BROKENSYSTEM",
            f"dir {d}\\windows\\system32\\config\\RegBack   # a backup of the hives to restore, if it is not empty",
        ]
    else:
        out += [f"chkdsk {d} /f", f"sfc /scannow /offbootdir={d}\\ /offwindir={d}\\windows"] + _win_pending_updates()
    out.append(f"dir {d}\\windows\\MEMORY.DMP   # keep the crash dump for a support case")
    return out


def _repair_automatic_repair(facts: dict[str, str]) -> list[str]:
    d = WINDOWS_DRIVE
    return _win_common() + [
        f"chkdsk {d} /f",
        *_win_pending_updates(),
        f"bcdedit /store {d}\\boot\\bcd /set '{{default}}' recoveryenabled no   # stops the automatic repair loop",
        f"bcdedit /store {d}\\boot\\bcd /enum   # check that '{{default}}' points at the Windows partition",
    ]


def _repair_updates(facts: dict[str, str]) -> list[str]:
    d = WINDOWS_DRIVE
    return _win_common() + [
        f"dism /image:{d}\\ /get-packages /format:table   # the update in 'Install Pending' state",
        f"dism /image:{d}\\ /remove-package /packagename:PACKAGE   # PACKAGE: the Package Identity of the update in 'Install Pending' state",
        f"dism /image:{d}\\ /cleanup-image /revertpendingactions",
        f"del {d}\\windows\\winsxs\\pending.xml   # only if dism says it cannot revert (keep a copy first)",
    ]


def _repair_bcd(facts: dict[str, str]) -> list[str]:
    return _win_common() + _win_bcd()


# --- the catalogue ---------------------------------------------------------------------------

SIGNATURES: tuple[Signature, ...] = (
    # Linux: the OS does not come up.
    Signature(
        "emergency-mode",
        "emergency mode (fstab)",
        LINUX,
        "systemd stopped in emergency mode: a file system listed in /etc/fstab did not mount (typically a data disk that was removed or renamed); the OS waits for a root password on the console.",
        _rx(r"You are in emergency mode", r"Reached target Emergency Mode", r"Started Emergency Shell", r"Welcome to emergency mode"),
        _rx(
            r"Timed out waiting for device (?P<device>/dev/\S+?)\.?$",
            r"Failed to mount \S+\.mount - (?P<mount>/\S*)\.$",
            r"Dependency failed for (?P<mount>/\S*)\.$",
            r"Failed to mount (?P<mount_unit>(?:(?!Failed to mount )[^\n])+?)\.$",
            r"mount: (?P<mount>/\S*): (?:special device|can't find) (?P<device>\S+)",
        ),
        "rescue",
        True,
        _repair_fstab,
    ),
    Signature(
        "fsck-required",
        "file system check required",
        LINUX,
        "The root file system has errors the automatic check would not fix: it needs fsck run by hand, from a rescue VM.",
        _rx(
            r"UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY",
            r"requires a manual fsck",
            r"File system check of the root filesystem failed",
            r"An automatic file system check \(fsck\) of the root filesystem failed",
            r"Failed to start File System Check on (?:/dev/\S+|Root Device)",
        ),
        _rx(
            r"The root filesystem on (?P<device>/dev/\S+) requires a manual fsck",
            r"(?P<device>/dev/(?<!\S/dev/)\S+): UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY",
            r": UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY(?<=\S: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY)",
            r"fsck\.(?P<fstype>\w++) (?:(?!fsck\.)[^\n])*?(?<![^\s:=])(?P<device>/dev/[^\s\]]++)\]?$",
        ),
        "rescue",
        True,
        _repair_fsck,
    ),
    Signature(
        "kernel-panic",
        "kernel panic",
        LINUX,
        "The kernel stopped with a panic before the system came up (a missing or broken initramfs, a bad kernel update, a root device it cannot find).",
        _rx(r"Kernel panic - not syncing"),
        _rx(r"Kernel panic - not syncing: (?P<reason>[^\n]*)", r"Linux version (?P<kernel>\S+)"),
        "rescue",
        True,
        _repair_kernel_panic,
    ),
    # Linux: the OS runs, something in it fails.
    Signature(
        "disk-full",
        "OS disk full",
        LINUX,
        "The OS disk is full: services that need to write (journald, sshd, the agent, databases) fail at boot.",
        _rx(r"No space left on device", r"\[Errno 28\]"),
        _rx(r"No space left on device"),
        "rescue",
        False,
        _repair_disk_full,
    ),
    Signature(
        "sshd-failed",
        "sshd failed to start",
        LINUX,
        "The SSH server did not start (usually a broken sshd_config or host keys): the OS is up, port 22 refuses.",
        _rx(
            r"Failed to start (?:OpenBSD Secure Shell server|OpenSSH server daemon|ssh\.service|sshd\.service)",
            r"ssh(?<!\wssh)d?\.service: (?:Main process exited, code=exited, status=255|Failed with result)",
            _then(r"sshd\[\d++\]: ", r"(?:Bad configuration option|Missing argument|bad configuration options|Unsupported option)"),
        ),
        _rx(
            r"(?P<config_file>/etc/ssh/sshd_config(?<!\S/etc/ssh/sshd_config)(?:\.d/[^\s:]++)?): line (?P<config_line>\d++): [^\n]",
            r"Failed to start (?:OpenBSD Secure Shell server|OpenSSH server daemon|ssh\.service|sshd\.service)",
        ),
        "reset-access",
        False,
        _repair_sshd,
    ),
    Signature(
        "guest-agent-failed",
        "Azure Linux Agent failing",
        LINUX,
        "The Azure Linux Agent cannot work (it cannot reach the WireServer 168.63.129.16, or its service failed): run command, VMAccess and extensions will not work.",
        _rx(
            r"ERROR (?<!\wERROR )(?:Daemon|ExtHandler)\b",
            _then("Failed to start ", "Azure Linux Agent"),
            r"waagent(?<!\wwaagent)\.service: (?:Main process exited, code=exited, status=[1-9]|Failed with result)",
            r"walinuxagent(?<!\wwalinuxagent)\.service: (?:Main process exited, code=exited, status=[1-9]|Failed with result)",
        ),
        _rx(
            _then("ERROR ", r"(?:WireServer|168\.63\.129\.16)"),
            r"ERROR (?<!\wERROR )(?:Daemon|ExtHandler)\b",
            _then("Failed to start ", "Azure Linux Agent"),
        ),
        "restart",
        False,
        _repair_agent,
    ),
    Signature(
        "cloud-init-failed",
        "cloud-init failed",
        LINUX,
        "cloud-init failed at boot (metadata service, network or user-data): users, SSH keys or the network may not be set up.",
        _rx(
            _then("Failed to start ", "cloud-init"),
            _then(r"cloud-init(?:\[\d++\])?: ", r"\b(?:ERROR|CRITICAL)\b"),
            _then(r"cloud-init(?:\[\d++\])?: ", "Traceback"),
        ),
        _rx(_then(r"cloud-init(?:\[\d++\])?: ", r"\b(?:ERROR|CRITICAL)\b"), _then("Failed to start ", "cloud-init")),
        "restart",
        False,
        _repair_cloud_init,
    ),
    # Windows.
    Signature(
        "stop-code",
        "Windows stop code",
        WINDOWS,
        "Windows crashed while starting (a blue screen with a stop code) and does not reach the sign-in screen.",
        _rx(
            r"Stop code: (?P<code>[A-Z0-9_]+)",
            r"\*\*\* STOP: 0x[0-9A-Fa-f]{8}",
            r"Your PC ran into a problem and needs to restart",
            r"Your PC ran into a problem",
        ),
        _rx(r"Stop code: (?P<code>[A-Z0-9_]+)", r"\*\*\* STOP: (?P<code>0x[0-9A-Fa-f]{8})"),
        "rescue",
        True,
        _repair_stop_code,
    ),
    Signature(
        "automatic-repair",
        "stuck in Automatic Repair",
        WINDOWS,
        "Windows failed to start and went into Automatic Repair, which loops or cannot repair it.",
        _rx(r"Preparing Automatic Repair", r"Diagnosing your PC", r"Automatic Repair couldn't repair your PC", r"Startup Repair couldn't repair"),
        _rx(r"Automatic Repair couldn't repair your PC", r"Preparing Automatic Repair"),
        "rescue",
        True,
        _repair_automatic_repair,
    ),
    Signature(
        "updates-hang",
        "hangs applying updates",
        WINDOWS,
        "Windows is applying (or undoing) updates at start-up and does not get past it; when it has not moved for hours, remove the pending update from a rescue VM.",
        _rx(
            r"Applying updates",
            r"Working on updates",
            r"Getting Windows ready",
            r"Preparing to configure Windows",
            r"Configuring Windows updates",
            r"Undoing changes made to your computer",
            r"We couldn't complete the updates",
        ),
        _rx(r"updates(?:(?<=Applying updates)|(?<=Working on updates))", r"We couldn't complete the updates", r"Undoing changes"),
        "rescue",
        True,
        _repair_updates,
    ),
    Signature(
        "boot-configuration",
        "boot configuration (BCD) error",
        WINDOWS,
        "The Windows Boot Manager cannot start Windows: the boot configuration data (BCD) is missing, damaged or points at the wrong partition.",
        _rx(
            r"The Boot Configuration Data (?:for your PC )?is missing or contains errors",
            r"Windows failed to start\. A recent hardware or software change might be the cause",
            r"Status: (?<![^\n]Status: )(?:0xc000000e|0xc0000034|0xc000014c|0xc0000098|0xc0000225|0xc0000001)",
            r"File: \\(?:Boot\\BCD|Windows\\system32\\winload)",
            r"BOOTMGR is missing",
            _then(r"winload\.(?:exe|efi)", " (?:is missing|corrupt)"),
        ),
        _rx(
            r"Status: (?<![^\n]Status: )(?P<status>0xc[0-9a-fA-F]{7})",
            r"The Boot Configuration Data",
            r"Windows failed to start",
        ),
        "rescue",
        True,
        _repair_bcd,
    ),
)

BY_ID = {s.id: s for s in SIGNATURES}

# The last boot got this far: the OS is up.
_LINUX_UP = _rx(r"login(?<!\wlogin): ?$", r"Reached target (?:Multi-User System|Graphical Interface)\.?$")
_WINDOWS_UP = _rx(r"EVENT: The CMD command is now available", r"Channel: Cmd(?<![^\n]Channel: Cmd)\d")
_LINUX_HINT = _rx(r"Linux version ", r"systemd\[1\]", r"\[[^\S\n]*+\d++\.\d++\] ", r"\[  OK  \]", r"\(initramfs\)")
_WINDOWS_HINT = _rx(r"Windows Boot Manager", r"SAC>(?<![^\n]SAC>)", r"Starting Windows", r"Stop code:", r"\*\*\* STOP:", r"Computer is booting, SAC started")


def guess_os(lines: Sequence[str], text: _Text | None = None) -> str | None:
    text = text or _Text(lines)
    linux = sum(text.count_lines(rx) for rx in _LINUX_HINT)
    windows = sum(text.count_lines(rx) for rx in _WINDOWS_HINT)
    if linux == windows == 0:
        return None
    return LINUX if linux >= windows else WINDOWS


_COMMAND_LINE = re.compile(r"Command line: [^\n]*")
_ROOT_ARG = re.compile(r"\broot=(\S+)")


def _trim_reason(reason: str) -> str:
    """A panic reason without the trailing ``]`` of a bracketed console line, nor spaces."""
    reason = reason.rstrip()
    return reason[:-1].rstrip() if reason.endswith("]") else reason


def find(lines: Sequence[str], boot: Boot, signature: Signature, text: _Text | None = None) -> Finding | None:
    """The signature in the lines of one boot, with its evidence line, or None."""
    if text is None or (text.start, text.end) != (boot.start, boot.end):
        text = _Text(lines, boot.start, boot.end)
    trigger = next((found for rx in signature.triggers if (found := text.first(rx))), None)
    if trigger is None:
        return None
    facts: dict[str, str] = {}
    evidence_at: int | None = None
    evidence = [(rx, True) for rx in signature.evidence] + [(trigger[1].re, False)]  # the trigger's own facts last (a stop code)
    for rx, is_evidence in evidence:
        found = text.first(rx)
        if found is None:
            continue
        for key, value in found[1].groupdict().items():
            if value and key not in facts:
                facts[key] = value
        if evidence_at is None and is_evidence:
            evidence_at = found[0]
    command_line = text.first(_COMMAND_LINE)  # where the root file system is
    if command_line:
        roots = _ROOT_ARG.findall(command_line[1].group(0))
        if roots:
            facts.setdefault("root", roots[-1])  # the kernel takes the last root=
    if "reason" in facts:
        facts["reason"] = _trim_reason(facts["reason"])
    if signature.id == "fsck-required" and (text.contains("XFS (") or text.contains("xfs_repair")):
        facts["filesystem"] = "xfs"
    if signature.id == "fsck-required" and "device" in facts:
        facts["device"] = facts["device"].rstrip("]")
    at = evidence_at if evidence_at is not None else trigger[0]
    line = lines[at].strip()
    vetted = Facts(facts)
    commands = signature.repair(vetted)
    return Finding(signature, line, at + 1, vetted.usable(), tuple(vetted.notes + commands))


# --- the verdict -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootVerdict:
    os_type: str | None
    line_count: int
    boot_count: int
    last_boot: Boot
    findings: tuple[Finding, ...]
    booted: bool | None  # True: the last boot reached a login prompt; False: a signature says it did not; None: cannot tell

    @property
    def primary(self) -> Finding | None:
        blocking = [f for f in self.findings if f.signature.blocks_boot]
        first = blocking or self.findings
        return first[0] if first else None

    @property
    def recommended_scenario(self) -> str | None:
        primary = self.primary
        return primary.recommended_scenario if primary else None

    @property
    def repair(self) -> tuple[str, ...]:
        """The repair commands of every finding, primary first, each once."""
        ordered = ([self.primary] if self.primary else []) + [f for f in self.findings if f is not self.primary]
        out: dict[str, None] = {}
        for f in ordered:
            for command in f.repair:
                out.setdefault(command, None)
        return tuple(out)

    @property
    def problem(self) -> str | None:
        """Why the OS did not boot, as one phrase (for the connectivity diagnosis), or None."""
        blocking = [f for f in self.findings if f.signature.blocks_boot]
        if not blocking:
            return None
        first = blocking[0]
        return f"{first.signature.title}: {first.line}"

    @property
    def notes(self) -> tuple[str, ...]:
        """What the log says about a guest that did boot (for the connectivity diagnosis)."""
        if self.problem:
            return ()
        lines = [f"{f.signature.title}: {f.line}" for f in self.findings]
        if self.booted:
            lines.insert(0, "the last boot reached the login prompt: the OS is up")
        return tuple(lines)

    @property
    def summary(self) -> str:
        primary = self.primary
        if self.line_count == 0:
            return "the serial log is empty: nothing was captured since boot diagnostics were enabled (start or restart the VM)"
        if primary is not None and primary.signature.blocks_boot:
            return f"did not boot: {primary.signature.title}"
        if primary is not None:
            return f"booted with problems: {', '.join(f.signature.title for f in self.findings)}" if self.booted else f"{primary.signature.title}"
        if self.booted:
            return "booted: the last boot reached the login prompt"
        return "no known problem in the last boot, and no login prompt yet (still booting, or hung)"

    def to_json(self) -> dict[str, Any]:
        return {
            "os_type": self.os_type,
            "booted": self.booted,
            "summary": self.summary,
            "boots": self.boot_count,
            "last_boot": {"first_line": self.last_boot.start + 1, "last_line": self.last_boot.end},
            "recommended_scenario": self.recommended_scenario,
            "signatures": [f.to_json() for f in self.findings],
            "repair": list(self.repair),
        }


def analyze(text: str | bytes | Sequence[str] | None, os_type: str | None = None) -> BootVerdict:
    """The verdict on the last boot of a serial console log."""
    lines = list(text) if isinstance(text, (list, tuple)) else clean_lines(text)  # type: ignore[arg-type]
    whole = _Text(lines)
    boot_list = boots(lines, whole)
    last = boot_list[-1] if boot_list else Boot(0, 0)
    scope = whole if (last.start, last.end) == (0, len(lines)) else _Text(lines, last.start, last.end)
    os_guess = os_type if os_type in (LINUX, WINDOWS) else guess_os((), scope) or guess_os((), whole)
    findings = []
    for signature in SIGNATURES:
        if os_guess is not None and signature.os_type != os_guess:
            continue
        found = find(lines, last, signature, scope)
        if found is not None:
            findings.append(found)
    findings.sort(key=lambda f: (not f.signature.blocks_boot, SIGNATURES.index(f.signature)))
    up_patterns = _WINDOWS_UP if os_guess == WINDOWS else _LINUX_UP
    reached = any(scope.first(rx) for rx in up_patterns)
    if any(f.signature.blocks_boot for f in findings):
        booted: bool | None = False
    elif reached:
        booted = True
    else:
        booted = None
    return BootVerdict(os_guess, len(lines), len(boot_list), last, tuple(findings), booted)


# --- the screenshot ------------------------------------------------------------------------------


def screenshot_image(data: bytes) -> Any:
    """The screenshot blob (BMP from Azure; PNG and JPEG work too) as an RGB Pillow image.
    ValueError when it is not an image."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"the screenshot is not an image Pillow can read ({exc})") from None
    return image.convert("RGB")


def screenshot_png(data: bytes) -> bytes:
    """The screenshot as PNG bytes."""
    import io

    out = io.BytesIO()
    screenshot_image(data).save(out, format="PNG")
    return out.getvalue()
