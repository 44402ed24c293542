"""`aztriage recover --scenario rescue|recreate` and `aztriage runs --release`
as an operator runs them: real processes, the manual wait (exit 3), and real
kill -9 (SIGKILL) at every step boundary of both scenarios and in the middle
of every long-running operation, then --resume: the rescue of api-dev-01 with
--run-fixes, and the recreate of dev-sandbox-01, whose disks, NIC and public
IP start with deleteOption Delete and which carries extensions and userData.

The boundaries are not written down here: tests/kill_points.py records the
ones a run of each plan passes (before each step, once it is marked running,
once ARM accepted each long-running operation, once its action ended, and
after the last verification), so a new step or operation is covered by
itself. After every run, killed however often, the end is the same: the run
verified, the VM running (booting its repaired disk / on its own disks with
its extensions and userData back), no operation started twice, nothing in the
emulator's store that the journal's ledger does not list, and no customer
disk deleted. A process killed in the middle of a VM delete that is still in
progress resumes polling that same delete (a slower emulator). The same
boundaries are killed in-process in test_recovery_rescue.py and
test_recovery_recreate.py, with failures injected at each step."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests import fork_cli
from tests.kill_points import case_points, kill_rounds, recorded
from tests.recovery_support import (
    arm_request,
    cli_connection,
    cli_env,
    journal_path,
    json_lines,
    kill_when_accepted,
    operation_on,
    own_emulator,
    power,
    vm_doc,
    writes,
)
from tests.rescue_support import assert_store_clean, estate, guest, operation_counts
from tests.support import assert_secret_nowhere, emulator_control
from tests.test_recovery_cli import AZTRIAGE, REPO, one_line_error, runs

# emu (this module's own emulator) and before (its estate at the start): tests/rescue_fixtures.py


def aztriage(emu, home, *args: str, kill_at: str | None = None, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    env = cli_env(home, emu)
    if kill_at:
        env["AZTRIAGE_RECOVERY_KILL_AT"] = kill_at
    env["AZTRIAGE_REACH_TIMEOUT"] = "3"
    return subprocess.run([*AZTRIAGE, *args, *cli_connection(emu)], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def journal(home):
    from backend.recovery.journal import Journal

    return Journal(journal_path(home))


RESCUE = ["recover", "--vm", "api-dev-01", "--scenario", "rescue", "--run-fixes", "--yes", "--confirm", "api-dev-01"]
RECREATE = ["recover", "--vm", "dev-sandbox-01", "--scenario", "recreate", "--yes", "--confirm", "dev-sandbox-01"]


def test_rescue_waits_for_the_operator_with_exit_3_then_finishes_and_releases_the_snapshot(emu, home, before):
    first = aztriage(emu, home, *RESCUE)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "WAITING for the operator" in first.stdout and "fsck -yM /dev/disk/azure/scsi1/lun0-part1" in first.stdout
    (listed,) = runs(emu, home)
    run_id = listed["run_id"]
    assert listed["status"] == "waiting"
    assert f"resume with: aztriage recover --resume {run_id} --operator-done --confirm api-dev-01" in first.stdout
    # The rest is destructive (the VM is deallocated): the name is asked again.
    refused = aztriage(emu, home, "recover", "--resume", run_id, "--operator-done")
    assert refused.returncode == 1 and "confirm by typing the VM's name (api-dev-01)" in one_line_error(refused)
    done = aztriage(emu, home, "recover", "--resume", run_id, "--operator-done", "--confirm", "api-dev-01", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    events = json_lines(done.stdout)
    assert events[-1]["event"] == "run-finished" and events[-1]["state"] == "succeeded"
    assert any(e["event"] == "verified" and e["key"] == "reach-ssh" for e in events)
    vm_id = vm_doc(emu, "api-dev-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "ok" and power(emu, "api-dev-01") == "running"
    with journal(home) as j:
        assert_store_clean(emu, j, before)
    # Releasing: headless it needs --yes; then only the snapshot goes.
    ask = aztriage(emu, home, "runs", "--release", run_id, stdin="")
    assert ask.returncode == 2 and "add --yes" in one_line_error(ask)
    assert "DELETE snapshot" in ask.stdout and "keep   original-os-disk" in ask.stdout and "keep   disk-copy" in ask.stdout
    released = aztriage(emu, home, "runs", "--release", run_id, "--yes")
    assert released.returncode == 0, released.stdout + released.stderr
    assert "ok   snapshot" in released.stdout and "deleted" in released.stdout
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
    assert not any("/snapshots/" in i for i in changes["new"]) and changes["deleted_customer_disks"] == set()
    again = aztriage(emu, home, "runs", "--release", run_id, "--yes")
    assert again.returncode == 0 and "nothing to release" in again.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["recover", "--vm", "web-prod-01", "--scenario", "restart", "--rescue-vm", "x"], "--rescue-vm and --run-fixes only apply to --scenario rescue"),
        (["recover", "--resume", "abc", "--run-fixes"], "--resume continues a run as it was planned"),
        (["recover", "--vm", "api-dev-01", "--scenario", "rescue", "--rescue-vm", "nope-01", "--yes"], "no VM named nope-01"),
        (["recover", "--vm", "api-dev-01", "--scenario", "rescue", "--rescue-vm", "pg-dev-01", "--yes"], "pg-dev-01 does not boot itself"),
        (["runs", "--release", "nosuchrun", "--yes"], "there is no run nosuchrun"),
    ],
)
def test_bad_input_is_one_sentence_and_changes_nothing(emu, home, args, message):
    before_writes = writes(emu)
    proc = aztriage(emu, home, *args, stdin="")
    assert proc.returncode in (1, 2), proc.stderr
    assert message in one_line_error(proc)
    assert writes(emu) == before_writes


def test_recreate_dry_run_shows_the_risk_and_sends_no_write(emu, home):
    before_writes = writes(emu)
    proc = aztriage(emu, home, "recover", "--vm", "dev-sandbox-01", "--scenario", "recreate", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "[DESTRUCTIVE] Delete the VM resource dev-sandbox-01" in proc.stdout
    assert "deleteOption is Delete on OS disk" in proc.stdout
    # Its extensions and userData: what is installed again, what the operator must do, and never the userData itself.
    assert "installs AzureMonitorLinuxAgent" in proc.stdout and "sandbox-bootstrap" in proc.stdout and "install it yourself" in proc.stdout
    _, user_data = _extensions(emu, "dev-sandbox-01")
    assert "userData (" in proc.stdout and user_data not in proc.stdout and "sandbox-role" not in proc.stdout
    assert writes(emu) == before_writes
    refused = aztriage(emu, home, "recover", "--vm", "dev-ephemeral-01", "--scenario", "recreate", "--yes", "--confirm", "dev-ephemeral-01")
    assert refused.returncode == 1 and "ephemeral OS disk" in one_line_error(refused)


# --- kill -9 at every boundary ---------------------------------------------------------------------------
#
# The kill points come from the plan itself (tests/kill_points.py records the boundaries one
# uninterrupted run of each scenario passes), so a new step, or a new long-running operation
# in a step, is covered without editing this file. A case takes a few consecutive steps: a
# fresh run is killed at the first of their boundaries, and each following boundary kills
# the process that resumed the previous kill; a last --resume finishes the run, and the end
# is checked. A resumed run that finishes without passing the next boundary (it saw, by
# looking at Azure, that the step interrupted mid-operation was done, so that step's done:
# never comes) is checked too, and that boundary gets a fresh run of its own: every boundary
# is killed at least once. Each process is real and dies by SIGKILL; it is forked from a
# server that imported the CLI once (tests/fork_cli.py), so it starts in milliseconds
# instead of the two seconds of importing the Azure SDK.

# Each scenario's recorded steps are split into this many consecutive chunks, one test each (a
# fixed number, so that collecting the tests records no run); a chunk costs one whole run plus a
# short process per boundary.
CASES = {"rescue": 3, "recreate": 2}


@pytest.fixture(scope="module")
def recorded_steps():
    """The steps of each scenario with the boundaries an uninterrupted run passes (recorded once per process)."""
    return {
        "rescue": recorded("api-dev-01", "rescue", (("run_fixes", True),)).steps,
        "recreate": recorded("dev-sandbox-01", "recreate").steps,
    }


def _forked(emu, home, *args: str, kill_at: str | None = None) -> fork_cli.Result:
    env = dict(cli_env(home, emu), AZTRIAGE_REACH_TIMEOUT="3")
    if kill_at:
        env["AZTRIAGE_RECOVERY_KILL_AT"] = kill_at
    return fork_cli.run([*args, *cli_connection(emu)], env, REPO)


def _kill_at_each(emu, home, args: list[str], vm_name: str, points: list[str]) -> str:
    """Kill the run at each point in turn, each kill in the process that resumed the one before,
    and resume it to its end. Returns its run id; the points it could not pass are left in `points`."""
    resume: list[str] = []
    killed: list[str] = []
    while points:
        point = points[0]
        if not resume:
            proc = _forked(emu, home, *args, kill_at=point)
            (listed,) = runs(emu, home)
            resume = ["recover", "--resume", listed["run_id"], "--operator-done", "--confirm", vm_name]
        else:
            proc = _forked(emu, home, *resume, kill_at=point)
        if proc.returncode == 3:  # stopped for the operator before the point: the operator says it is done
            proc = _forked(emu, home, *resume, kill_at=point)
        if proc.returncode == 0 and killed:
            break  # resumed and finished without passing this point: a fresh run is killed there next
        assert proc.returncode == -signal.SIGKILL, (point, "after kills at", killed, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        killed.append(points.pop(0))
        (listed,) = runs(emu, home)
        assert listed["status"] == "interrupted", (point, listed["status"])
    else:
        final = _forked(emu, home, *resume)
        if final.returncode == 3:  # killed before the manual step: the resumed run stops there first
            final = _forked(emu, home, *resume)
        assert final.returncode == 0, ("after kills at", killed, final.stdout[-3000:], final.stderr[-2000:])
    return resume[2]


def _only_once(counts, *, twice: set[tuple[str, str]] = frozenset()) -> None:
    """No operation was started twice on anything (the kills caused no duplicate), save the expected ones."""
    again = {k: n for k, n in counts.items() if n != (2 if k in twice else 1)}
    assert not again, again


def _extensions(emu, vm_name: str) -> tuple[dict[str, dict], str | None]:
    """The VM's extensions (name -> properties) and userData, as GET ?$expand=userData returns them."""
    vm_id = vm_doc(emu, vm_name)["doc"]["id"]
    status, doc = arm_request(emu, "GET", f"{vm_id}?$expand=userData")
    assert status == 200
    return {e["name"]: e["properties"] for e in doc.get("resources") or ()}, doc["properties"].get("userData")


