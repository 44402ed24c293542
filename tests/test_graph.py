"""Azure Resource Graph: the adapter's client against the emulator's endpoint over HTTPS.

Each test module's emulator sets its own quota, so the waits the tests measure are theirs."""

from __future__ import annotations

import time

import pytest

from backend.errors import BackendError
from tests.support import arm_call, demo_settings, emulator_control, start_emulator

pytestmark = pytest.mark.xdist_group("graph")

VMS = "resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name, power = tostring(properties.extended.instanceView.powerState.code) | order by id asc"
ARG = "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"


async def _backend(emu):
    from backend.azure.backend import AzureBackend

    return AzureBackend(demo_settings(emu), retry_total=3)


async def test_pages_follow_the_skip_token_and_every_vm_comes_once(graph_emulator):
    b = await _backend(graph_emulator)
    try:
        result = await b.graph_query(VMS, page_size=7)
        inv = await b.inventory(instance_views=0)
    finally:
        await b.close()
    ids = [r["id"] for r in result.rows]
    assert result.pages == 5  # 30 VMs, 7 a page
    assert len(ids) == len(set(ids)) == result.total_records == len(inv.vms)
    assert ids == sorted(ids, key=str.lower) or ids == sorted(ids)
    assert {r["id"].lower(): r["power"].split("/")[-1] for r in result.rows} == {v.id.lower(): v.power_state for v in inv.vms}
    assert not result.truncated


def test_a_query_without_order_repeats_and_misses_rows_between_pages(graph_emulator):
    # The emulator, like ARG, promises no order across pages without `order by`:
    # a client that forgets it gets duplicates and gaps, so the tests above mean something.
    query = "resources | where type =~ 'microsoft.compute/virtualmachines' | project id"
    seen: list[str] = []
    status, page = arm_call(graph_emulator, "POST", ARG, {"query": query, "options": {"$top": 7, "resultFormat": "objectArray"}})
    while True:
        assert status == 200
        seen += [r["id"] for r in page["data"]]
        if "$skipToken" not in page:
            break
        status, page = arm_call(graph_emulator, "POST", ARG, {"query": query, "options": {"$top": 7, "$skipToken": page["$skipToken"]}})
    assert len(seen) == 30
    assert len(set(seen)) < 30


async def test_take_cuts_the_result_and_says_so(graph_emulator):
    b = await _backend(graph_emulator)
    try:
        result = await b.graph_query("resources | order by id asc | take 50", page_size=10)
    finally:
        await b.close()
    assert result.truncated
    assert result.pages == 1
    assert len(result.rows) == 10
    assert result.total_records == 50


async def test_a_query_outside_the_subset_is_refused_with_the_reason(graph_emulator):
    b = await _backend(graph_emulator)
    try:
        with pytest.raises(BackendError) as caught:
            await b.graph_query("resources | parse name with * '-' env")
    finally:
        await b.close()
    assert caught.value.code == "InvalidQuery"
    assert "parse" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_error_and_answer_shapes_are_args(graph_emulator):
    status, body = arm_call(graph_emulator, "POST", ARG, {"query": "resources | where", "options": {"$top": 5000}})
    assert status == 400
    assert body["error"]["code"] == "BadRequest"
    assert body["error"]["details"][0]["code"] == "InvalidQuery"
    status, body = arm_call(
        graph_emulator, "POST", ARG, {"query": "resources | summarize count() by type | order by count_ desc", "options": {"resultFormat": "table"}}
    )
    assert status == 200
    assert [c["name"] for c in body["data"]["columns"]] == ["type", "count_"]
    assert body["resultTruncated"] == "false"
    counts = dict(body["data"]["rows"])
    assert counts["microsoft.compute/virtualmachines"] == 30


async def test_microsofts_vm_nic_public_ip_sample_joins_like_the_inventory(graph_emulator):
    # The documented sample "VMs with their NIC and public IP" (mv-expand, two leftouter joins, summarize by).
    sample = """Resources
| where type =~ 'microsoft.compute/virtualmachines'
| extend nics=array_length(properties.networkProfile.networkInterfaces)
| mv-expand nic=properties.networkProfile.networkInterfaces
| where nics == 1 or nic.properties.primary =~ 'true' or isempty(nic)
| project vmId = id, vmName = name, vmSize=tostring(properties.hardwareProfile.vmSize), nicId = tostring(nic.id)
| join kind=leftouter (
    Resources | where type =~ 'microsoft.network/networkinterfaces'
    | extend ipConfigsCount=array_length(properties.ipConfigurations)
    | mv-expand ipconfig=properties.ipConfigurations
    | where ipConfigsCount == 1 or ipconfig.properties.primary =~ 'true'
    | project nicId = id, publicIpId = tostring(ipconfig.properties.publicIPAddress.id)) on nicId
| project-away nicId1
| summarize by vmId, vmName, vmSize, nicId, publicIpId
| join kind=leftouter (
    Resources | where type =~ 'microsoft.network/publicipaddresses'
    | project publicIpId = id, publicIpAddress = properties.ipAddress) on publicIpId
| project-away publicIpId1"""
    b = await _backend(graph_emulator)
    try:
        result = await b.graph_query(sample)
        inv = await b.inventory(instance_views=0)
    finally:
        await b.close()
    got = {r["vmId"].lower(): (r["vmSize"], r["publicIpAddress"] or None) for r in result.rows}
    want = {v.id.lower(): (v.size, next((p.ip_address for n in v.nics if n.primary for p in n.public_ips), None)) for v in inv.vms}
    assert got == want


