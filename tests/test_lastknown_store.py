"""The last-known addresses store as the console's background probe uses it on a large
estate: from a worker thread, without setting off the cyclic collector (each collection it
set off walked the console's whole young heap with the event loop waiting for the GIL)."""

from __future__ import annotations

import gc
import threading
from dataclasses import replace

from backend.lastknown import LastKnownStore
from tests.support import make_vm


def vm(i: int):
    return make_vm(f"vm{i:05d}", pip=f"127.1.{i // 250}.{i % 250 + 1}")


def test_a_record_from_a_worker_thread_sets_off_no_collection(tmp_path):
    vms = [vm(i) for i in range(5000)]
    store = LastKnownStore(tmp_path / "lk.json", scope="t")
    store.record(vms)  # the file exists: the next record reads, compares and writes 5,000 entries
    moved = [vm(i) for i in range(5000)]
    moved[7] = replace(vm(5250), id=vms[7].id, name=vms[7].name)  # one VM's address is new: a change to report
    collections: list[int] = []  # the generation of each collection the record set off

    def watch(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread().name == "probe-store":
            collections.append(info["generation"])

    result: dict = {}
    # The collector's counters start at zero, as they would not after the tests before this one
    # in the same process: a middle generation due already was collected as the record ended.
    gc.collect()
    worker = threading.Thread(target=lambda: result.update(store.record(moved)), name="probe-store")
    gc.callbacks.append(watch)
    try:
        worker.start()
        worker.join(30)
    finally:
        gc.callbacks.remove(watch)
    # At most the young generation once, as the collector comes back on (what the record left
    # alive: its result); never the older ones, which hold the console's heap.
    assert collections in ([], [0]), collections
    assert gc.isenabled()  # and the collector is back on afterwards
    assert [c.describe().split(" (")[0] for c in result[vms[7].id]] == [f"public IP changed from 127.1.0.8 to {moved[7].public_ips[0]}"]
    assert set(store.entries()) == {v.id.lower() for v in vms}
