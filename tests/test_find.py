"""`aztriage find`: a VM anywhere in the tenant by name, IP or id, from Resource Graph
(the real adapter and CLI against the emulator over HTTPS)."""

from __future__ import annotations

import json

import pytest

from backend.search import SearchError, classify, find_vms, kql_string
from tests.support import demo_settings, succeeded
from tests.test_cli import aztriage

pytestmark = pytest.mark.xdist_group("graph")


@pytest.fixture
async def backend(graph_emulator):
    from backend.azure.backend import AzureBackend

    b = AzureBackend(demo_settings(graph_emulator))
    yield b
    await b.close()


async def test_a_vm_is_found_by_name_id_private_and_public_ip(backend):
    inv = await backend.inventory(instance_views=0)
    vm = next(v for v in inv.vms if v.public_ips and v.private_ips)
    before = backend.requests
    by_name = await find_vms(backend, vm.name.upper())
    assert backend.requests - before == 1  # one Resource Graph query, no inventory
    assert [(f.id, f.matched, f.power_state) for f in by_name.vms] == [(vm.id, "name", vm.power_state)]
    assert [f.id for f in (await find_vms(backend, vm.id)).vms] == [vm.id]
    private = await find_vms(backend, vm.private_ips[0])
    assert vm.id in [f.id for f in private.vms]
    assert {f.matched for f in private.vms} == {"private IP"}
    public = await find_vms(backend, vm.public_ips[0])
    assert [(f.id, f.matched) for f in public.vms] == [(vm.id, "public IP")]
    assert not (await find_vms(backend, "no-such-vm")).vms


def test_the_text_is_checked_and_quoted_for_kql():
    assert classify(" 10.0.0.4 ") == ("ip", "10.0.0.4")
    assert classify("web-prod-01") == ("name", "web-prod-01")
    for bad in ("x' or 1==1 or name =~ '", "a|b", "/subscriptions/x/evil"):
        with pytest.raises(SearchError):
            classify(bad)
    assert kql_string("it's\\") == "'it\\'s\\\\'"


def test_the_cli_finds_a_vm_and_says_when_none_matches(graph_emulator):
    attach = ("--demo", "--arm-endpoint", graph_emulator.endpoint, "--ca-file", graph_emulator.ca_file)
    doc = json.loads(succeeded(aztriage("find", *attach, "web-prod-01", "--format", "json")))
    assert [v["name"] for v in doc["vms"]] == ["web-prod-01"]
    assert doc["truncated"] is False
    missing = aztriage("find", *attach, "no-such-vm")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == ["aztriage: no VM matches no-such-vm in the subscriptions Resource Graph searched"]
    bad = aztriage("find", *attach, "a'b")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


async def test_what_is_broken_across_the_tenant_matches_the_health_view(backend):
    from backend.health import health_view
    from backend.search import broken

    inv = await backend.inventory(instance_views=None)  # every instance view: pending maintenance is in them
    view = health_view(inv)
    before = backend.requests
    found = await broken(backend)
    assert backend.requests - before <= 4  # four queries, one page each, no inventory
    # Listed: not Available for a reason the owner did not choose; counted: stopped, deallocated or starting by choice.
    chosen = [s for s in view.statuses if s.reason_type == "user-initiated"]
    assert chosen and found.stopped_by_owner == len(chosen)
    assert sorted(b.vm.id.lower() for b in found.vms) == sorted(s.vm.id.lower() for s in view.statuses if s not in chosen)
    by_id = {s.vm.id.lower(): s for s in view.statuses}
    for b in found.vms:
        status = by_id[b.vm.id.lower()]
        assert (b.vm.id, b.vm.name, b.vm.power_state) == (status.vm.id, status.vm.name, status.vm.power_state)
        assert b.health.availability_state == status.availability_state
    active = {(e.subscription_id, e.id) for e in inv.events if e.status.lower() == "active"}
    assert {(e.subscription_id, e.id) for e in found.events} == active
    assert all(e.title for e in found.events)
    # Pending platform maintenance from maintenanceresources is what the VMs' instance views say.
    assert view.maintenance
    assert sorted(m.vm_id.lower() for m in found.maintenance) == sorted(m.vm.id.lower() for m in view.maintenance)
    for m in found.maintenance:
        row = next(r for r in view.maintenance if r.vm.id.lower() == m.vm_id.lower())
        assert m.status in ("Pending", "InProgress") and m.scope == "Host"
        assert m.not_before == row.vm.maintenance.maintenance_window_start
    assert found.warnings == ()


def test_the_cli_lists_what_is_broken(graph_emulator):
    attach = ("--demo", "--arm-endpoint", graph_emulator.endpoint, "--ca-file", graph_emulator.ca_file)
    stdout = succeeded(aztriage("broken", *attach, "--format", "json"))
    doc = json.loads(stdout)
    assert doc["vms"] and doc["events"]
    assert doc["stats"]["queries"] == 4
    assert doc["maintenance"] and all(m["vm"] and m["status"] for m in doc["maintenance"])
    assert doc["stopped_by_owner"] > 0
    table = aztriage("broken", *attach)
    assert table.returncode == 0, table.stderr
    assert "VMs not Available:" in table.stdout and "Active service events:" in table.stdout
    assert "Pending platform maintenance:" in table.stdout and "NOT BEFORE" in table.stdout


async def test_a_found_vm_is_read_whole_from_resource_graph(backend):
    """What the console adds when it opens a VM it had not loaded: the same VM, NSGs and
    public IP as the full inventory, from a few queries."""
    inv = await backend.inventory(instance_views=0)
    vm = next(v for v in inv.vms if v.public_ips and any(n.nsg_id or n.subnet_nsg_id for n in v.nics))
    before = backend.requests
    part = await backend.graph_vms([vm.id])
    assert backend.requests - before <= 6  # three or four queries and the subscriptions' list
    assert [v.id for v in part.vms] == [vm.id]
    assert part.vms[0] == vm  # field by field, as the full inventory joined it
    nsg_ids = [i for n in vm.nics for i in (n.nsg_id, n.subnet_nsg_id) if i]
    assert nsg_ids and all(part.nsg(i) == inv.nsg(i) is not None for i in nsg_ids)
    assert [s.display_name for s in part.subscriptions] == [s.display_name for s in inv.subscriptions if s.subscription_id == vm.subscription_id]
    assert part.engine == "arg"
