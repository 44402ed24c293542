"""JSON output by orjson: the same document the standard library wrote."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.azure.instance_views import enrich
from backend.azure.join import join_subscription
from backend.emulator.estates import load_estate
from backend.jsonout import dumps, dumps_bytes, write_listing
from benchmarks._estate import LISTS


def test_same_text_as_the_standard_library_with_hostile_strings():
    @dataclasses.dataclass
    class Thing:
        x: int = 1

    doc = {
        "name": "vm\u202e\u0085\x1b[31m\U0001f600 é",
        "when": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2))),
        "thing": Thing(),
        7: [None, True, 1.5, (), {}],
    }
    text = dumps(doc)
    assert text == json.dumps(doc, indent=2, default=str)
    assert text.isascii()  # no raw control, bidi or other non-ASCII character reaches a terminal


def test_every_non_ascii_character_is_escaped_as_the_standard_library_does():
    everything = "".join(map(chr, range(0x80, 0xD800))) + "".join(map(chr, range(0xE000, 0x10000))) + "\U00010000\U0001f600\U0010ffff"
    doc = {"runs": [everything, "a\u00e9b\u00e9\u00e9c", "\U0001f600" * 3], "\u00e9 key": "x"}
    assert dumps(doc) == json.dumps(doc, indent=2)


def joined(estate: dict) -> list:
    """The estate's subscriptions joined as the inventory joins them, one Inventory each."""
    docs: dict[str, dict[str, list]] = {}
    for doc in estate["resources"]:
        kind = LISTS.get(doc["type"].lower())
        if kind:
            docs.setdefault(doc["id"].split("/")[2], {}).setdefault(kind, []).append(doc)
    for doc in estate.get("availabilityStatuses") or ():
        docs.setdefault(doc["id"].split("/")[2], {}).setdefault("health", []).append(doc)
    return [join_subscription(sub, d) for sub, d in docs.items()]


def test_an_inventory_written_natively_is_the_document_to_jsonable_makes():
    estate = load_estate("demo", seed=1)
    inv = joined(estate)
    views = {d["id"].lower(): d["properties"]["instanceView"] for d in estate["resources"] if "instanceView" in d.get("properties", {})}
    vms = [enrich(vm, views[vm.id.lower()]) if vm.id.lower() in views else vm for part in inv for vm in part.vms]
    assert any(vm.maintenance.window_start for vm in vms)
    assert any(vm.health and vm.health.since for vm in vms), "the estate has datetimes to write"
    assert any(vm.extensions for vm in vms) and any(vm.public_ips for vm in vms)
    native = json.loads(dumps([vm.to_json(native=True) for vm in vms], native=True))
    assert native == json.loads(json.dumps([vm.to_json() for vm in vms], indent=2, default=str))


def test_a_finding_and_a_diagnosis_keep_their_json_shape():
    # What `aztriage check` and `aztriage probe --format json` print per finding and per
    # diagnosis: these keys in this order, sequences as JSON arrays.
    from backend.checks import Finding
    from backend.diagnose import Diagnosis

    finding = Finding(
        "boot-diagnostics-off", "medium", "Boot diagnostics", "off", "enable it", "sub", vm_id="/x/vm", vm="vm", resource_group="rg", location="eastus"
    )
    assert list(finding.to_json().items()) == [
        ("vm_id", "/x/vm"),
        ("vm", "vm"),
        ("rule", "boot-diagnostics-off"),
        ("severity", "medium"),
        ("evidence", "off"),
        ("fix", "enable it"),
        ("title", "Boot diagnostics"),
        ("subscription_id", "sub"),
        ("resource_group", "rg"),
        ("location", "eastus"),
    ]
    diagnosis = Diagnosis("vm", "/x/vm", 22, "reachable", "open", evidence=("a", "b"), connect=("ssh vm",), cause=None)
    assert json.loads(dumps(diagnosis.to_json())) == {
        "vm": "vm",
        "vm_id": "/x/vm",
        "port": 22,
        "verdict": "reachable",
        "summary": "open",
        "evidence": ["a", "b"],
        "recommended_scenario": None,
        "connect": ["ssh vm"],
        "cause": None,
    }
    assert list(diagnosis.to_json()) == ["vm", "vm_id", "port", "verdict", "summary", "evidence", "recommended_scenario", "connect", "cause"]
    assert diagnosis.to_json()["evidence"] == ["a", "b"]  # a list, as before: callers compare and extend it


@pytest.mark.parametrize("count", [0, 1, 3, 7, 20])
def test_a_listing_written_in_batches_is_the_whole_documents_text(count):
    # `aztriage inventory --format json` writes its VMs a batch at a time: the same bytes as
    # the document written at once, whatever the batches, with hostile and native values.
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    items = [{"name": f"vm-{i}\u202e\x1b[31m\U0001f600 \u00e9", "when": when, "nested": {"list": [i, None, [], {}], "empty": ""}} for i in range(count)]
    doc = {"vms": [], "errors": [{"code": "E\u2028"}], "warnings": [], "stats": {"elapsed_s": 1.25}}
    written: list[bytes] = []
    write_listing(written.append, doc, iter(items), native=True, batch=3)
    assert b"".join(written) == dumps_bytes(doc | {"vms": items}, native=True)
    alone: list[bytes] = []
    write_listing(alone.append, {"vms": []}, items, batch=3)
    assert b"".join(alone) == dumps_bytes({"vms": items})


def test_a_listing_needs_an_empty_list_under_the_first_key():
    with pytest.raises(ValueError, match="empty list"):
        write_listing(lambda _: None, {"vms": [1]}, [2])


@pytest.mark.parametrize("name", ["demo", "hostile", "scale:400"])
def test_the_inventory_command_writes_the_bytes_of_its_whole_document(capfdbinary, name):
    # `aztriage inventory --format json` writes its VMs a batch at a time: byte for byte the
    # document it wrote at once (Inventory.to_json with each VM's verdict), hostile text included.
    from backend.verdict import verdicts
    from tui.commands.inventory import _write

    for inv in joined(load_estate(name, seed=1)):
        _write(inv, "json")
        found = verdicts(inv)
        doc = inv.to_json(native=True)
        for vm_doc, vm in zip(doc["vms"], inv.vms, strict=True):
            vm_doc["verdict"] = found[vm.id.lower()].to_json()
        assert doc["vms"]
        assert capfdbinary.readouterr().out == dumps_bytes(doc, native=True) + b"\n"
