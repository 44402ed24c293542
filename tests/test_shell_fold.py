"""Commands folded for a narrow screen paste back as the same command.

An operator copies a repair command from an 80-column dialog line by line, as the terminal
shows it. backend.shellcmd.fold_command folds a command that does not fit the way the shell
reads it back: bash itself is asked here whether the folded text is the same command (its
normalised function body), and the PowerShell folds are put back together by PowerShell's
rules (a line continuation, a parenthesised sum of quoted pieces) and compared."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess

import pytest

from backend.recovery.scenarios.rescue import repair_commands
from backend.shellcmd import POWERSHELL, break_token, fold_command, fold_text, sh, wrap_words

ARM_ID = "/subscriptions/c7a95f30-91be-4d28-8e4f-2b6d3a7c9015/resourceGroups/rescue-api-dev-01-20261207015239/providers/Microsoft.Compute/virtualMachines/rescue-api-dev-01"
BASTION = sh(
    "az",
    "network",
    "bastion",
    "ssh",
    "--name",
    "BASTION",
    "--resource-group",
    "BASTION_GROUP",
    "--target-resource-id",
    ARM_ID,
    "--auth-type",
    "ssh-key",
    "--username",
    "rescueadmin",
)
VERDICT = {
    "summary": "did not boot: emergency mode (fstab)",
    "signatures": [{"line_number": 30, "line": "[ TIME ] Timed out waiting for device /dev/disk/by-uuid/2df1230a-1c2d-4e5f-8a9b-f292af692df1."}],
    "repair": [
        "sed -i '\\|2df1230a-1c2d-4e5f-8a9b-f292af692df1| s|^|# |' /rescue/etc/fstab   # comment it out, or add nofail to its options",
        "grep -nF -- 2df1230a-1c2d-4e5f-8a9b-f292af692df1 /rescue/etc/fstab   # the entry for /dev/disk/by-uuid/2df1230a-1c2d-4e5f-8a9b-f292af692df1 (/datadrive): the device never appeared",
    ],
}
LINUX = [
    BASTION,
    sh("echo", ARM_ID + " 'quoted' and long enough to need a break inside its quotes"),
    *repair_commands("Linux", 1, "V2", "api-dev-01", "api-dev-01-osdisk-rescued", VERDICT),
]
WINDOWS = [sh("az", "network", "bastion", "rdp", "--name", "BASTION", "--resource-group", "BASTION_GROUP", "--target-resource-id", ARM_ID)] + repair_commands(
    "Windows", 2, "V2", "iis-test-01", "iis-test-01-osdisk-rescued", None
)
WIDTHS = (68, 56)


def bash_body(script: str) -> str:
    """The command as bash understands it: the body of a function holding it, as bash prints it."""
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the folds"
    result = subprocess.run([bash, "-c", f"f() {{\n:\n{script}\n}}\ndeclare -f f"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    # 'ab''cd' is the word 'abcd' (a quote closed and opened again around a line continuation).
    return re.sub(r"(?<=\S)''|''(?=\S)", "", result.stdout)


def powershell_words(text: str) -> str:
    """A folded PowerShell command put back together by PowerShell's rules: a backtick at the
    end of a line goes on with the next; ('a' + <newline> 'b') is the one argument 'ab'."""
    joined = re.sub(r" `\n\s*", " ", text)
    joined = re.sub(r"(['\"]) \+\n\s*\1", "", joined)  # 'a' +\n'b' -> 'ab'
    joined = re.sub(r"\((['\"])(.*?)\1\)", r"\1\2\1", joined)  # ('ab') -> 'ab'
    return bare(joined)


def bare(text: str) -> str:
    """'word' -> word where PowerShell reads both the same (nothing in it it treats specially)."""
    return re.sub(r"'([A-Za-z0-9/._:@=,+-]+)'", r"\1", text)


def command_of(line: str) -> str:
    return line.split("   # ")[0].strip()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_linux_command_folded_is_the_same_command_for_bash(width):
    for line in LINUX:
        folded = fold_command("  " + line, width)
        assert all(len(f) <= width for f in folded), folded
        # Its comment goes above it, each line a comment: a line pasted alone never runs a word of it.
        notes = [f for f in folded if f.lstrip().startswith("#")]
        assert folded[: len(notes)] == notes, folded
        assert bash_body("\n".join(folded)) == bash_body(command_of(line)), folded


@pytest.mark.parametrize("width", WIDTHS)
def test_an_arm_id_in_a_command_is_broken_only_before_a_slash(width):
    folded = fold_command("    " + BASTION, width)
    for segment in ARM_ID.strip("/").split("/"):
        assert any(segment in f for f in folded), (segment, folded)  # each name, GUID and type whole on a line
    assert ARM_ID in "\n".join(folded).replace("\\\n", ""), folded  # bash's line continuation joins the word again
    inside = [(line, after) for line, after in itertools.pairwise(folded) if line.endswith("\\") and not line.endswith(" \\")]
    assert inside, folded  # the id is longer than a line: it is broken inside itself...
    for line, after in inside:
        assert line[-2].isalnum() and after.startswith("/"), (line, after)  # ...only at the end of a name, before a '/'


@pytest.mark.parametrize("width", WIDTHS)
def test_every_windows_command_folded_is_the_same_command_for_powershell(width):
    for line in WINDOWS:
        if not command_of(line) or command_of(line).startswith("#"):
            continue  # a comment of its own
        folded = fold_command("  " + line, width, POWERSHELL)
        longest = max(len(f) for f in folded)
        assert longest <= width, folded
        body = "\n".join(f for f in folded if not f.lstrip().startswith("#"))
        assert powershell_words(body).strip() == bare(command_of(line)), folded


def test_an_address_a_guid_and_a_name_are_never_cut_in_prose():
    lines = wrap_words(f"Sign in to 10.30.1.9 as rescueadmin; the copy is attached to {ARM_ID} at LUN 0.", 40)
    assert all(len(line) <= 40 for line in lines)
    assert any("10.30.1.9" in line for line in lines)
    assert any("c7a95f30-91be-4d28-8e4f-2b6d3a7c9015" in line for line in lines)
    assert "".join(lines[1:]).count("/") == ARM_ID.count("/")


def test_a_token_is_broken_before_its_separators_and_put_together_is_the_token():
    pieces = break_token(ARM_ID, 60)
    assert "".join(pieces) == ARM_ID and all(len(p) <= 60 for p in pieces)
    assert all(p.startswith("/") for p in pieces)
    # Nothing to break at: cut at the width, the only way it fits.
    assert break_token("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_fold_text_wraps_prose_and_folds_indented_commands():
    text = f"Or through Azure Bastion, from anywhere:\n    {BASTION}\n\nThen, as root:\n  umount /rescue   # before the copy is detached"
    lines = fold_text(text, 60).split("\n")
    assert all(len(line) <= 60 for line in lines)
    assert lines[0] == "Or through Azure Bastion, from anywhere:"
    assert lines[-2:] == ["  # before the copy is detached", "  umount /rescue"]
    assert "" in lines  # the blank line stays
