"""The serial-log reader on its own: each known signature is found, with the
line an operator would point at, in a real-looking log, and in no clean log;
only the last boot counts; the repair commands carry what the log told."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend import bootdiag

LOGS = Path(__file__).parent / "data" / "bootlogs"
CLEAN = ("linux-clean.log", "windows-clean.log")

# log file -> (signature id, a phrase of its evidence line, recommended scenario, the OS booted?)
EXPECTED = {
    "linux-emergency.log": ("emergency-mode", "Failed to mount data.mount - /data.", "rescue", False),
    "linux-fsck.log": ("fsck-required", "/dev/sda2: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY", "rescue", False),
    "linux-kernel-panic.log": ("kernel-panic", "Kernel panic - not syncing: VFS: Unable to mount root fs", "rescue", False),
    "linux-disk-full.log": ("disk-full", "Failed to open system journal: No space left on device", "rescue", True),
    "linux-cloud-init.log": ("cloud-init-failed", "DataSourceAzure.py[ERROR]: Failed to fetch metadata from IMDS", "restart", True),
    "linux-waagent.log": ("guest-agent-failed", "ERROR Daemon Daemon Failed to get goal state", "restart", True),
    "linux-sshd.log": ("sshd-failed", "/etc/ssh/sshd_config: line 42: Bad configuration option: PermitRootLogn", "reset-access", True),
    "windows-stop-code.log": ("stop-code", "Stop code: CRITICAL_PROCESS_DIED", "rescue", False),
    "windows-automatic-repair.log": ("automatic-repair", "Automatic Repair couldn't repair your PC", "rescue", False),
    "windows-updates.log": ("updates-hang", "Working on updates 27% complete", "rescue", False),
    "windows-bcd.log": ("boot-configuration", "Status: 0xc0000034", "rescue", False),
}


def read(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_every_signature_has_a_log_here():
    assert {exp[0] for exp in EXPECTED.values()} == {s.id for s in bootdiag.SIGNATURES}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_found_with_its_evidence_line(name):
    sig_id, phrase, scenario, booted = EXPECTED[name]
    verdict = bootdiag.analyze(read(name))
    assert verdict.primary is not None, name
    assert verdict.primary.id == sig_id
    assert phrase in verdict.primary.line
    assert "\x1b" not in verdict.primary.line and "\r" not in verdict.primary.line
    # The evidence line is a line of the log, at the number it gives.
    assert bootdiag.clean_lines(read(name))[verdict.primary.line_number - 1].strip() == verdict.primary.line
    assert verdict.recommended_scenario == scenario
    assert verdict.booted is booted
    assert verdict.repair, "every signature says what to type"
    assert verdict.to_json()["signatures"][0] | {} == verdict.primary.to_json()
    if not booted:
        assert verdict.problem and verdict.problem.startswith(verdict.primary.signature.title)
        assert verdict.summary.startswith("did not boot")
    else:
        assert verdict.problem is None and verdict.notes


@pytest.mark.parametrize("name", CLEAN)
def test_no_signature_in_a_clean_boot(name):
    verdict = bootdiag.analyze(read(name))
    assert verdict.findings == ()
    assert verdict.booted is True
    assert verdict.problem is None
    assert verdict.summary.startswith("booted")


@pytest.mark.parametrize("sig", bootdiag.SIGNATURES, ids=lambda s: s.id)
def test_each_signature_alone_stays_silent_on_clean_logs(sig):
    for name in CLEAN:
        lines = bootdiag.clean_lines(read(name))
        assert bootdiag.find(lines, bootdiag.Boot(0, len(lines)), sig) is None, (sig.id, name)


def test_repairs_use_what_the_log_told():
    fstab = bootdiag.analyze(read("linux-emergency.log"))
    assert any("mount /dev/mapper/rootvg-rootlv /rescue" in c for c in fstab.repair), "LVM root from the kernel command line"
    assert any(c.startswith("sed -i '\\| /data | s|^|# |' /rescue/etc/fstab") for c in fstab.repair)
    fsck = bootdiag.analyze(read("linux-fsck.log"))
    assert "fsck -yM /dev/disk/azure/scsi1/lun0-part2   # was /dev/sda2 on the broken VM" in fsck.repair
    assert not any("mount /dev/disk/azure/scsi1/lun0-part2" in c for c in fsck.repair), "fsck runs on an unmounted file system"
    sshd = bootdiag.analyze(read("linux-sshd.log"))
    assert "sed -n 42p /rescue/etc/ssh/sshd_config   # the line sshd refused: fix or remove it" in sshd.repair
    panic = bootdiag.analyze(read("linux-kernel-panic.log"))
    assert any("update-initramfs -u -k 5.15.0-1073-azure" in c for c in panic.repair)
    stop = bootdiag.analyze(read("windows-stop-code.log"))
    assert any(c.startswith("sfc /scannow /offbootdir=F:\\") for c in stop.repair)


def test_only_the_last_boot_counts():
    failed = read("linux-kernel-panic.log")
    clean = read("linux-clean.log")
    lines = bootdiag.clean_lines(failed + "\n" + clean)
    found = bootdiag.boots(lines)
    assert len(found) == 2
    first = next(line for line in lines[found[1].start :] if line)
    assert first.startswith("[    0.000000] Linux version 6.8.0-1017-azure")
    assert lines[found[0].end - 1].startswith("[    2.021940] ---[ end Kernel panic")
    verdict = bootdiag.analyze(failed + "\n" + clean)
    assert verdict.findings == () and verdict.booted is True and verdict.boot_count == 2
    # The other way round: the clean boot is history, the panic is now.
    again = bootdiag.analyze(clean + "\n" + failed)
    assert again.primary.id == "kernel-panic" and again.booted is False
    assert again.last_boot.start == len(bootdiag.clean_lines(clean))


def test_windows_reboot_after_a_crash_is_a_new_boot():
    log = read("windows-stop-code.log") + read("windows-clean.log")
    verdict = bootdiag.analyze(log)
    assert verdict.boot_count == 2 and verdict.booted is True and not verdict.findings


def test_firmware_lines_belong_to_the_boot_they_start():
    lines = bootdiag.clean_lines(
        'old boot\n[   99.000000] reboot: Restarting system\nBdsDxe: loading Boot0001 "ubuntu"\n[    0.000000] Linux version 6.8.0\nlogin: '
    )
    assert [b.start for b in bootdiag.boots(lines)] == [0, 2]


def test_page_blob_padding_and_colour_codes_are_not_shown():
    raw = (b"[\x1b[0;32m  OK  \x1b[0m] Reached target Multi-User System.\r\nhost login: ") + b"\x00" * 300
    assert bootdiag.clean_lines(raw) == ["[  OK  ] Reached target Multi-User System.", "host login:"]
    assert bootdiag.tail(raw, 1) == ["host login:"]


def test_empty_log_says_nothing_was_captured():
    verdict = bootdiag.analyze("")
    assert verdict.line_count == 0 and verdict.findings == () and verdict.booted is None
    assert "empty" in verdict.summary


def test_demo_estate_stories(emulator):
    """The estate's three broken guests read as the runbook story they tell."""
    from backend.emulator.estates import load_estate
    from tests.support import FIXED_NOW

    estate = load_estate("demo", now=FIXED_NOW)
    names = {d["id"].lower(): d["name"] for d in estate["resources"] if d["type"] == "Microsoft.Compute/virtualMachines"}
    got = {names[vm_id.lower()]: bootdiag.analyze(g["serial_log"]) for vm_id, g in estate["guest"].items()}
    assert got["api-dev-01"].primary.id == "emergency-mode"
    assert "Timed out waiting for device /dev/disk/by-uuid/" in got["api-dev-01"].primary.line
    assert got["pg-dev-01"].primary.id == "fsck-required"
    assert got["iis-test-01"].primary.id == "stop-code" and got["iis-test-01"].primary.facts["code"] == "INACCESSIBLE_BOOT_DEVICE"
    assert not got["web-prod-01"].findings and got["web-prod-01"].booted


