"""`aztriage bootlog` as a script uses it: a real process against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support import assert_one_clear_line

ROOT = Path(__file__).resolve().parent.parent


def bootlog(emulator, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    connection = ["--arm-endpoint", emulator.endpoint, "--ca-file", emulator.ca_file, "--auth", "none"]
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "bootlog", *connection, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def test_json_shape_with_the_screenshot_saved(emulator, tmp_path):
    shot = tmp_path / "api-dev-01.png"
    proc = bootlog(emulator, "--vm", "api-dev-01", "--screenshot", str(shot), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"vm", "serial_log_tail", "signatures", "screenshot_saved"} <= set(out)
    assert out["vm"] == "api-dev-01"
    assert isinstance(out["serial_log_tail"], list) and 0 < len(out["serial_log_tail"]) <= 40
    assert out["serial_log_tail"][-1] == "(or press Control-D to continue):"
    assert all(set(s) == {"id", "line", "recommended_scenario"} for s in out["signatures"])
    first = out["signatures"][0]
    assert first["id"] == "emergency-mode" and first["recommended_scenario"] == "rescue"
    assert "Timed out waiting for device /dev/disk/by-uuid/" in first["line"]
    assert out["booted"] is False and out["recommended_scenario"] == "rescue"
    assert any("/rescue/etc/fstab" in c for c in out["repair"])
    assert out["screenshot_saved"] == str(shot)
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (640, 400)
    assert oct(shot.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["api-dev-01.png"], "no part file left behind"


def test_text_names_the_stop_code_and_marks_the_last_boot(emulator):
    proc = bootlog(emulator, "--vm", "iis-test-01", "--lines", "12")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("iis-test-01: did not boot: Windows stop code")
    assert "Windows stop code (line " in proc.stdout and "Stop code: INACCESSIBLE_BOOT_DEVICE" in proc.stdout
    assert "Repair on the rescue VM:" in proc.stdout and "chkdsk F: /f" in proc.stdout
    tail = proc.stdout.split("Last 12 lines of the serial log", 1)[1].splitlines()[1:]
    assert len(tail) == 12 and all(line.startswith(">") for line in tail), "the second boot is the last one and shown marked"
    assert "screenshot" not in proc.stdout.lower().split("last 12 lines")[1]


def test_a_clean_vm_json_has_no_signature(emulator):
    proc = bootlog(emulator, "--vm", "web-prod-01", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["signatures"] == [] and out["booted"] is True and out["screenshot_saved"] is None
    assert out["serial_log_tail"][-1] == "web-prod-01 login:"


def test_unknown_vm_is_one_line(emulator):
    assert_one_clear_line(bootlog(emulator, "--vm", "no-such-vm"), "no VM named no-such-vm")


def test_boot_diagnostics_off_is_one_line_and_says_how_to_enable(emulator):
    line = assert_one_clear_line(
        bootlog(emulator, "--vm", "dev-spot-01", "--format", "json"), "boot diagnostics are off on VM dev-spot-01", "enable-boot-diagnostics"
    )
    assert line.startswith("aztriage: ")


def test_bad_input_fails_before_anything_is_read_or_written(emulator, tmp_path):
    before = json.loads(_stats(emulator))["requests"]
    assert_one_clear_line(bootlog(emulator, "--vm", "api-dev-01", "--screenshot", str(tmp_path / "nope" / "x.png")), "does not exist")
    assert_one_clear_line(bootlog(emulator, "--vm", "api-dev-01", "--screenshot", str(tmp_path / "x.jpg")), "must end in .png")
    assert_one_clear_line(bootlog(emulator, "--vm", "api-dev-01", "--format", "table"), "--format table is not available here")
    assert_one_clear_line(bootlog(emulator, "--vm", "api-dev-01", "--lines", "zero"), "not a number of lines")
    assert_one_clear_line(bootlog(emulator), "--vm")
    assert json.loads(_stats(emulator))["requests"] == before, "bad input sends nothing"
    assert list(tmp_path.iterdir()) == []


def _stats(emulator) -> str:
    from tests.support import emulator_control

    return json.dumps(emulator_control(emulator, "GET", "/_emulator/stats"))
