"""The demo keeps its state between --demo commands (saved in the data directory), so
the README's two-step CLI rescue works in the demo: the rescue waits with exit 3, and
`recover --resume RUN_ID --operator-done` finishes it in another process.
`aztriage emulator reset-demo` forgets it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZTRIAGE = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]


def cli(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        env[var] = str(home / sub)
    env.pop("AZTRIAGE_DEMO_STATE", None)  # the suite starts every demo afresh; this is the default a user gets
    env["AZTRIAGE_REACH_TIMEOUT"] = "3"
    return subprocess.run([*AZTRIAGE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_readme_two_step_rescue_finishes_in_the_demo_and_reset_forgets_it(tmp_path):
    home = tmp_path / "home"
    first = cli(home, "recover", "--demo", "--vm", "api-dev-01", "--scenario", "rescue", "--run-fixes", "--yes", "--confirm", "api-dev-01")
    assert first.returncode == 3, first.stdout + first.stderr
    run_id = re.search(r"resume with: aztriage recover --resume (\S+) --operator-done", first.stdout).group(1)
    saved = home / "data" / "aztriage" / "demo-estate.json"
    assert saved.exists() and (saved.stat().st_mode & 0o777) == 0o600
    done = cli(home, "recover", "--demo", "--resume", run_id, "--operator-done", "--confirm", "api-dev-01")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no longer exists" not in done.stdout + done.stderr
    # The next command sees the repaired VM: its boot log no longer says it did not boot.
    boot = cli(home, "bootlog", "--demo", "--vm", "api-dev-01", "--format", "json")
    assert boot.returncode == 0, boot.stderr
    assert json.loads(boot.stdout)["booted"] is True, json.loads(boot.stdout)["summary"]
    reset = cli(home, "emulator", "reset-demo")
    assert reset.returncode == 0 and "forgotten" in reset.stdout
    assert not saved.exists()
    # Afresh: api-dev-01 does not boot again.
    again = cli(home, "bootlog", "--demo", "--vm", "api-dev-01", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["booted"] is False


def test_the_demo_restores_iis_test_01_from_last_nights_restore_point_and_it_boots_again(tmp_path):
    """iis-test-01 stops on INACCESSIBLE_BOOT_DEVICE; the demo keeps a snapshot of its OS disk from
    yesterday and last night's restore point: the plan names both when --source is missing, and
    restoring from the restore point brings back a guest that boots and answers RDP."""
    home = tmp_path / "home"
    asked = cli(home, "recover", "--demo", "--vm", "iis-test-01", "--scenario", "restore-disk")
    assert asked.returncode == 2, asked.stdout + asked.stderr
    assert "iis-test-01 has: restore point rp-nightly · " in asked.stderr and "; snapshot iis-test-01-os-before-update · " in asked.stderr
    before = cli(home, "bootlog", "--demo", "--vm", "iis-test-01", "--format", "json")
    assert before.returncode == 0 and json.loads(before.stdout)["booted"] is False
    done = cli(home, "recover", "--demo", "--vm", "iis-test-01", "--scenario", "restore-disk", "--source", "rp-nightly", "--yes", "--confirm", "iis-test-01")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "from restore point rp-nightly (its disk restore point of iis-test-01_OsDisk_1_" in done.stdout
    assert "all 6 steps verified" in done.stdout and "RDP answers" in done.stdout
    after = cli(home, "bootlog", "--demo", "--vm", "iis-test-01", "--format", "json")
    assert after.returncode == 0 and json.loads(after.stdout)["booted"] is True, json.loads(after.stdout)["summary"]