def test_screenshot_png_from_bmp_and_bad_bytes():
    import io

    from PIL import Image

    bmp = io.BytesIO()
    Image.new("RGB", (8, 4), (0, 120, 215)).save(bmp, format="BMP")
    png = bootdiag.screenshot_png(bmp.getvalue())
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).getpixel((3, 2)) == (0, 120, 215)
    with pytest.raises(ValueError, match="not an image"):
        bootdiag.screenshot_png(b"<Error>nope</Error>")


CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("extra", ["", "\u00e9", "\u2713"], ids=["ascii", "latin-1", "wide"])
def test_clean_lines_leaves_no_control_character_c0_del_or_c1(extra):
    raw = (
        f"a\x1b[2Jb\x1b]0;title\x07c\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\d\x1b]52;c;SGVsbG8=\x07e{extra}\r\n"
        "8-bit CSI \x9b2J, OSC \x9d0;t\x9c, NEL \x85, DCS \x90x\x9c end\x7f\x08\x00\r"
        "\x1b[?25l\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m\n"
    )
    for text in (raw, raw.encode("utf-8")):
        lines = bootdiag.clean_lines(text)
        assert lines[0] == f"abclinkde{extra}"
        assert lines[1] == "8-bit CSI 2J, OSC 0;t, NEL , DCS x end"
        assert lines[2] == "red rgb"
        assert not any(CONTROLS.search(line) for line in lines)


