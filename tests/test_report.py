"""Incident reports: the Markdown a ticket gets (a golden file), the JSON a
script reads, secrets kept out, and `aztriage report` as an operator runs it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend import report as rpt
from backend.checks import CheckContext, ComputeUsage, run_checks
from backend.models import EventUpdate, HealthStatus, ImpactedRegion, ImpactedService, NetworkInterface, PublicIp, RecommendedAction
from tests.support import assert_one_clear_line, record_run, service_event, succeeded
from tests.test_checks import SUB, disk, good_vm, inventory
from tests.test_cli import aztriage

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def t(hours: float) -> datetime:
    from datetime import timedelta

    return NOW + timedelta(hours=hours)


def incident_inventory():
    nic = NetworkInterface(
        id=f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Network/networkInterfaces/app-01-nic",
        name="app-01-nic",
        delete_option="Detach",
        nsg_id=f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Network/networkSecurityGroups/nsg-app",
        private_ips=("10.1.0.4",),
        public_ips=(PublicIp(id="/pip/app-01-ip", name="app-01-ip", ip_address="127.10.9.4", fqdn="app-01.westeurope.cloudapp.azure.test"),),
    )
    health = HealthStatus(
        availability_state="Unavailable",
        title="Unavailable",
        summary="We're sorry, your virtual machine isn't available because of connectivity loss to the remote disk.",
        reason_type="Unplanned",
        since=t(-0.75),
        reported_time=t(-0.1),
        recommended_actions=(RecommendedAction("Check back here for status updates"),),
        recently_resolved_summary="The host was rebooted by service healing.",
        recently_resolved_at=t(-30),
    )
    vm = good_vm(
        "app-01",
        zones=(),
        size="Standard_D2s_v3",
        os_type="Windows",
        os_disk=disk("app-01-os", "StandardSSD_LRS", delete="Delete"),
        data_disks=(disk("app-01-data", "Premium_LRS", lun=0),),
        nics=(nic,),
        health=health,
        image="MicrosoftWindowsServer:WindowsServer:2022-datacenter:latest",
        admin_username="azureadmin",
    )
    here = service_event(
        "7T2K-LQ8",
        "Virtual Machines - West Europe - Connectivity failures",
        sub=SUB,
        level="Error",
        impact_start=t(-1),
        last_update=t(-0.2),
        impact=(
            ImpactedService(
                "Virtual Machines", (ImpactedRegion("West Europe", "Active", (EventUpdate("Engineers are mitigating a storage power event.", t(-0.2)),)),)
            ),
        ),
    )
    elsewhere = service_event(
        "2M9D-TH0", "Virtual Machines - East US - Allocation failures", sub=SUB, impact=(ImpactedService("Virtual Machines", (ImpactedRegion("East US"),)),)
    )
    return inventory(vm, events=(here, elsewhere)), vm


def probe_section(vm):
    from backend.connectivity import Report
    from backend.diagnose import Diagnosis
    from backend.probe import ProbeResult, ProbeTarget

    target = ProbeTarget(host="127.10.9.4", port=3389, protocol="rdp", vm=vm.name, vm_id=vm.id, kind="public-ip")
    result = ProbeResult(target, "timeout", detail="no answer within 2 s (2 attempts)", attempts=2)
    diagnosis = Diagnosis(
        vm.name,
        vm.id,
        3389,
        "platform-unhealthy",
        "Azure reports the VM Unavailable (Unplanned)",
        (
            "Resource Health: Unavailable",
            "127.10.9.4:3389: timeout (no answer within 2 s (2 attempts))",
            "recommended: redeploy the VM to a new host (scenario redeploy)",
        ),
        "redeploy",
    )
    return rpt.connectivity_from(Report(results=[result], diagnoses=[diagnosis], notes=["probed from this machine"]))


def recovery_runs(vm):
    from backend.recovery.journal import ResourceRecord, RunRecord, StepRecord

    steps = [
        StepRecord("r1", 0, "snapshot", "Snapshot the OS disk", "change", "verified", "2026-11-30T02:20:00+00:00", "2026-11-30T02:21:30+00:00"),
        StepRecord(
            "r1",
            1,
            "redeploy",
            "Redeploy to a new host",
            "change",
            "failed",
            "2026-11-30T02:21:30+00:00",
            "2026-11-30T02:30:00+00:00",
            message="OperationNotAllowed: the SAS https://x.blob.core.windows.net/c/d.vhd?sv=2024&sig=SECRETSIG was rejected",
        ),
    ]
    resource = ResourceRecord(
        "r1",
        f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/snapshots/app-01-os-snap",
        "snapshot",
        "snapshot",
        "created",
        "before redeploy",
        "2026-11-30T02:21:00+00:00",
    )
    run = RunRecord(
        run_id="r1",
        vm_id=vm.id,
        vm_name=vm.name,
        scenario="redeploy",
        params={"admin_password": "Hunter2-Hunter2", "reason": "INC-4711"},
        needs_secrets=[],
        target="app-01",
        status="failed",
        created_at="2026-11-30T02:19:50+00:00",
        updated_at="2026-11-30T02:30:00+00:00",
        finished_at="2026-11-30T02:30:00+00:00",
        summary="redeploy failed; the snapshot is kept",
        steps=steps,
        resources=[resource],
    )
    return rpt.recovery_from_runs([run])


def incident_report():
    inv, vm = incident_inventory()
    checks = run_checks(inv, CheckContext(usages={(SUB, "westeurope"): (ComputeUsage("cores", "Total Regional vCPUs", 92, 100),)}, backup=None))
    history = [vm.health, HealthStatus("Available", title="Available", since=t(-24 * 9))]
    return rpt.build_report(
        inv,
        vm,
        generated_at=NOW,
        source="DEMO",
        checks=checks,
        history=history,
        connectivity=probe_section(vm),
        recovery=recovery_runs(vm),
        console=console_sessions(vm),
    )


def console_sessions(vm):
    """Two serial console sessions on the VM: one that reset it, one watched read-only and cut off."""
    return rpt.section(
        "done",
        None,
        sessions=[
            {
                "session_id": "c1",
                "vm": vm.name,
                "read_only": False,
                "opened_at": "2026-11-30T02:05:00+00:00",
                "closed_at": "2026-11-30T02:12:30+00:00",
                "duration_s": 450.0,
                "reconnects": 1,
                "admin_commands": [
                    {"command": "sysrq", "key": "s", "at": "2026-11-30T02:10:00+00:00"},
                    {"command": "reset", "at": "2026-11-30T02:11:00+00:00"},
                ],
                "end": "left",
            },
            {
                "session_id": "c2",
                "vm": vm.name,
                "read_only": True,
                "opened_at": "2026-11-30T02:40:00+00:00",
                "closed_at": None,
                "duration_s": None,
                "reconnects": 0,
                "admin_commands": [],
                "end": "",
            },
        ],
    )


def test_markdown_report_matches_the_golden_file():
    text = rpt.render_markdown(incident_report())
    golden = GOLDEN / "report_incident.md"
    if os.environ.get("AZTRIAGE_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "the report changed: review it, then AZTRIAGE_UPDATE_GOLDEN=1 rewrites tests/golden/"


def test_report_sections_say_what_a_ticket_needs():
    report = incident_report()
    text = rpt.render_markdown(report)
    # Health now and recently resolved, the region's event but not another region's.
    assert "**Unavailable** since 2026-11-30T02:15:00Z" in text
    assert "Recently resolved (2026-11-28T21:00:00Z): The host was rebooted by service healing." in text
    assert "7T2K-LQ8" in text and "2M9D-TH0" not in text
    # Probe, diagnosis and recommended scenario; the run with step timings and what it created.
    assert "| public-ip | 127.10.9.4 | 3389 | rdp | timeout |" in text and "### Port 3389: platform-unhealthy" in text
    assert "| 1 | Redeploy to a new host | change | failed | 2026-11-30T02:21:30+00:00 | 2026-11-30T02:30:00+00:00 | 510.0 |" in text
    assert "app-01-os-snap" in text
    # Its open findings, the region's quota among them.
    rules = {f["rule"] for f in report["findings"]["items"]}
    assert {"no-zone-or-set", "disk-delete-option", "single-instance-disks", "vcpu-quota", "temporary-disk"} <= rules


def test_secrets_never_appear():
    report = incident_report()
    blob = json.dumps(report) + rpt.render_markdown(report)
    assert "Hunter2-Hunter2" not in blob and "SECRETSIG" not in blob
    assert "[redacted]" in blob
    assert "azureadmin" not in json.dumps(report["vm"])
    assert rpt.redact({"sshPublicKey": "ssh-rsa AAAA", "nested": [{"clientSecret": "x"}], "note": "Bearer abcdefghijklmnopqrstuvwxyz"}) == {
        "sshPublicKey": "[redacted]",
        "nested": [{"clientSecret": "[redacted]"}],
        "note": "Bearer [redacted]",
    }


def test_json_report_is_one_document_with_every_section():
    doc = json.loads(rpt.render([incident_report()], "json"))
    (one,) = doc["reports"]
    assert set(one) >= {"title", "generated_at", "vm", "health", "service_events", "connectivity", "recovery", "findings"}
    assert one["connectivity"]["status"] == "done" and one["recovery"]["runs"][0]["duration_s"] == 610.0


def test_missing_sections_say_so_instead_of_guessing():
    inv, vm = incident_inventory()
    report = rpt.build_report(inv, vm, generated_at=NOW, source="DEMO")
    text = rpt.render_markdown(report)
    assert "_Not run: no probe was run for this report._" in text
    assert "_Not available: the recovery journal was not read._" in text
    assert "## Serial console sessions\n\n_Not available: the journal was not read._" in text
    assert "_Checklist not run._" in text and "_History not shown: the health history was not read._" in text


def test_recovery_runs_come_from_the_journal(tmp_path):
    from backend.recovery.journal import VERIFIED, Journal

    inv, vm = incident_inventory()
    other = good_vm("other-01")
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        run_id = record_run(journal, vm.id, vm.name, "restart", [("restart", "Restart the VM", "change")])
        journal.set_step(run_id, 0, "running", started=True)
        journal.set_step(run_id, 0, VERIFIED, message="running again")
        journal.set_run_status(run_id, "succeeded", "restarted")
        record_run(journal, other.id, other.name, "start", [])
    section = rpt.recovery_section(vm, path)
    assert section["status"] == "done" and [r["scenario"] for r in section["runs"]] == ["restart"]
    assert section["runs"][0]["steps"][0]["state"] == VERIFIED and section["runs"][0]["steps"][0]["duration_s"] is not None
    assert rpt.recovery_section(vm, tmp_path / "none.sqlite3")["runs"] == []


def test_vm_lookup_by_name_group_and_id():
    a = good_vm("web-01")
    b = good_vm("web-01", id=a.id.replace("rg-app", "rg-other"), resource_group="rg-other")
    inv = inventory(a, b)
    with pytest.raises(rpt.ReportError, match=r"2 VMs are named 'web-01' \(rg-app/web-01, rg-other/web-01\)"):
        rpt.find_vm(inv, "web-01")
    assert rpt.find_vm(inv, "rg-other/web-01") is b
    assert rpt.find_vm(inv, a.id.upper()) is a
    with pytest.raises(rpt.ReportError, match="no VM named 'nope'"):
        rpt.find_vm(inv, "nope")


# --- the command ---------------------------------------------------------------------------


def test_report_command_writes_a_private_file_and_shows_its_path(tmp_path):
    out = tmp_path / "incident.md"
    stdout = succeeded(aztriage("report", "--demo", "--vm", "legacy-ftp-01", "--output", str(out)))
    assert stdout.strip() == f"incident report written to {out}"
    text = out.read_text()
    assert text.startswith("# Incident report: legacy-ftp-01")
    assert "## Connectivity: probes and diagnosis" in text and "| public-ip |" in text
    assert "unmanaged-disks" in text and "shared-storage-account" in text
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_report_command_json_to_stdout_for_two_vms():
    doc = json.loads(succeeded(aztriage("report", "--demo", "--vm", "sql-prod-02", "--vm", "rg-dev-weu/dev-sandbox-01", "--format", "json", "--no-probe")))
    assert [r["vm"]["name"] for r in doc["reports"]] == ["sql-prod-02", "dev-sandbox-01"]
    sql = doc["reports"][0]
    assert sql["health"]["current"]["availability_state"] == "Degraded"
    assert sql["connectivity"]["status"] == "not run"
    assert "set-domains" in {f["rule"] for f in sql["findings"]["items"]}


def test_report_command_bad_input_is_one_clear_line(tmp_path):
    assert_one_clear_line(aztriage("report", "--demo", "--vm", "no-such-vm"), "no VM named 'no-such-vm'")
    missing = tmp_path / "nowhere" / "r.md"
    proc = aztriage("report", "--demo", "--vm", "web-prod-01", "--output", str(missing))
    assert_one_clear_line(proc, "does not exist")
    assert not missing.parent.exists()
    assert_one_clear_line(aztriage("report", "--demo", "--vm", "web-prod-01", "--format", "table"), "--format table is not available here")


def test_the_report_opens_with_the_vms_verdict():
    report = incident_report()
    assert report["verdict"]["id"] == "platform-incident" and report["verdict"]["incident"]["tracking_id"] == "7T2K-LQ8"
    assert report["verdict"]["recommended_scenario"] is None
    text = rpt.render_markdown(report)
    assert text.index("## Verdict") < text.index("## Virtual machine")
    assert "no recovery is recommended while Azure is mitigating" in text


def test_console_sessions_come_from_the_journal_without_what_was_typed(tmp_path):
    from backend.recovery.journal import Journal

    inv, vm = incident_inventory()
    other = good_vm("other-01")
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        first = journal.open_console_session(vm.id, vm.name, read_only=False)
        journal.console_reconnected(first)
        journal.console_admin(first, "nmi")
        journal.close_console_session(first, "left")
        journal.open_console_session(other.id, other.name, read_only=True)
    section = rpt.console_section(vm, path)
    (session,) = section["sessions"]
    assert section["status"] == "done" and session["reconnects"] == 1 and session["end"] == "left" and session["duration_s"] is not None
    assert [a["command"] for a in session["admin_commands"]] == ["nmi"]
    report = rpt.build_report(inv, vm, generated_at=NOW, source="DEMO", console=section)
    text = rpt.render_markdown(report)
    assert "| interactive | 1 | nmi | left |" in text and "What was typed is never recorded" in text
    assert rpt.console_section(vm, tmp_path / "none.sqlite3")["sessions"] == []


def test_the_reports_verdict_carries_the_recent_change_from_its_timeline(tmp_path):
    """jump-prod-01's RDP is blocked: the report's timeline holds the NSG rule added 2 h 40 min
    before, and its verdict takes that change as evidence (who, what, when), in JSON and Markdown."""
    out = tmp_path / "jump.md"
    succeeded(aztriage("report", "--demo", "--vm", "jump-prod-01", "--output", str(out)))
    verdict_part = out.read_text().split("## Virtual machine", 1)[0]
    assert "**blocked-by-nsg**" in verdict_part
    assert "- changed 2h" in verdict_part and "by sec.oncall@contoso.com: Update nsg-jump-prod:" in verdict_part and "Deny-RDP-Incident-4711" in verdict_part
    doc = json.loads(aztriage("report", "--demo", "--vm", "jump-prod-01", "--format", "json").stdout)
    change = doc["reports"][0]["verdict"]["recent_change"]
    assert change["changed_by"] == "sec.oncall@contoso.com" and change["correlation_id"]