def _disks_and_nics(doc: dict) -> dict[str, str]:
    props = doc["properties"]
    out = {"os": props["storageProfile"]["osDisk"]["managedDisk"]["id"].lower()}
    out.update({f"lun{d['lun']}": d["managedDisk"]["id"].lower() for d in props["storageProfile"]["dataDisks"]})
    out.update({f"nic{i}": n["id"].lower() for i, n in enumerate(props["networkProfile"]["networkInterfaces"])})
    return out


def _rescue_ended_well(emu, home, run_id: str, before) -> None:
    (listed,) = runs(emu, home)
    assert listed["status"] == "succeeded"
    vm_id = vm_doc(emu, "api-dev-01")["doc"]["id"]
    assert guest(emu, vm_id)["boot"] == "ok" and power(emu, "api-dev-01") == "running"
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
        ledger = {r.kind: r.resource_id.lower() for r in j.resources(run_id)}
    assert len(changes["new"]) == 2 and not changes["new_groups"] and changes["gone"] == set()  # the snapshot and the copy
    assert ledger["snapshot"] in changes["new"] and ledger["disk-copy"] in changes["new"]
    counts = operation_counts(emu)
    rescue_vm = ledger["rescue-vm"]
    assert counts[("create", rescue_vm)] == 1 and counts[("update", vm_id.lower())] == 1 and counts[("start", vm_id.lower())] == 1
    _only_once(counts, twice={("update", rescue_vm)})  # the copy attached, then detached