def test_clean_lines_shows_bidi_and_invisible_characters_and_keeps_tabs():
    lines = bootdiag.clean_lines("evil\u202eexe.txt\tzero\u200bwidth\u2028next\n")
    assert lines == ["evil<U+202E>exe.txt\tzero<U+200B>width<U+2028>next"]


def test_a_flood_of_escapes_is_still_stripped_of_every_control():
    text = ("\x1b[" * 120_000) + "x\x9b" * 60_000 + "\u2713\n" + "\x1b]0;" * 30_000  # more ESC than a console writes
    lines = bootdiag.clean_lines(text)
    assert not any(CONTROLS.search(line) for line in lines)
    assert lines[0].count("x") == 60_000


def test_patterns_rewritten_for_linear_time_find_what_they_found_before():
    panic = bootdiag.analyze(
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro root=/dev/mapper/vg-root quiet\n"
        "[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]\n",
        "Linux",
    )
    assert panic.primary.facts["reason"] == "VFS: Unable to mount root fs on unknown-block(0,0)"
    assert panic.primary.facts["root"] == "/dev/mapper/vg-root", "the kernel takes the last root="
    fsck = bootdiag.analyze("[    2.0] systemd-fsck[1]: fsck.ext4 exited with status 4 on /dev/sdb1]\nrequires a manual fsck\n", "Linux")
    assert fsck.primary.facts == {"fstype": "ext4", "device": "/dev/sdb1"}
    # A line with the first part twice and the second after the second: still found.
    agent = bootdiag.analyze("Failed to start x. Failed to start Azure Linux Agent.\n", "Linux")
    assert agent.primary.id == "guest-agent-failed"
    assert bootdiag.analyze("x Status: 0xc0000034\n", "Windows").findings == ()
    assert bootdiag.analyze("Status: 0xc0000034\n", "Windows").primary.facts["status"] == "0xc0000034"
    sshd = bootdiag.analyze("sshd[9]: /etc/ssh/sshd_config.d/50-x.conf: line 3: Bad configuration option: Foo\n", "Linux")
    assert sshd.primary.facts["config_file"] == "/etc/ssh/sshd_config.d/50-x.conf"
    assert sshd.primary.facts["config_line"] == "3"
