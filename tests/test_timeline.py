"""The per-VM incident timeline: the activity log and Resource Health's history as the
emulator serves them (Azure's shapes, $filter grammar, paging), the real adapter reading
them over HTTPS, and the demo's stories as an operator sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from backend.azure.backend import AzureBackend
from backend.errors import BackendError
from backend.report import find_vm
from backend.timeline import ACTIVITY, AZTRIAGE, HEALTH, build_timeline, parse_since
from tests.support import FIXED_NOW, arm_call, demo_settings, emulator_control, inbound_rule, record_run, start_emulator, succeeded

pytestmark = pytest.mark.xdist_group("timeline")

PROD = "3f2b8c1e-7a4d-4e2b-9c61-5d8a0f4b2e17"
DEV = "c7a95f30-91be-4d28-8e4f-2b6d3a7c9015"
VALUES = "/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01"
SPOT = f"/subscriptions/{DEV}/resourceGroups/rg-dev-weu/providers/Microsoft.Compute/virtualMachines/dev-spot-01"


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(sub: str, flt: str, extra: str = "") -> str:
    return f"/subscriptions/{sub}{VALUES}&$filter={quote(flt)}{extra}"


WINDOW = f"eventTimestamp ge '{_z(FIXED_NOW - timedelta(days=30))}' and eventTimestamp le '{_z(datetime.now(UTC))}'"


def test_activity_log_answers_in_azure_monitors_shape_newest_first(emulator):
    status, body = arm_call(emulator, "GET", _values(PROD, WINDOW + " and resourceGroupName eq 'rg-jump-prod'"))
    assert status == 200
    events = body["value"]
    times = [e["eventTimestamp"] for e in events]
    assert times == sorted(times, reverse=True)
    rule = [e for e in events if e["operationName"]["value"] == "Microsoft.Network/networkSecurityGroups/securityRules/write"]
    assert [e["status"]["value"] for e in rule] == ["Succeeded", "Accepted", "Started"]
    first = rule[0]
    assert first["caller"] == "sec.oncall@contoso.com"
    assert first["resourceId"].endswith("/networkSecurityGroups/nsg-jump-prod/securityRules/Deny-RDP-Incident-4711")
    assert len({e["correlationId"] for e in rule}) == 1
    for key in ("eventDataId", "correlationId", "level", "resourceGroupName", "submissionTimestamp", "subscriptionId", "tenantId", "httpRequest", "claims"):
        assert key in first, key
    assert first["category"]["value"] == "Administrative"


def test_activity_log_filters_by_resource_uri_and_correlation_id(emulator):
    _, body = arm_call(emulator, "GET", _values(DEV, WINDOW + f" and resourceUri eq '{SPOT}'"))
    operations = {e["operationName"]["value"] for e in body["value"]}
    assert operations == {f"Microsoft.Compute/virtualMachines/{op}" for op in ("write", "deallocate/action", "start/action")}
    correlation = body["value"][0]["correlationId"]
    _, one = arm_call(emulator, "GET", _values(DEV, WINDOW + f" and correlationId eq '{correlation}'"))
    assert {e["correlationId"] for e in one["value"]} == {correlation}
    assert len(one["value"]) == 3
    # the time range is honoured: a day of history before the deallocation holds none of it
    day = f"eventTimestamp ge '{_z(FIXED_NOW - timedelta(days=5))}' and eventTimestamp le '{_z(FIXED_NOW - timedelta(days=4))}'"
    _, none = arm_call(emulator, "GET", _values(DEV, day + f" and resourceUri eq '{SPOT}'"))
    assert none["value"] == []


@pytest.mark.parametrize(
    "flt",
    [
        "",
        "resourceGroupName eq 'rg-dev-weu'",
        "eventTimestamp gt '2026-11-01T00:00:00Z'",
        "eventTimestamp ge 'yesterday'",
        "eventTimestamp ge '2026-11-01T00:00:00Z' and resourceGroupName eq 'a' and correlationId eq 'b'",
    ],
)
def test_a_filter_outside_the_grammar_is_a_400_with_a_message(emulator, flt):
    status, body = arm_call(emulator, "GET", f"/subscriptions/{DEV}{VALUES}" + (f"&$filter={quote(flt)}" if flt else ""))
    assert status == 400
    assert body["error"]["code"] == "BadRequest"
    assert "$filter" in body["error"]["message"] or "time" in body["error"]["message"]


def test_activity_log_pages_by_next_link():
    emu = start_emulator("demo", page_size=2)
    try:
        seen: list[dict] = []
        path: str | None = _values(DEV, WINDOW + " and resourceGroupName eq 'rg-dev-weu'")
        pages = 0
        while path:
            status, body = arm_call(emu, "GET", path)
            assert status == 200
            assert len(body["value"]) <= 2
            seen += body["value"]
            pages += 1
            link = body.get("nextLink")
            path = link[len(emu.endpoint) :] if link else None
        assert pages >= 5
        assert len({e["eventDataId"] for e in seen}) == len(seen) == 9
    finally:
        emu.stop()


async def test_every_write_is_recorded_with_its_caller_and_how_it_ended(backend, fresh_emulator):
    vm = SPOT.replace("dev-spot-01", "dev-ephemeral-01")
    before = datetime.now(UTC) - timedelta(minutes=1)
    await backend.vm_action(vm, "restart")
    events = await backend.activity_log(DEV, start=before, end=datetime.now(UTC) + timedelta(minutes=1), resource_uri=vm)
    assert [(e.status, e.operation) for e in events][-1] == ("Started", "Microsoft.Compute/virtualMachines/restart/action")
    assert "Succeeded" in {e.status for e in events}
    assert {e.caller for e in events} == {"demo operator"}
    assert len({e.correlation_id for e in events}) == 1


async def test_adapter_follows_next_links_and_names_a_bad_filter_in_one_sentence():
    emu = start_emulator("demo", page_size=2)
    backend = AzureBackend(demo_settings(emu), retry_total=1)
    try:
        events = await backend.activity_log(DEV, start=FIXED_NOW - timedelta(days=30), end=datetime.now(UTC), resource_group="rg-dev-weu")
        assert len(events) == 9
        assert [e.time for e in events] == sorted((e.time for e in events), reverse=True)
        assert {e.caller for e in events} == {"dana.ng@contoso.com"}
        with pytest.raises(BackendError) as err:
            await backend.activity_log(DEV, start=datetime.now(UTC), end=datetime.now(UTC) - timedelta(days=1))
        assert str(err.value).startswith("reading the activity log: The end time")
        assert "\n" not in str(err.value)
    finally:
        await backend.close()
        emu.stop()


async def test_health_history_lists_the_statuses_before_the_current_one(backend, emulator):
    history = await backend.health_history(SPOT)
    assert [h.title for h in history] == ["Evicted", "Available", "Stopped and deallocated"]
    assert history[0].context == "Platform Initiated"


async def _timeline(backend, name: str, days: int = 30):
    inv = await backend.inventory(instance_views=0)
    return await build_timeline(backend, find_vm(inv, name), since=FIXED_NOW - timedelta(days=days))


async def test_dev_spot_01_was_deallocated_by_the_platform_not_by_its_owner(backend, emulator):
    tl = await _timeline(backend, "dev-spot-01")
    assert tl.errors == ()
    assert tl.who_stopped is not None and tl.who_stopped.actor == "Azure platform"
    assert "Spot eviction" in tl.who_stopped.sentence
    assert tl.who_stopped.at == FIXED_NOW - timedelta(hours=14)
    top = tl.entries[0]
    assert (top.source, top.actor, top.status) == (HEALTH, "Azure platform", "Unavailable")
    mine = [(e.actor, e.what, e.status) for e in tl.entries if e.source == ACTIVITY]
    # one line per operation, newest first, with who sent it
    assert mine == [
        ("dana.ng@contoso.com", "Start Virtual Machine: dev-spot-01", "Succeeded"),
        ("dana.ng@contoso.com", "Deallocate Virtual Machine: dev-spot-01", "Succeeded"),
        ("dana.ng@contoso.com", "Create or Update Virtual Machine: dev-spot-01", "Succeeded"),
    ]


async def test_jump_prod_01_shows_the_nsg_rule_write_that_blocks_rdp(backend, emulator):
    tl = await _timeline(backend, "jump-prod-01")
    assert tl.who_stopped is None  # it runs
    top = tl.entries[0]
    assert top.source == ACTIVITY
    assert top.actor == "sec.oncall@contoso.com"
    assert top.what == "Create or Update Security Rule: nsg-jump-prod/Deny-RDP-Incident-4711"
    assert top.status == "Succeeded"
    assert top.time == FIXED_NOW - timedelta(hours=2, minutes=40)
    assert "from 198.51.100.77" in top.detail


async def test_a_guest_shutdown_and_a_user_deallocation_are_told_apart(backend, emulator):
    qa = await _timeline(backend, "qa-win-01")
    assert qa.who_stopped is not None and qa.who_stopped.actor == "guest OS"
    assert "no stop operation was sent to Azure" in qa.who_stopped.sentence
    legacy = await _timeline(backend, "legacy-app-02")
    assert legacy.who_stopped is not None and legacy.who_stopped.actor == "j.smith@contoso.com"
    assert legacy.who_stopped.at == FIXED_NOW - timedelta(days=5)


async def test_a_source_that_fails_is_named_and_the_others_still_shown(backend, fresh_emulator):
    emulator_control(fresh_emulator, "POST", "/_emulator/faults", {"match": "eventtypes/management/values", "status": 403, "count": 10})
    tl = await _timeline(backend, "dev-spot-01")
    assert [s for s, _ in tl.errors] == [ACTIVITY]
    assert "\n" not in tl.errors[0][1]
    assert {e.source for e in tl.entries} == {HEALTH}


def test_since_accepts_minutes_hours_days_up_to_ninety_days():
    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since("90d") == timedelta(days=90)
    for bad in ("", "24", "h", "-3d", "91d", "2w"):
        with pytest.raises(ValueError):
            parse_since(bad)
    assert AZTRIAGE == "aztriage"


# --- the CLI: `aztriage timeline` and the incident report --------------------------------


def aztriage(*args: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ.copy()
    env["COLUMNS"] = "120"
    entry = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", entry, *args], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=180, env=env)


def test_cli_table_answers_who_stopped_dev_spot_01_above_its_history():
    stdout = succeeded(aztriage("timeline", "--demo", "--vm", "dev-spot-01", "--since", "30d"))
    lines = stdout.splitlines()
    assert lines[0].startswith("Timeline of dev-spot-01: ")
    assert lines[1].startswith("Who stopped it: the platform at ") and "Spot eviction" in lines[1]
    header = next(i for i, line in enumerate(lines) if line.startswith("TIME (UTC)"))
    assert lines[header].split() == ["TIME", "(UTC)", "SOURCE", "WHO", "WHAT", "STATUS"]
    rows = lines[header + 1 :]
    assert "Azure platform" in rows[0] and "Evicted" in rows[0]
    assert sum("dana.ng@contoso.com" in r for r in rows) == 3
    assert any("Deallocate Virtual Machine" in r and "Succeeded" in r for r in rows)


def test_cli_json_has_the_documented_shape_and_source_filter():
    stdout = succeeded(aztriage("timeline", "--demo", "--vm", "jump-prod-01", "--since", "30d", "--format", "json", "--source", "activity"))
    import json

    doc = json.loads(stdout)
    assert set(doc) == {"vm", "vm_id", "since", "until", "who_stopped", "entries", "errors"}
    assert doc["vm"] == "jump-prod-01" and doc["who_stopped"] is None and doc["errors"] == []
    assert {e["source"] for e in doc["entries"]} == {"activity"}
    top = doc["entries"][0]
    assert set(top) == {"time", "source", "actor", "what", "status", "detail", "link"}
    assert (top["actor"], top["what"], top["status"]) == (
        "sec.oncall@contoso.com",
        "Create or Update Security Rule: nsg-jump-prod/Deny-RDP-Incident-4711",
        "Succeeded",
    )
    assert top["time"].endswith("Z")


def test_cli_markdown_is_a_table_with_escaped_cells():
    stdout = succeeded(aztriage("timeline", "--demo", "--vm", "qa-win-01", "--since", "30d", "--format", "md"))
    assert stdout.startswith("# Timeline: qa-win-01\n")
    assert "**Who stopped it:** the guest OS shut itself down" in stdout
    assert "| time | source | actor | what | status |" in stdout
    assert "qa.lead@contoso.com" in stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--vm", "dev-spot-01", "--since", "3w"], "--since '3w' is not a duration"),
        (["--vm", "dev-spot-01", "--since", "120d"], "further back than the activity log keeps (90 days)"),
        (["--vm", "no-such-vm"], "no VM named 'no-such-vm'"),
    ],
)
def test_cli_bad_input_is_one_sentence_and_a_non_zero_exit(args, says):
    proc = aztriage("timeline", "--demo", *args)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_incident_report_carries_the_timeline_of_its_window():
    stdout = succeeded(aztriage("report", "--demo", "--vm", "jump-prod-01", "--no-probe"))
    section = stdout.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert "sec.oncall@contoso.com" in section and "Deny-RDP-Incident-4711" in section
    # the window is the last day: last week's restart is not in it
    assert "Restart Virtual Machine" not in section


# --- resource changes (Resource Graph resourcechanges) ------------------------------------


async def test_resourcechanges_rows_carry_the_diff_and_who_made_it(backend, emulator):
    nsg = f"/subscriptions/{PROD}/resourceGroups/rg-jump-prod/providers/Microsoft.Network/networkSecurityGroups/nsg-jump-prod"
    from backend.timeline import changes_query

    result = await backend.graph_query(changes_query([nsg]), subscriptions=[PROD])
    assert len(result.rows) == 1
    props = result.rows[0]["properties"]
    assert props["targetResourceId"] == nsg and props["changeType"] == "Update"
    attrs = props["changeAttributes"]
    assert (attrs["changedBy"], attrs["clientType"], attrs["operation"]) == (
        "sec.oncall@contoso.com",
        "Azure Portal",
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
    )
    assert props["changes"]["properties.securityRules[0].properties.access"] == {
        "previousValue": None,
        "newValue": "Deny",
        "changeCategory": "User",
        "propertyChangeType": "Insert",
    }


async def test_a_change_made_by_a_logged_operation_is_told_on_its_line(backend, emulator):
    jump = await _timeline(backend, "jump-prod-01")
    rule = jump.entries[0]
    assert rule.source == ACTIVITY
    assert "changed securityRules[0].name: (none) → Deny-RDP-Incident-4711" in rule.detail
    assert "securityRules[0].properties.access: (none) → Deny" in rule.detail
    assert not [e for e in jump.entries if e.source == "changes"]  # shown once, on the operation's line
    qa = await _timeline(backend, "qa-win-01")
    resize = [e for e in qa.entries if e.source == ACTIVITY]
    assert len(resize) == 1 and "hardwareProfile.vmSize: Standard_B2s → Standard_B2ms" in resize[0].detail


async def test_resource_graph_failing_is_named_and_the_activity_log_still_shown(backend, fresh_emulator):
    emulator_control(fresh_emulator, "POST", "/_emulator/faults", {"match": "Microsoft.ResourceGraph/resources", "status": 403, "count": 10})
    tl = await _timeline(backend, "jump-prod-01")
    assert [s for s, _ in tl.errors] == ["changes"]
    assert tl.entries[0].actor == "sec.oncall@contoso.com" and "changed" not in tl.entries[0].detail


# --- aztriage's own: the journal's runs and what the console saw ---------------------------


async def test_recovery_runs_and_console_events_are_on_the_vms_timeline(backend, emulator, tmp_path):
    from backend.recovery.journal import Journal
    from backend.timeline import ConsoleEvent, ConsoleEvents, journal_for

    inv = await backend.inventory(instance_views=0)
    vm = find_vm(inv, "dev-spot-01")
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        run_id = record_run(journal, vm.id, vm.name, "start", [("check", "Check the VM", "check"), ("start", "Start the VM", "change")])
        journal.set_step(run_id, 0, "verified", started=True)
        journal.set_step(run_id, 1, "failed", started=True, message="AllocationFailed: no Spot capacity")
        journal.set_run_status(run_id, "failed", "the start failed")
        record_run(journal, SPOT.replace("dev-spot-01", "dev-sandbox-01"), "dev-sandbox-01", "restart", [("restart", "Restart", "change")])
        session = journal.open_console_session(vm.id, vm.name, read_only=False)
        journal.console_admin(session, "sysrq", "b")
        journal.close_console_session(session, "closed by the operator")
    facts = journal_for(vm.id, path)
    assert facts.error is None and [r.run_id for r in facts.runs] == [run_id]  # only this VM's run
    seen = ConsoleEvents()
    now = datetime.now(UTC)
    seen.add(ConsoleEvent(now, vm.id, "probe of port 22: \x1b[2Jnot answering", "vm-stopped"))
    seen.verdict(vm.id, "stopped", "the VM is deallocated", now)
    seen.verdict(vm.id, "stopped", "the VM is deallocated", now)  # the same verdict again is not a change
    tl = await build_timeline(backend, vm, since=FIXED_NOW - timedelta(days=30), journal=facts, console=seen.of(vm.id))
    mine = [e for e in tl.only([AZTRIAGE]).entries]
    whats = [e.what for e in mine]
    assert "recovery run start started" in whats and "recovery run start ended" in whats
    step = next(e for e in mine if e.what == "step 2: Start the VM")
    assert (step.status, step.detail, step.link) == ("failed", "AllocationFailed: no Spot capacity", f"{run_id}#2")
    assert "probe of port 22: ␛[2Jnot answering" in whats  # made safe where it was recorded
    assert sum(w.startswith("verdict stopped") for w in whats) == 1
    # the serial console session: opened, the SysRq sent, closed (never what was typed)
    assert {
        "serial console session opened (interactive)",
        "serial console admin command: sysrq b",
        "serial console session closed: closed by the operator",
    } <= set(whats)
    assert {e.source for e in tl.only([AZTRIAGE]).entries} == {AZTRIAGE}


async def test_a_write_through_aztriage_becomes_a_change_with_who_and_the_diff(backend, fresh_emulator):
    """The emulator turns live writes into resourcechanges rows (changedBy, clientType, operation,
    the property diff, the activity log's correlation id): the operator's own rule is on the timeline."""
    from backend.timeline import changes_query

    inv = await backend.inventory(instance_views=0)
    vm = find_vm(inv, "jump-prod-01")
    nsg = vm.nics[0].nsg_id
    rule = inbound_rule(150, "3389", "Allow", sourceAddressPrefix="203.0.113.7/32")
    await backend.put_security_rule(f"{nsg}/securityRules/Allow-RDP-Operator", rule)
    rows = (await backend.graph_query(changes_query([nsg]), subscriptions=[PROD])).rows
    (live,) = [r["properties"] for r in rows if r["properties"]["changeAttributes"]["changedBy"] == "demo operator"]
    attrs = live["changeAttributes"]
    assert (live["changeType"], attrs["clientType"], attrs["operation"]) == (
        "Update",
        "aztriage/0.1",
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
    )
    added = {k.split("]", 1)[1]: v["newValue"] for k, v in live["changes"].items() if v["propertyChangeType"] == "Insert"}
    assert added[".name"] == "Allow-RDP-Operator" and added[".properties.access"] == "Allow" and added[".properties.priority"] == 150
    assert not any(k.endswith((".id", ".etag", "provisioningState")) for k in live["changes"])  # identity and churn are not changes
    emulator_now = datetime.fromtimestamp(fresh_emulator.store.now(), UTC)  # its clock runs ahead once other tests advanced it
    tl = await build_timeline(backend, vm, since=FIXED_NOW - timedelta(days=30), until=emulator_now)
    top = tl.entries[0]  # the write, told once: the activity log's line carries the diff
    assert (top.source, top.actor, top.status) == (ACTIVITY, "demo operator", "Succeeded")
    assert top.what == "Create or Update Security Rule: nsg-jump-prod/Allow-RDP-Operator"
    assert "(none) → Allow-RDP-Operator" in top.detail and "(none) → Allow" in top.detail
    assert not [e for e in tl.entries if e.source == "changes"]


async def test_a_long_running_write_becomes_a_change_when_it_ends_and_a_no_op_leaves_none(backend, fresh_emulator):
    from backend.timeline import changes_query

    inv = await backend.inventory(instance_views=0)
    vm = find_vm(inv, "dev-ephemeral-01")
    doc = await backend.get_vm_document(vm.id)
    tags = dict(doc.get("tags") or {})
    status, _ = arm_call(fresh_emulator, "PATCH", f"{vm.id}?api-version=2024-07-01", {"tags": {**tags, "incident": "INC-4711"}})
    assert status in (200, 202)
    emulator_control(fresh_emulator, "POST", "/_emulator/advance", {"seconds": 600})
    arm_call(fresh_emulator, "PATCH", f"{vm.id}?api-version=2024-07-01", {"tags": {**tags, "incident": "INC-4711"}})  # the same again: no change
    emulator_control(fresh_emulator, "POST", "/_emulator/advance", {"seconds": 600})
    rows = (await backend.graph_query(changes_query([vm.id]), subscriptions=[DEV])).rows
    live = [r["properties"] for r in rows if r["properties"]["changeAttributes"]["changedBy"] == "demo operator"]
    assert len(live) == 1
    assert live[0]["changes"] == {"tags.incident": {"previousValue": None, "newValue": "INC-4711", "changeCategory": "User", "propertyChangeType": "Insert"}}