def _recreate_ended_well(emu, home, original: dict, had: dict, user_data: str | None, before) -> None:
    (listed,) = runs(emu, home)
    assert listed["status"] == "succeeded"
    doc = vm_doc(emu, "dev-sandbox-01")["doc"]
    vm_id = doc["id"].lower()
    assert doc["properties"]["vmId"] != original["properties"]["vmId"] and power(emu, "dev-sandbox-01") == "running"
    assert _disks_and_nics(doc) == _disks_and_nics(original)  # the same OS disk, data disks at the same LUNs, NICs
    has, carried = _extensions(emu, "dev-sandbox-01")
    assert carried == user_data  # userData came back
    reinstalled = {name for name, props in had.items() if props["type"] != "CustomScript"}
    assert set(has) == reinstalled
    for name in reinstalled:
        for key in ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion", "enableAutomaticUpgrade", "settings"):
            assert has[name].get(key) == had[name].get(key), (name, key)
    counts = operation_counts(emu)
    assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
    assert all(counts[("create", f"{vm_id}/extensions/{name.lower()}")] == 1 for name in reinstalled)
    _only_once(counts)
    with journal(home) as j:
        changes = assert_store_clean(emu, j, before)
    assert changes["new"] == set() and changes["deleted_customer_disks"] == set()
    assert {g.rsplit("/", 1)[-1] for g in changes["gone"]} == {"sandbox-bootstrap"}  # the one that needs its protected settings


