"""One verdict per VM (backend/verdict.py) over the demo estate: each VM's story
gives the verdict, the next step and the recovery an operator expects, from
Azure's view alone and after the real probes of the emulator's guests."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from backend import connectivity
from backend import verdict as V
from backend.azure.backend import AzureBackend
from backend.lastknown import LastKnownStore
from backend.models import Maintenance
from tests.support import FIXED_NOW, demo_settings

pytestmark = pytest.mark.xdist_group("connectivity")

NOW = FIXED_NOW + timedelta(minutes=5)

# Every demo VM after a probe: (verdict id, recommended scenario).
PROBED = {
    "web-prod-01": ("reachable", None),
    "web-prod-02": ("reachable", None),
    "web-prod-03": ("reachable", None),
    "sql-prod-01": ("reachable", None),
    "sql-prod-02": ("platform-unhealthy", "redeploy"),
    "sql-prod-03": ("reachable", None),
    "app-prod-ne-01": ("maintenance-pending", "perform-maintenance"),  # its self-service window is open
    "app-prod-ne-02": ("maintenance-pending", None),  # its self-service window opens tomorrow
    "erp-prod-eus-01": ("platform-incident", None),
    "jump-prod-01": ("blocked-by-nsg", "fix-nsg"),
    "dc-shared-01": ("reachable", None),
    "rdgw-shared-01": ("ip-changed", "upgrade-public-ip"),
    "tools-lnx-shared-01": ("blocked-by-nsg", "fix-nsg"),
    "files-shared-01": ("guest-firewall", "run-fix"),
    "mon-shared-eus-01": ("agent-not-ready", None),
    "legacy-app-01": ("reachable", None),
    "legacy-app-02": ("stopped", "start"),
    "legacy-ftp-01": ("guest-service-down", "reset-access"),
    "build-lnx-01": ("reachable", None),
    "build-win-01": ("reachable", None),
    "payroll-app-01": ("no-public-path", "reset-vpn"),
    "dev-spot-01": ("stopped", "start"),
    "dev-ephemeral-01": ("reachable", None),
    "dev-sandbox-01": ("reachable", None),
    "api-dev-01": ("not-booting", "rescue"),
    "pg-dev-01": ("not-booting", "rescue"),
    "vmss-build-dev_3f9a1c2e": ("reachable", None),
    "win11-tl-dev-01": ("starting", None),
    "qa-win-01": ("stopped", "start"),
    "iis-test-01": ("not-booting", "rescue"),
}

# Before anything is probed: what Azure's view alone tells.
AZURE_ONLY = {name: ("unknown", None) for name in PROBED} | {
    "sql-prod-02": ("platform-unhealthy", "redeploy"),
    "app-prod-ne-01": ("maintenance-pending", "perform-maintenance"),
    "app-prod-ne-02": ("maintenance-pending", None),
    "erp-prod-eus-01": ("platform-incident", None),
    "mon-shared-eus-01": ("agent-not-ready", None),
    "legacy-app-02": ("stopped", "start"),
    "dev-spot-01": ("stopped", "start"),
    "win11-tl-dev-01": ("starting", None),
    "qa-win-01": ("stopped", "start"),
}


@pytest.fixture(scope="module")
async def probed(emulator, tmp_path_factory):
    backend = AzureBackend(demo_settings(emulator), retry_total=2)
    try:
        inventory = await backend.inventory()
        env = await connectivity.environment(backend.settings, inventory)
        store = LastKnownStore(tmp_path_factory.mktemp("lastknown") / "lastknown.json", scope="demo")
        connectivity.seed_demo_history(store, env, inventory)
        report = await connectivity.run(backend, inventory, list(inventory.vms), connectivity.Request(timeout=0.3, attempts=1), env=env, store=store)
    finally:
        await backend.close()
    book = V.VerdictBook()
    book.record_report(report, inventory.vms, NOW)
    return inventory, report, book


def by_name(inventory, book):
    return {vm.name: book.verdict(vm, inventory, NOW) for vm in inventory.vms}


async def test_every_demo_vm_gets_its_story_after_a_probe(probed):
    inventory, _report, book = probed
    got = by_name(inventory, book)
    assert {n: (v.id, v.scenario) for n, v in got.items()} == PROBED
    for name, v in got.items():
        assert v.summary and v.evidence and v.next_step, name
        assert v.id in V.VERDICT_IDS


async def test_the_evidence_keeps_the_most_telling_result_of_each_probed_port(probed):
    # What the Connectivity pane shows beside each diagnosis: the endpoint that answered, or
    # the most telling failure, one per port, from the same run.
    from backend.probe import OPEN, most_telling, port_of

    inventory, report, book = probed
    for vm in inventory.vms:
        evidence = book.evidence[vm.id.lower()]
        mine = [r for r in report.results if r.target.vm_id.lower() == vm.id.lower()]
        assert len(evidence.results) == len({port_of(r) for r in mine}), vm.name
        for d in evidence.diagnoses:
            here = [r for r in mine if port_of(r) == d.port]
            assert evidence.result_for(d.port) is most_telling(here)
    web = book.evidence[next(vm.id for vm in inventory.vms if vm.name == "web-prod-01").lower()]
    assert web.result_for(22).status == OPEN and web.result_for(22).target.kind == "public-ip"  # public before private


async def test_azure_view_alone_before_any_probe(probed):
    inventory, _report, _book = probed
    got = by_name(inventory, V.VerdictBook())
    assert {n: (v.id, v.scenario) for n, v in got.items()} == AZURE_ONLY
    assert "not checked yet" in got["web-prod-01"].summary
    assert not any(v.probed for v in got.values())


async def test_the_verdicts_carry_what_the_operator_acts_on(probed):
    inventory, _report, book = probed
    got = by_name(inventory, book)
    # Item 1: the NSG rule, its priority and which NSG, with fix-nsg as the next step.
    jump = got["jump-prod-01"]
    assert "Deny-RDP-Incident-4711 at priority 200 (NIC NSG nsg-jump-prod)" in jump.summary
    assert "fix-nsg" in jump.next_step
    assert "Deny-SSH-Inbound at priority 110 (subnet NSG nsg-snet-tools-shared)" in got["tools-lnx-shared-01"].summary
    # Item 2: the incident with tracking id, status, ETA and impact start; no recovery while Azure mitigates.
    erp = got["erp-prod-eus-01"]
    assert erp.incident is not None and erp.incident.tracking_id == "7T2K-LQ8" and erp.incident.status == "Active"
    assert erp.incident.eta is not None and erp.incident.impact_start is not None
    assert erp.scenario is None and "no recovery is recommended" in erp.next_step
    assert any("Power has been restored" in line for line in erp.evidence)
    assert erp.since == erp.incident.impact_start
    # Item 3: one maintenance window is open (start it now), the other not yet (the verdict says when it opens).
    assert "open until" in got["app-prod-ne-01"].summary
    app = got["app-prod-ne-02"]
    assert "opens at" in app.summary and "in 23h" in app.summary
    # Item 5: SSH answers on mon-shared-eus-01, so the first step is to sign in and restart the agent.
    mon = got["mon-shared-eus-01"]
    assert "SSH answers" in mon.summary or any("SSH answers" in line for line in mon.evidence)
    assert "Sign in over SSH" in mon.next_step and "walinuxagent" in mon.next_step and "ssh " in mon.next_step
    # The boot log names why the OS did not boot.
    assert "emergency mode (fstab)" in got["api-dev-01"].summary
    assert "Windows stop code" in got["iis-test-01"].summary
    # Service healing six hours ago is marked, the VM stays reachable.
    assert got["web-prod-02"].healed_at is not None and got["web-prod-01"].healed_at is None
    assert any("service healing" in line for line in got["web-prod-02"].evidence)


async def test_evidence_from_another_power_state_is_not_used(probed):
    inventory, _report, book = probed
    files = inventory.vm_by_name("files-shared-01")[0]
    assert book.verdict(files, inventory, NOW).id == "guest-firewall"
    stopped = dataclasses.replace(files, power_state="deallocated")
    assert book.verdict(stopped, inventory, NOW).id == "stopped"
    # After a recovery the session forgets what it probed: Azure's view until the next probe.
    local = V.VerdictBook(evidence=dict(book.evidence))
    local.forget(files.id)
    assert local.verdict(files, inventory, NOW).id == "unknown"


async def test_impacted_resources_decide_who_is_in_an_incident(probed):
    inventory, _report, _book = probed
    erp = inventory.vm_by_name("erp-prod-eus-01")[0]
    # The event lists other resources only: this VM's trouble is not that incident.
    other = {"7t2k-lq8": ["/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/other"]}
    v = V.decide(erp, events=inventory.events, impacted=other, now=NOW)
    assert v.id == "platform-unhealthy" and v.scenario == "redeploy"
    listed = {"7t2k-lq8": [erp.id.upper()]}
    v = V.decide(erp, events=inventory.events, impacted=listed, now=NOW)
    assert v.id == "platform-incident" and v.incident.listed and "lists this VM" in v.incident.describe()
    v = V.decide(erp, events=inventory.events, now=NOW)
    assert v.incident is not None and not v.incident.listed and "covers its region" in v.incident.describe()


async def test_maintenance_inside_its_window_recommends_perform_maintenance(probed):
    inventory, _report, _book = probed
    app = inventory.vm_by_name("app-prod-ne-02")[0]
    # Azure reports the flag false before the window (the emulator's estate clock is at NOW).
    assert not app.maintenance.self_service_allowed
    inside = NOW + timedelta(days=2)
    app = dataclasses.replace(app, maintenance=dataclasses.replace(app.maintenance, self_service_allowed=True))
    v = V.decide(app, events=inventory.events, now=inside)
    assert (v.id, v.scenario) == ("maintenance-pending", "perform-maintenance")
    assert "open until" in v.summary
    closed = dataclasses.replace(app, maintenance=dataclasses.replace(app.maintenance, self_service_allowed=False))
    v = V.decide(closed, events=inventory.events, now=inside)
    assert v.scenario is None and "isCustomerInitiatedMaintenanceAllowed is false" in v.summary
    done = dataclasses.replace(app, maintenance=Maintenance(last_result="MaintenanceCompleted", window_start=app.maintenance.window_start))
    assert V.decide(done, events=inventory.events, now=inside).id == "unknown"


def test_every_verdict_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for kind in V.KINDS:
        assert f"`{kind.id}`" in readme, kind.id
    assert set(V.SCENARIO) == set(V.VERDICT_IDS)
    assert sorted(k.rank for k in V.KINDS) == list(range(len(V.KINDS)))


async def test_a_recent_change_is_evidence_in_a_verdict_that_is_not_reachable(probed, emulator):
    """Health-first: jump-prod-01's RDP is blocked, and the NSG rule sec.oncall added 2 h 40 min ago
    (Resource Graph resourcechanges) is in its verdict: who, what, when. A reachable VM's changes
    are not held against it, and a change older than a day is history, not evidence."""
    from backend.timeline import recent_changes

    inventory, _report, probed_book = probed
    book = V.VerdictBook(evidence=dict(probed_book.evidence))
    vms = [inventory.vm_by_name(n)[0] for n in ("jump-prod-01", "web-prod-01", "qa-win-01")]
    backend = AzureBackend(demo_settings(emulator), retry_total=2)
    try:
        found = await recent_changes(backend, vms, NOW)
    finally:
        await backend.close()
    assert set(found) == {vm.id.lower() for vm in vms}
    assert found[vms[2].id.lower()] is None  # qa-win-01's resize was 12 days ago
    book.record_changes(found)
    jump = book.verdict(vms[0], inventory, NOW)
    assert jump.id == "blocked-by-nsg" and jump.change is not None
    line = jump.evidence[-1]
    assert line.startswith("changed 2h 44m ago (2026-11-30 00:20 UTC) by sec.oncall@contoso.com: Update nsg-jump-prod: ")
    assert "Deny-RDP-Incident-4711" in line and "via Azure Portal" in line
    doc = jump.to_json()["recent_change"]
    assert doc["changed_by"] == "sec.oncall@contoso.com" and doc["time"].startswith("2026-11-30T00:20")
    # The same change on a VM that answers says nothing; a day later it is no longer evidence.
    web = dataclasses.replace(vms[1])
    book.record_changes({web.id: jump.change})
    assert book.verdict(web, inventory, NOW).change is None and not any(x.startswith("changed ") for x in book.verdict(web, inventory, NOW).evidence)
    later = book.verdict(vms[0], inventory, NOW + timedelta(days=1))
    assert later.change is None and not later.evidence[-1].startswith("changed ")


async def test_a_part_of_the_first_load_reuses_the_verdicts_until_an_event_comes_in(probed):
    """Each part of the first load is a new inventory of the same VMs: their verdicts are not
    made again for it, unless what they depend on (the events) changed."""
    inventory, _report, book = probed
    first = by_name(inventory, book)
    part = dataclasses.replace(inventory, events=tuple(inventory.events))  # a new inventory, the same VMs and events
    again = by_name(part, book)
    assert all(again[name] is first[name] for name in first)
    # A new active service issue where one already is: the verdicts are made again, as a book
    # that had made none would make them.
    issue = next(e for e in inventory.events if e.type == "ServiceIssue" and e.status == "Active")
    with_new = dataclasses.replace(inventory, events=(*inventory.events, dataclasses.replace(issue, id="NEW-ISSUE-1", title="a new outage")))
    later = by_name(with_new, book)
    assert all(later[name] is not first[name] for name in first)
    assert later == by_name(with_new, V.VerdictBook(evidence=dict(book.evidence)))
