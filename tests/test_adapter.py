"""The real adapter end to end against the emulator over HTTPS."""

from __future__ import annotations

import time

import pytest

from backend.azure.backend import AzureBackend
from tests.support import demo_settings, emulator_control, start_emulator

pytestmark = pytest.mark.xdist_group("adapter")


async def test_demo_inventory_joins_every_subscription(backend, emulator):
    inv = await backend.inventory()
    assert inv.errors == ()
    assert len(inv.subscriptions) == 3
    assert 20 <= len(inv.vms) <= 40
    # Every VM is joined with its disks, NICs and health.
    for vm in inv.vms:
        assert vm.size and vm.location and vm.os_type in ("Linux", "Windows")
        assert vm.os_disk.name
        assert vm.power_state != "unknown", vm.name
    assert {v.os_type for v in inv.vms} == {"Linux", "Windows"}
    assert {"running", "stopped", "deallocated"} <= {v.power_state for v in inv.vms}
    assert {"Available", "Unavailable"} <= {v.availability_state for v in inv.vms}
    assert any(not d.managed and d.vhd_uri for v in inv.vms for d in v.disks)
    assert any(d.delete_option == "Delete" for v in inv.vms for d in v.disks)
    assert any(v.maintenance.pending for v in inv.vms)
    assert any(v.agent_status != "Ready" for v in inv.vms)
    assert all(ip.startswith("127.") for v in inv.vms for ip in v.public_ips)
    assert inv.events, "service health events are part of the inventory"


async def test_inventory_costs_a_fixed_number_of_requests_per_subscription(backend, emulator):
    before = emulator_control(emulator, "GET", "/_emulator/stats")["requests"]
    inv = await backend.inventory(instance_views=0)
    after = emulator_control(emulator, "GET", "/_emulator/stats")["requests"]
    # 1 subscription list + 11 lists per subscription (one page each at the demo's size),
    # plus one impactedResources read per active service issue and subscription that reports it.
    issues = {(e.subscription_id, e.id) for e in inv.events if e.status.lower() == "active" and e.type.lower() == "serviceissue"}
    assert issues, "the demo has an active service issue"
    assert after - before == inv.requests == 1 + 11 * len(inv.subscriptions) + len(issues)
    # Without instance views the agent and maintenance are not known...
    assert {v.agent_status for v in inv.vms} == {"Unknown"}
    assert not any(v.maintenance.pending for v in inv.vms)


async def test_every_request_carries_a_client_request_id_of_its_own(backend, fresh_emulator):
    """The id Azure support traces a request by (x-ms-client-request-id): on every request,
    one per request, random (UUID version 4), not a version 1 UUID, which carries this
    machine's network address and the time."""
    import uuid

    emulator_control(fresh_emulator, "POST", "/_emulator/reset")  # an empty request log of this test's own
    inv = await backend.inventory()
    log = emulator_control(fresh_emulator, "GET", "/_emulator/requests")
    assert len(log) == inv.requests > 40
    ids = [uuid.UUID(entry["client_request_id"]) for entry in log]
    assert {i.version for i in ids} == {4}
    assert len(set(ids)) == len(ids)


async def test_instance_views_are_read_for_vms_on_a_host_only(backend, emulator):
    lists = await backend.inventory(instance_views=0)
    on_host = [v for v in lists.vms if v.power_state != "deallocated"]
    inv = await backend.inventory()
    assert inv.requests == lists.requests + len(on_host)
    agents = {v.name: v.agent_status for v in inv.vms}
    assert agents["mon-shared-eus-01"] == "Not Ready"
    assert agents["web-prod-01"] == "Ready"
    pending = sorted(v.name for v in inv.vms if v.maintenance.pending)
    assert pending == ["app-prod-ne-01", "app-prod-ne-02"]
    sql = [v for v in inv.vms if v.name.startswith("sql-prod-")]
    assert {v.platform_fault_domain for v in sql} == {0}
    limited = await backend.inventory(instance_views=3)
    assert limited.requests == lists.requests + 3


async def test_scale_inventory_pages_and_stays_o_subscriptions():
    emu = start_emulator("scale:2000", subscriptions=4, page_size=150)
    try:
        backend = AzureBackend(demo_settings(emu))
        try:
            inv = await backend.inventory(instance_views=0)
        finally:
            await backend.close()
        assert len(inv.vms) == 2000
        assert len({v.id for v in inv.vms}) == 2000
        assert inv.errors == ()
        # Each page is reduced as it arrives: VMs on any page still find their NICs, disks and
        # health on any page of the other lists.
        assert all(v.nics and v.nics[0].private_ips for v in inv.vms)
        assert all(d.sku and d.size_gb for v in inv.vms for d in v.disks if d.managed)
        assert all(v.health is not None for v in inv.vms)
        stats = emulator_control(emu, "GET", "/_emulator/stats")
        # Paging really happened (500 VMs per subscription at 150 a page)...
        assert stats["requests"] > 1 + 11 * 4
        # ...and the cost is lists, never a request per VM.
        assert stats["requests"] < 200
        assert stats["writes"] == 0
    finally:
        emu.stop()


