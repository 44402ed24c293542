"""Repair commands are pasted as root on a rescue VM: whatever the guest wrote in its
serial log (the root= device, a device that timed out, the kernel release, an sshd
config path) never becomes shell code.

For any fact string: every generated bash command parses (shlex) into exactly the
words it was built from, a fact is either one whole word of its exact shape or not
used at all (the generic command, and a comment saying why), and pasting the whole
repair into a real interactive bash whose commands are stubs runs only the stubs,
with the intended arguments, and creates no file."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend import bootdiag, shellcmd
from backend.recovery.scenarios.rescue import repair_commands

LINUX = [s for s in bootdiag.SIGNATURES if s.os_type == bootdiag.LINUX]
WINDOWS = [s for s in bootdiag.SIGNATURES if s.os_type == bootdiag.WINDOWS]
SHAPED = ("root", "device", "mount", "kernel", "config_file", "config_line")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Shell syntax, quotes, expansions, newlines and plain characters, mixed.
HOSTILE = ";|&$`'\"\\ \n\t(){}<>*?![]#~=/.-_:+,%^aZ09\u00e9\u0085\u202e"
fact_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=HOSTILE, max_size=40),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["/dev/", "/dev/mapper/", "/etc/ssh/sshd_config", "UUID=", "5.15.0-", "/data", ""]),
        st.text(alphabet=HOSTILE, max_size=20),
    ),
)
shaped_fact = {
    "root": st.from_regex(r"\A/dev/mapper/[a-z][a-z0-9_-]{0,12}\Z|\A/dev/sd[a-c][1-4]\Z|\AUUID=[0-9a-f-]{8,36}\Z"),
    "device": st.from_regex(r"\A/dev/disk/by-uuid/[0-9a-f]{8}-[0-9a-f]{4}\Z|\A/dev/sd[c-f][1-4]\Z"),
    "mount": st.from_regex(r"\A/[a-z][a-z0-9_.-]{0,12}\Z"),
    "kernel": st.from_regex(r"\A[0-9]\.[0-9]{1,2}\.[0-9]-[0-9]{1,4}-azure\Z"),
    "config_file": st.sampled_from(["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-cloud-init.conf"]),
    "config_line": st.integers(1, 9999).map(str),
}


def build(signature: bootdiag.Signature, facts: dict[str, str]) -> tuple[list[str], list[str]]:
    vetted = bootdiag.Facts(facts)
    commands = signature.repair(vetted)
    return vetted.notes, commands


def assert_parses_into_its_words(commands: list[str]) -> None:
    for command in commands:
        assert isinstance(command, shellcmd.ShellCommand), f"built without the shell builder: {command!r}"
        assert shlex.split(command, comments=True) == list(command.words), command
        assert not CONTROL.search(command), f"a control character in {command!r}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signature=st.sampled_from(LINUX), facts=st.dictionaries(st.sampled_from(SHAPED + ("reason", "filesystem")), fact_text, max_size=6))
def test_any_fact_is_one_word_of_its_shape_or_not_used(signature, facts):
    notes, commands = build(signature, facts)
    assert_parses_into_its_words(notes + commands)
    rejected = [key for key, value in facts.items() if key in SHAPED and not bootdiag._has_shape(key, value)]
    without = {key: value for key, value in facts.items() if key not in rejected}
    _, generic = build(signature, without)
    # A fact of the wrong shape changes nothing but the comment that says why it was left out.
    assert [c.words for c in commands] == [c.words for c in generic]
    asked: set[str] = set()

    class Recording(bootdiag.Facts):
        def get(self, key, default=None):
            asked.add(key)
            return super().get(key, default)

    signature.repair(Recording(facts))
    # The repair says why when it left out a fact it would have used.
    assert len(notes) == len({bootdiag._FACT_SHAPES[key][1] for key in rejected if key in asked})
    for note in notes:
        assert note.startswith("# not used: ") and shlex.split(note, comments=True) == []


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_shaped_facts_become_exactly_the_intended_words(data):
    root = data.draw(shaped_fact["root"])
    kernel = data.draw(shaped_fact["kernel"])
    device = data.draw(shaped_fact["device"])
    mount = data.draw(shaped_fact["mount"])
    config = data.draw(shaped_fact["config_file"])
    line = data.draw(shaped_fact["config_line"])
    rescue = bootdiag.RESCUE_MOUNT

    def words(signature_id: str, facts: dict[str, str]) -> list[list[str]]:
        notes, commands = build(bootdiag.BY_ID[signature_id], facts)
        assert notes == []
        return [list(c.words) for c in commands]

    panic = words("kernel-panic", {"root": root, "kernel": kernel, "reason": "VFS: Unable to mount root fs"})
    assert ["chroot", rescue, "update-initramfs", "-u", "-k", kernel] in panic
    mounted = root if root.startswith("/dev/mapper/") else bootdiag._partition(root if root.startswith("/dev/") else None)
    assert ["mkdir", "-p", rescue, "&&", "mount", mounted, rescue] in panic
    fstab = words("emergency-mode", {"device": device, "mount": mount})
    key = device.rsplit("/", 1)[-1] if "/by-uuid/" in device else device
    assert ["grep", "-nF", "--", key, f"{rescue}/etc/fstab"] in fstab
    assert ["sed", "-i", f"\\|{shellcmd.sed_literal(key)}| s|^|# |", f"{rescue}/etc/fstab"] in fstab
    by_mount = words("emergency-mode", {"mount": mount})
    assert ["grep", "-nF", "--", f" {mount} ", f"{rescue}/etc/fstab"] in by_mount
    sshd = words("sshd-failed", {"config_file": config, "config_line": line})
    assert ["cp", f"{rescue}{config}", f"{rescue}{config}.bak"] in sshd
    assert ["sed", "-n", f"{int(line)}p", f"{rescue}{config}"] in sshd


def test_a_root_device_that_is_shell_code_is_left_out_and_the_repair_says_why():
    log = "\n".join(
        [
            "[    0.000000] Linux version 5.15.0-1073-azure (buildd@lcy02) #82-Ubuntu SMP",
            "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=/dev/mapper/x;touch${IFS}X;# ro",
            "[    3.100000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        ]
    )
    verdict = bootdiag.analyze(log)
    assert verdict.primary.id == "kernel-panic"
    assert verdict.repair[0] == (
        "# not used: the root= device on the kernel command line is not of the shape a command can take safely; "
        "the commands mount the copy's first partition; lsblk shows the real root"
    )
    assert "mkdir -p /rescue && mount /dev/disk/azure/scsi1/lun0-part1 /rescue   # the partition lsblk shows as the root file system" in verdict.repair
    assert not any("touch" in c for c in verdict.repair)
    assert "root" not in verdict.primary.facts


# --- pasted into bash ----------------------------------------------------------------------------

BASH = shutil.which("bash") or "/bin/bash"

STUBBED = [
    "lsblk",
    "vgscan",
    "vgchange",
    "mkdir",
    "mount",
    "cp",
    "grep",
    "sed",
    "findmnt",
    "umount",
    "chroot",
    "ls",
    "fsck",
    "xfs_repair",
    "df",
    "du",
    "sort",
    "tail",
    "journalctl",
    "find",
    "vi",
    "sshd",
    "cloud-init",
    "curl",
    "head",
    "systemctl",
    "ip",
    "iptables",
    "dmesg",
    "update-initramfs",
]


def paste(commands: list[str], workdir: Path) -> tuple[list[list[str]], list[str]]:
    """Run the commands in an interactive bash (as a paste would) where every command is a stub
    that records its arguments; returns (the calls, the names bash could not find)."""
    calls, home = workdir / "calls", workdir / "home"
    calls.mkdir()
    home.mkdir()
    rc = workdir / "rc"
    stub = 'printf "%s\\0" "$FUNCNAME" "$@" > "$CALLS/$((++N))"; return 0'
    rc.write_text(
        "N=1000\n"
        + "".join(f"{name}() {{ {stub.replace('$FUNCNAME', name)}; }}\n" for name in STUBBED)
        + 'command_not_found_handle() { printf "%s\\0" "$1" > "$CALLS/missing-$((++N))"; return 127; }\n'
    )
    empty_path = workdir / "bin"
    empty_path.mkdir()
    proc = subprocess.run(
        [BASH, "--noprofile", "--rcfile", str(rc), "-i"],
        input="\n".join(commands) + "\nexit 0\n",
        capture_output=True,
        text=True,
        cwd=home,
        env={"PATH": str(empty_path), "HOME": str(home), "CALLS": str(calls), "TERM": "dumb", "LANG": "C.UTF-8", "HISTFILE": str(workdir / "history")},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(home.iterdir()) == [], f"the paste created {list(home.iterdir())}"
    recorded = sorted(calls.iterdir(), key=lambda p: p.name)
    made = [p.read_bytes().decode("utf-8", "surrogateescape").split("\0")[:-1] for p in recorded if not p.name.startswith("missing-")]
    missing = [p.read_text().rstrip("\0") for p in recorded if p.name.startswith("missing-")]
    return made, missing


def first_call(command: shellcmd.ShellCommand) -> list[str]:
    words = list(command.words)
    for i, word in enumerate(words):
        if word in ("&&", "||", "|", ";"):
            return words[:i]
    return words


nonspace = st.text(alphabet=HOSTILE.replace(" ", "").replace("\n", "").replace("\t", ""), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(root=nonspace, device=nonspace, kernel=nonspace, mount=nonspace, config=nonspace, which=st.sampled_from(["fstab", "panic", "sshd", "fsck"]))
def test_pasting_the_repair_of_a_hostile_log_runs_only_the_intended_commands(tmp_path_factory, root, device, kernel, mount, config, which):
    lines = [f"[    0.000000] Linux version {kernel} (gcc) #1 SMP", f"[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root={root} ro"]
    lines += {
        "fstab": [f"[ TIME ] Timed out waiting for device /dev/{device}.", f"mount: /{mount}: can't find /dev/{device}", "You are in emergency mode."],
        "panic": ["[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"],
        "sshd": [f"sshd[812]: /etc/ssh/sshd_config{config}: line 42: Bad configuration option: x", "Failed to start OpenBSD Secure Shell server."],
        "fsck": [f"/dev/{device}: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY."],
    }[which]
    verdict = bootdiag.analyze("\n".join(lines))
    commands = list(verdict.repair)
    assert commands
    assert_parses_into_its_words(commands)
    made, missing = paste(commands, tmp_path_factory.mktemp("paste"))
    assert missing == [], f"the paste ran commands nobody wrote: {missing}"
    assert {call[0] for call in made} <= set(STUBBED)
    for command in commands:
        intended = first_call(command)
        if intended and intended[0] in STUBBED:
            assert intended in made, (command, made)


@settings(max_examples=60, deadline=None)
@given(vm_name=st.text(max_size=30), copy_name=st.text(alphabet=HOSTILE, max_size=30), line=st.text(alphabet=HOSTILE, max_size=60), lun=st.integers(0, 63))
def test_rescue_plan_commands_keep_names_and_log_lines_in_comments(vm_name, copy_name, line, lun):
    verdict = {
        "summary": "did not boot: kernel panic",
        "signatures": [{"line_number": 3, "line": line}],
        "repair": list(bootdiag.analyze("Kernel panic - not syncing: x").repair),
    }
    for os_type in ("Linux", "Windows"):
        commands = repair_commands(os_type, lun, "V2", vm_name, copy_name, verdict)
        assert not any(CONTROL.search(c) for c in commands)
        if os_type == "Linux":
            bare = repair_commands(os_type, lun, "V2", "vm", "copy", {**verdict, "signatures": [{"line_number": 3, "line": "x"}]})
            assert [shlex.split(c, comments=True) for c in commands] == [shlex.split(c, comments=True) for c in bare]
            assert any(f"/dev/disk/azure/scsi1/lun{lun}-part1" in c for c in commands)


@pytest.mark.parametrize("payload", ["x;touch${IFS}PWNED;#", "$(touch PWNED)", "`touch PWNED`", "x'$(touch PWNED)'", "a\nb"])
def test_rescue_plan_commands_pasted_into_bash_create_nothing(tmp_path, payload):
    log = f"[    0.000000] Command line: root=/dev/mapper/{payload.split(chr(10))[0]}\n[    3.1] Kernel panic - not syncing: init\n"
    verdict = bootdiag.analyze(log).to_json()
    commands = repair_commands("Linux", 2, "V1", f"vm{payload}", f"copy{payload}", verdict)
    made, missing = paste(commands, tmp_path)
    assert missing == []
    assert ["mount", "/dev/disk/azure/scsi1/lun2-part1", "/rescue"] in made


@settings(max_examples=100, deadline=None)
@given(signature=st.sampled_from(WINDOWS), code=fact_text, status=fact_text)
def test_windows_repairs_take_no_text_from_the_log(signature, code, status):
    notes, commands = build(signature, {"code": code, "status": status})
    assert notes == []
    # The stop code only picks a set of fixed commands: the same as for a code made of nothing but its choice.
    known = {"INACCESSIBLE_BOOT_DEVICE", "0X0000007B", "CRITICAL_PROCESS_DIED", "CRITICAL_SERVICE_FAILED", "UNMOUNTABLE_BOOT_VOLUME", "BAD_SYSTEM_CONFIG_INFO"}
    assert commands == build(signature, {"code": code.upper() if code.upper() in known else ""})[1]
    assert not any(CONTROL.search(command) for command in commands)


@given(st.text())
def test_powershell_quoting_keeps_one_literal_argument(word):
    quoted = shellcmd.ps_quote(word)
    assert quoted[0] == quoted[-1] == "'"
    inner = quoted[1:-1]
    # Inside PowerShell single quotes only a quote character ends the string; doubled it is literal.
    quotes = "'\u2018\u2019\u201a\u201b"
    i, out = 0, []
    while i < len(inner):
        if inner[i] in quotes:
            assert i + 1 < len(inner) and inner[i + 1] == inner[i], "a lone quote would end the argument"
            out.append(inner[i])
            i += 2
        else:
            out.append(inner[i])
            i += 1
    assert "".join(out) == word