async def test_a_tenant_scope_past_the_subscription_limit_says_so():
    emu = start_emulator("demo", graph_quota=(10_000, 1.0), graph_subscription_limit=2)
    b = await _backend(emu)
    try:
        subs = sorted(s.subscription_id for s in await b.list_subscriptions())
        tenant = await b.graph_query("resources | summarize count() by subscriptionId")
        scoped = await b.graph_query("resources | summarize count() by subscriptionId", subscriptions=subs)
        root = (await b.graph_query("resources | project id, tenantId | order by id asc", max_rows=1)).rows[0]["tenantId"]
        by_group = await b.graph_query("resources | summarize count() by subscriptionId", management_groups=[root])
    finally:
        await b.close()
        emu.stop()
    assert tenant.subscription_limit_hit
    assert {r["subscriptionId"] for r in tenant.rows} == set(subs[:2])
    assert not scoped.subscription_limit_hit
    assert {r["subscriptionId"] for r in scoped.rows} == set(subs)
    assert by_group.subscription_limit_hit  # the tenant root group holds all three


async def test_the_quota_is_waited_for_instead_of_drawing_a_429():
    emu = start_emulator("demo", graph_quota=(3, 1.0))
    b = await _backend(emu)
    try:
        started = time.perf_counter()
        result = await b.graph_query(VMS, page_size=3)  # 10 pages: 4 windows of 3 queries
        elapsed = time.perf_counter() - started
        log = emulator_control(emu, "GET", "/_emulator/requests")
    finally:
        await b.close()
        emu.stop()
    graph_calls = [r for r in log if r["path"].lower().startswith("/providers/microsoft.resourcegraph/")]
    assert len(result.rows) == 30
    assert [r["status"] for r in graph_calls] == [200] * 10
    assert elapsed >= 2.5  # three resets of a 1-second window
    assert result.quota_waited_s >= 2.0


async def test_a_429_from_a_spent_quota_is_retried_after_its_reset():
    # Two clients of one identity: the first spends the window, the second (with no
    # headers seen yet) draws a 429 and azure-core retries it after Retry-After.
    emu = start_emulator("demo", graph_quota=(2, 2.0))
    first, second = await _backend(emu), await _backend(emu)
    try:
        await first.graph_query(VMS, page_size=15)  # both units of the window
        started = time.perf_counter()
        result = await second.graph_query(VMS)
        elapsed = time.perf_counter() - started
        log = emulator_control(emu, "GET", "/_emulator/requests")
    finally:
        await first.close()
        await second.close()
        emu.stop()
    statuses = [r["status"] for r in log if r["path"].lower().startswith("/providers/microsoft.resourcegraph/")]
    assert statuses == [200, 200, 429, 200]
    assert len(result.rows) == 30
    assert elapsed >= 1.0  # Retry-After: the rest of the 2-second window, rounded up


def test_every_answer_carries_the_quota_headers(graph_emulator):
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=graph_emulator.ca_file)
    req = urllib.request.Request(
        graph_emulator.endpoint + ARG,
        data=json.dumps({"query": VMS}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer headers-test"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        remaining = resp.headers["x-ms-user-quota-remaining"]
        resets = resp.headers["x-ms-user-quota-resets-after"]
    assert remaining == "9999"
    assert resets == "00:00:01"


def test_answers_follow_the_estate_when_rows_are_kept_between_queries():
    """The endpoint keeps built rows (per subscription and type) and a join's right side
    between queries: a change to a VM or its health shows in the very next answer."""
    from backend.emulator.estates import load_estate
    from backend.emulator.graph import Graph
    from backend.emulator.store import Store

    store = Store(load_estate("demo"))
    graph = Graph(store, quota=(10_000, 1.0))
    joined = (
        "healthresources | where type =~ 'microsoft.resourcehealth/availabilitystatuses'"
        " | project id, vmId = tolower(tostring(properties.targetResourceId)), state = tostring(properties.availabilityState)"
        " | join kind=inner (resources | where type =~ 'microsoft.compute/virtualmachines'"
        " | project vmId = tolower(id), power = tostring(properties.extended.instanceView.powerState.code)) on vmId | order by id asc"
    )

    def answer() -> dict[str, tuple[str, str]]:
        status, body, _ = graph.answer({"query": joined})
        assert status == 200
        return {r["vmId"]: (r["state"], r["power"]) for r in body["data"]}

    before = answer()
    vm_l, (state, power) = next((k, v) for k, v in before.items() if v[1] == "PowerState/running")
    assert answer() == before  # served again from the kept rows
    store.set_power(vm_l, "deallocated", settled=True)
    store.set_status_doc(vm_l, store.derived_status(vm_l))
    after = answer()
    assert after[vm_l] == ("Unavailable", "PowerState/deallocated") != (state, power)
    assert {k: v for k, v in after.items() if k != vm_l} == {k: v for k, v in before.items() if k != vm_l}
    status, body, _ = graph.answer(
        {
            "query": f"resources | where type =~ 'microsoft.compute/virtualmachines' | where tolower(id) == '{vm_l}' | project id, power = tostring(properties.extended.instanceView.powerState.code)"
        }
    )
    assert [r["power"] for r in body["data"]] == ["PowerState/deallocated"]