@pytest.mark.parametrize("scenario, case", [(s, n) for s, count in CASES.items() for n in range(count)], ids=lambda v: str(v + 1) if isinstance(v, int) else v)
def test_killed_with_sigkill_at_every_boundary_resumes_to_the_same_end(emu, home, before, tmp_path, recorded_steps, scenario, case):
    points = case_points(recorded_steps[scenario], case, CASES[scenario])
    for this_home in kill_rounds(emu, points, home, tmp_path):
        if scenario == "rescue":
            run_id = _kill_at_each(emu, this_home, RESCUE, "api-dev-01", points)
            _rescue_ended_well(emu, this_home, run_id, before)
        else:
            original = vm_doc(emu, "dev-sandbox-01")["doc"]
            had, user_data = _extensions(emu, "dev-sandbox-01")
            assert user_data and any(p["type"] == "CustomScript" for p in had.values())
            _kill_at_each(emu, this_home, RECREATE, "dev-sandbox-01", points)
            _recreate_ended_well(emu, this_home, original, had, user_data, before)


def test_kill_9_in_the_middle_of_the_delete_resumes_polling_the_same_delete(tmp_path):
    slow = own_emulator(acceleration=60)  # deleting a VM takes 1 s
    try:
        home = tmp_path / "home"
        start = estate(slow)
        proc = subprocess.Popen(
            [*AZTRIAGE, *RECREATE, *cli_connection(slow)],
            cwd=REPO,
            env=dict(cli_env(home, slow), AZTRIAGE_REACH_TIMEOUT="3"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kill_when_accepted(proc, home, "delete", timeout=60)
        assert operation_on(slow, "delete", "dev-sandbox-01")["status"] == "InProgress"
        vm_id = vm_doc(slow, "dev-sandbox-01")["doc"]["id"].lower()
        (listed,) = runs(slow, home)
        second = aztriage(slow, home, "recover", "--resume", listed["run_id"], "--confirm", "dev-sandbox-01", timeout=120)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr
        assert "resuming the delete operation sent before the interruption" in second.stdout
        counts = operation_counts(slow)
        assert counts[("delete", vm_id)] == 1 and counts[("create", vm_id)] == 1
        with journal(home) as j:
            assert_store_clean(slow, j, start)
    finally:
        slow.stop()


# --- the way in to a new rescue VM: the operator's key or password, never kept ----------------------------

RESCUE_PASSWORD = "Rescue-Sentinel-Pa55-4417!"
RESCUE_KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAIRescueSentinelKey4417plugh"


def _row(out: str, label: str) -> str:
    """A row of the plan's NOW/AFTER table."""
    return next(line for line in out.splitlines() if line.startswith(label + " ")).rstrip()


def _finish_and_report(emu, home, run_id: str, outputs: list[str]) -> None:
    for args in (
        ("recover", "--resume", run_id, "--operator-done", "--confirm", "api-dev-01"),
        ("runs", run_id, "--format", "json"),
        ("report", "--vm", "api-dev-01", "--no-probe", "--output", str(home / "report.md")),
    ):
        proc = aztriage(emu, home, "--log-level", "DEBUG", *args)
        outputs += [proc.stdout, proc.stderr]
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rescue_vm_takes_the_operators_password_and_says_how_to_reach_it(emu, home):
    from backend.emulator.accounts import password_matches

    first = aztriage(emu, home, "--log-level", "DEBUG", "--width", "400", *RESCUE, "--password-stdin", stdin=RESCUE_PASSWORD + "\n")
    outputs = [first.stdout, first.stderr]
    assert first.returncode == 3, first.stdout + first.stderr
    assert _row(first.stdout, "sign-in").endswith("rescueadmin with the password you typed (never kept)")
    assert _row(first.stdout, "reached").endswith("private IP only (VPN, Bastion) or serial console")
    rescue = vm_doc(emu, "rescue-api-dev-01")
    profile = rescue["doc"]["properties"]["osProfile"]
    assert profile["adminUsername"] == "rescueadmin" and "adminPassword" not in profile  # ARM never returns it
    assert profile["linuxConfiguration"]["disablePasswordAuthentication"] is False
    # The guest the emulator created holds that password (a salted hash of it), not a random one.
    account = guest(emu, rescue["doc"]["id"])["account"]
    assert account["user"] == "rescueadmin" and password_matches(account["password"], RESCUE_PASSWORD)
    assert not password_matches(account["password"], RESCUE_PASSWORD + "x")
    # Where it is: its private IP (no public one), by VPN/Bastion, or its serial console.
    nic = rescue["doc"]["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    (nic_doc,) = [
        d for d in emulator_control(emu, "GET", "/_emulator/resources?type=Microsoft.Network/networkInterfaces")["resources"] if d["id"].lower() == nic.lower()
    ]
    address = nic_doc["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    assert address and "publicIPAddress" not in nic_doc["properties"]["ipConfigurations"][0]["properties"]
    assert f"private IP {address}, no public IP" in first.stdout
    # The step that waits says where the rescue VM is, as it is now.
    waiting = next(line for line in first.stdout.splitlines() if "repair the copy" in line and "private IP" in line)
    assert f"ssh rescueadmin@{address}" in waiting and "aztriage console --vm rescue-api-dev-01" in waiting and "Bastion" in waiting
    run_id = runs(emu, home)[0]["run_id"]
    _finish_and_report(emu, home, run_id, outputs)
    assert_secret_nowhere(RESCUE_PASSWORD, home, outputs)


def test_rescue_vm_takes_the_operators_ssh_key_with_password_sign_in_off(emu, home, tmp_path):
    key = tmp_path / "id_ed25519.pub"
    key.write_text(f"ssh-ed25519 {RESCUE_KEY_BODY} operator@laptop\n")
    first = aztriage(emu, home, "--log-level", "DEBUG", "--width", "400", *RESCUE, "--ssh-key", str(key))
    outputs = [first.stdout, first.stderr]
    assert first.returncode == 3, first.stdout + first.stderr
    assert _row(first.stdout, "sign-in").endswith("rescueadmin with your SSH public key (password sign-in off)")
    rescue = vm_doc(emu, "rescue-api-dev-01")
    linux = rescue["doc"]["properties"]["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"] == [{"path": "/home/rescueadmin/.ssh/authorized_keys", "keyData": f"ssh-ed25519 {RESCUE_KEY_BODY} operator@laptop"}]
    account = guest(emu, rescue["doc"]["id"])["account"]
    assert account["password"] is None and account["password_login"] is False and account["ssh_keys"] == [f"ssh-ed25519 {RESCUE_KEY_BODY} operator@laptop"]
    waiting = next(line for line in first.stdout.splitlines() if "repair the copy" in line and "private IP" in line)
    assert "--auth-type ssh-key" in waiting and "which signs in with a password: set one with reset-access first" in waiting
    run_id = runs(emu, home)[0]["run_id"]
    _finish_and_report(emu, home, run_id, outputs)
    assert_secret_nowhere(RESCUE_KEY_BODY, home, outputs)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rescue-vm", "dev-sandbox-01", "--password-stdin"], "--password-stdin and --ssh-key set up a new rescue VM"),
        (["--username", "ops"], "--username and --reset-config only apply to --scenario reset-access"),
    ],
)
def test_rescue_way_in_bad_input_is_one_line(emu, home, extra, message):
    proc = aztriage(emu, home, "recover", "--vm", "api-dev-01", "--scenario", "rescue", "--yes", *extra, stdin="x\n")
    assert proc.returncode == 2 and message in one_line_error(proc)