# The lists a VM is joined with, or the VM list itself (fetched alongside, parsed after them).
@pytest.mark.parametrize("provider", ["Microsoft.Network", "Microsoft.Compute/virtualMachines"])
async def test_forbidden_subscription_is_named_and_the_others_come_back(backend, fresh_emulator, provider):
    inv0 = await backend.inventory()
    victim = inv0.subscriptions[1].subscription_id
    emulator_control(
        fresh_emulator, "POST", "/_emulator/faults", {"match": f"/subscriptions/{victim}/providers/{provider}", "method": "GET", "status": 403, "count": -1}
    )
    inv = await backend.inventory()
    assert [e.subscription_id for e in inv.errors] == [victim]
    assert inv.errors[0].code == "AuthorizationFailed"
    assert {v.subscription_id for v in inv.vms} == {s.subscription_id for s in inv0.subscriptions} - {victim}


async def test_throttling_with_retry_after_is_honoured(backend, fresh_emulator):
    emulator_control(
        fresh_emulator,
        "POST",
        "/_emulator/faults",
        {"match": "/providers/Microsoft.Compute/disks", "method": "GET", "status": 429, "retry_after_s": 1, "count": 2},
    )
    started = time.perf_counter()
    inv = await backend.inventory()
    elapsed = time.perf_counter() - started
    assert inv.errors == ()
    assert elapsed >= 1.0  # the client waited as Retry-After asked
    log = emulator_control(fresh_emulator, "GET", "/_emulator/requests")
    throttled = [r for r in log if r["status"] == 429]
    assert len(throttled) == 2


async def test_provider_registration_never_fires(backend, fresh_emulator):
    # ARM answers 409 MissingSubscriptionRegistration when a provider is not registered;
    # the SDK's default pipeline would then POST a registration (a write). Ours must not.
    inv0 = await backend.inventory()
    victim = inv0.subscriptions[0].subscription_id
    emulator_control(
        fresh_emulator,
        "POST",
        "/_emulator/faults",
        {
            "match": f"/subscriptions/{victim}/providers/Microsoft.Network/loadBalancers",
            "method": "GET",
            "status": 409,
            "code": "MissingSubscriptionRegistration",
            "count": -1,
        },
    )
    inv = await backend.inventory()
    assert [e.subscription_id for e in inv.errors] == [victim]
    stats = emulator_control(fresh_emulator, "GET", "/_emulator/stats")
    assert stats["writes"] == 0
    assert not any("register" in r["path"] for r in emulator_control(fresh_emulator, "GET", "/_emulator/requests"))


async def test_unknown_subscription_is_reported_not_listed(backend):
    inv = await backend.inventory(["00000000-0000-0000-0000-00000000dead"])
    assert inv.vms == ()
    assert inv.errors[0].code == "SubscriptionNotFound"


async def test_tls_trusts_only_the_given_ca(emulator, tmp_path):
    # Another CA than the emulator's: the adapter must refuse to talk.
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    import dataclasses

    settings = dataclasses.replace(demo_settings(emulator), ca_file=str(other))
    b = AzureBackend(settings, retry_total=0)
    try:
        from backend.adapter import BackendError

        with pytest.raises(BackendError) as err:
            await b.list_subscriptions()
        assert "certificate" in str(err.value).lower() or "ssl" in str(err.value).lower()
    finally:
        await b.close()


async def test_a_console_first_load_reads_no_instance_view_before_every_list_is_in(backend, fresh_emulator):
    """views_after_lists (the console's first load): the lists of every subscription are all
    answered before the first instance view is asked for, and the views are still read (their
    VMs are pending in every part shown before)."""
    emulator_control(fresh_emulator, "POST", "/_emulator/reset")  # an empty request log of this test's own
    # One subscription's disks come a second late: the others' lists are in well before.
    late = (await backend.list_subscriptions())[-1].subscription_id
    emulator_control(
        fresh_emulator,
        "POST",
        "/_emulator/faults",
        {"match": f"/subscriptions/{late}/providers/Microsoft.Compute/disks", "method": "GET", "status": None, "delay_s": 1.0, "count": 1},
    )
    parts = []
    inv = await backend.inventory(on_progress=parts.append, views_after_lists=True)
    log = [r["path"] for r in emulator_control(fresh_emulator, "GET", "/_emulator/requests")]
    views = [n for n, path in enumerate(log) if path.endswith("/instanceView")]
    lists = [
        n
        for n, path in enumerate(log)
        if path.count("/") <= 6 and path.rsplit("/", 1)[-1] in ("virtualMachines", "networkInterfaces", "disks", "publicIPAddresses")
    ]
    assert views and lists and max(lists) < min(views)
    read = {vm.id.lower() for vm in inv.vms if vm.instance_view_read}
    assert read and not inv.views_pending
    whole = next(p for p in parts if p.lists_pending == 0)
    assert read <= whole.views_pending  # shown with "…" until read
