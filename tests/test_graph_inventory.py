"""The inventory from Azure Resource Graph is the inventory from the ARM lists:
the real adapter against the emulator over HTTPS, both engines on the same estate."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backend.config import ConfigError, load_config
from tests.support import demo_settings, start_emulator
from tests.test_cli import aztriage

pytestmark = pytest.mark.xdist_group("graph")


async def _inventories(emu, **kwargs):
    from backend.azure.backend import AzureBackend

    out = {}
    for engine in ("arm", "arg"):
        b = AzureBackend(dataclasses.replace(demo_settings(emu), engine=engine))
        try:
            out[engine] = await b.inventory(**kwargs)
        finally:
            await b.close()
    return out["arm"], out["arg"]


def _assert_same(arm, arg):
    assert arm.engine == "arm" and arg.engine == "arg"
    assert arg.vms == arm.vms
    assert arg.subscriptions == arm.subscriptions
    assert arg.nsgs == arm.nsgs
    assert arg.public_ips == arm.public_ips
    assert arg.load_balancers == arm.load_balancers
    assert arg.availability_sets == arm.availability_sets
    assert arg.impacted == arm.impacted
    assert arg.errors == arm.errors == ()
    assert arg.warnings == ()
    # Each engine lists a subscription's events in its own order (ARM the service's, ARG by id).
    assert sorted(arg.events, key=lambda e: (e.subscription_id, e.id)) == sorted(arm.events, key=lambda e: (e.subscription_id, e.id))


async def test_the_demo_estate_gives_the_same_inventory_from_both_engines(graph_emulator):
    arm, arg = await _inventories(graph_emulator)
    _assert_same(arm, arg)
    assert any(vm.instance_view_read for vm in arg.vms)  # the agent still comes from instance views
    assert arg.impacted  # the demo's service issue names its VMs


async def test_many_subscriptions_are_queried_in_batches_with_far_fewer_requests():
    emu = start_emulator("scale:600", subscriptions=250, graph_quota=(10_000, 1.0))
    try:
        arm, arg = await _inventories(emu, instance_views=0)
        log = [r for r in emu.emulator.request_log() if r["path"].lower().startswith("/providers/microsoft.resourcegraph/")]
    finally:
        emu.stop()
    _assert_same(arm, arg)
    assert len(arg.subscriptions) == 250
    # 3 batches of at most 100 subscriptions, 4 queries each, and a page per further 1,000 rows
    assert 12 <= len(log) <= 15
    assert arg.requests == 1 + len(log)  # and the subscription list
    assert arm.requests >= 11 * 250


async def test_auto_uses_resource_graph_above_the_threshold(graph_emulator):
    from backend.azure.backend import AzureBackend

    engines = {}
    for threshold in (2, 3):
        b = AzureBackend(dataclasses.replace(demo_settings(graph_emulator), engine="auto", graph_threshold=threshold))
        try:
            engines[threshold] = (await b.inventory(instance_views=0)).engine
        finally:
            await b.close()
    assert engines == {2: "arg", 3: "arm"}  # the demo has three subscriptions


def test_the_cli_prints_the_same_inventory_from_either_engine(graph_emulator):
    docs = {}
    for engine in ("arm", "arg"):
        attach = ("--demo", "--arm-endpoint", graph_emulator.endpoint, "--ca-file", graph_emulator.ca_file)
        proc = aztriage("inventory", *attach, "--engine", engine, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        docs[engine] = json.loads(proc.stdout)
    assert docs["arg"]["stats"]["engine"] == "arg"
    assert docs["arg"]["vms"] == docs["arm"]["vms"]  # verdicts included
    assert docs["arg"]["warnings"] == docs["arm"]["warnings"] == []
    assert docs["arg"]["stats"]["requests"] < docs["arm"]["stats"]["requests"]


def test_a_truncated_answer_is_shown_to_the_operator():
    emu = start_emulator("demo", graph_quota=(10_000, 1.0), graph_truncate_after=20)
    try:
        attach = ("--demo", "--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--engine", "arg")
        as_json = aztriage("inventory", *attach, "--format", "json")
        as_table = aztriage("inventory", *attach, "--format", "table")
    finally:
        emu.stop()
    assert as_json.returncode == 0, as_json.stderr
    warnings = json.loads(as_json.stdout)["warnings"]
    assert warnings and all("Resource Graph cut its answer" in w for w in warnings)
    assert as_table.returncode == 0, as_table.stderr
    assert "warning: Resource Graph cut its answer from resources" in as_table.stderr
    assert "Traceback" not in as_table.stderr


def test_a_bad_engine_is_one_clear_line():
    proc = aztriage("inventory", "--demo", "--engine", "kusto")
    assert proc.returncode != 0
    assert "--engine" in proc.stderr and "kusto" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


def test_the_engine_and_threshold_come_from_the_config_or_environment(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('inventory_engine = "arg"\ngraph_threshold = 250\n')
    config = load_config(path, environ={})
    assert (config.inventory_engine, config.graph_threshold) == ("arg", 250)
    assert load_config(path, environ={"AZTRIAGE_INVENTORY_ENGINE": "arm"}).inventory_engine == "arm"
    with pytest.raises(ConfigError, match="inventory_engine"):
        load_config(path, environ={"AZTRIAGE_INVENTORY_ENGINE": "kusto"})


async def test_uniform_scale_set_instances_come_from_resource_graph_and_refuse_recoveries():
    from backend.azure.backend import AzureBackend
    from backend.emulator.estates import load_estate
    from backend.emulator.estates.uniform import add_uniform_scale_set
    from backend.emulator.server import EmulatorThread
    from backend.recovery import scenarios
    from backend.recovery.service import VmNotFound, find_vm
    from tests.support import FIXED_NOW

    estate = load_estate("demo", now=FIXED_NOW)
    web = next(r for r in estate["resources"] if r["type"] == "Microsoft.Compute/virtualMachines" and r["name"] == "web-prod-01")
    sub, rg = web["id"].split("/")[2], web["id"].split("/")[4]
    subnet = next(
        r
        for r in estate["resources"]
        if r["type"] == "Microsoft.Network/networkInterfaces" and r["id"] == web["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    )
    subnet_id = subnet["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"]
    ids = add_uniform_scale_set(
        estate, sub, rg, "vmss-render", web["location"], size="Standard_D4s_v5", subnet_id=subnet_id, powers=("running", "running", "deallocated")
    )
    emu = EmulatorThread(estate, graph_quota=(10_000, 1.0)).start()
    try:
        arm, arg = await _inventories(emu, instance_views=0)
        b = AzureBackend(demo_settings(emu))
        try:
            with pytest.raises(VmNotFound):
                await find_vm(b, ids[0])
        finally:
            await b.close()
    finally:
        emu.stop()
    instances = [vm for vm in arg.vms if vm.uniform_instance]
    assert sorted(vm.id for vm in instances) == sorted(ids)
    assert [vm.power_state for vm in sorted(instances, key=lambda v: v.id)] == ["running", "running", "deallocated"]
    assert {vm.size for vm in instances} == {"Standard_D4s_v5"}
    assert {vm.vmss_id.rsplit("/", 1)[-1] for vm in instances} == {"vmss-render"}
    assert sorted(ip for vm in instances for ip in vm.private_ips) == ["10.250.0.4", "10.250.0.5", "10.250.0.6"]
    assert vm_json_marks(instances[0])
    # Azure's VM list does not return them: the ARM engine's inventory is the rest, unchanged.
    assert not any(vm.uniform_instance for vm in arm.vms)
    assert [vm for vm in arg.vms if not vm.uniform_instance] == list(arm.vms)
    for scenario, why, _recommended in scenarios.choices(instances[0]):
        assert why is not None and "Uniform scale set vmss-render" in why, scenario.id


def vm_json_marks(vm) -> bool:
    doc = vm.to_json()
    return doc["uniform_instance"] is True and doc["vmss_id"].endswith("/virtualMachineScaleSets/vmss-render")
