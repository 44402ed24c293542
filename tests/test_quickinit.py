"""backend/quickinit.py: the models' faster __init__ makes the same objects as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from backend import models
from backend.quickinit import quick_init


def _pair():
    def make():
        @dataclasses.dataclass(frozen=True, slots=True)
        class Thing:
            name: str
            size: int | None = None
            tags: tuple[str, ...] = ()
            enabled: bool = False

        return Thing

    return make(), quick_init(make())


def test_a_quick_init_makes_what_the_dataclass_makes():
    plain, quick = _pair()
    assert quick.__init__ is not plain.__init__
    assert inspect.signature(quick.__init__).parameters.keys() == inspect.signature(plain.__init__).parameters.keys()
    for args, kwargs in (((), {"name": "a"}), (("a", 3), {}), (("a",), {"tags": ("x",), "enabled": True}), (("a", None, (), True), {})):
        p, q = plain(*args, **kwargs), quick(*args, **kwargs)
        assert dataclasses.astuple(p) == dataclasses.astuple(q)
        assert repr(p).split("(", 1)[1] == repr(q).split("(", 1)[1]
        assert hash(q) == hash(quick(*args, **kwargs)) and q == quick(*args, **kwargs)
        assert dataclasses.replace(q, size=7).size == 7 and q.size == p.size


def test_a_quick_init_refuses_what_the_dataclass_refuses():
    plain, quick = _pair()
    q = quick("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.name = "b"  # type: ignore[misc]
    for cls in (plain, quick):
        with pytest.raises(TypeError):
            cls()  # the field without a default is missing
        with pytest.raises(TypeError):
            cls("a", nope=1)  # no such field
        with pytest.raises(TypeError):
            cls("a", 1, (), False, "extra")


def test_a_class_it_cannot_serve_the_same_way_is_left_alone():
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        name: str

    for cls in (WithFactory, NoSlots):
        own = cls.__init__
        assert quick_init(cls).__init__ is own


def test_the_inventory_models_use_it():
    """The classes a 10,000-VM inventory makes by the thousand (and a verdict per VM)."""
    from backend.verdict import Verdict

    for cls in (models.Vm, models.Disk, models.NetworkInterface, models.PublicIp, models.Extension, models.HealthStatus, models.ResourceId, Verdict):
        assert cls.__init__.__code__.co_names[0].startswith("_set_"), cls
    disk = models.Disk("os", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/os", "Premium_LRS", True, "Delete", lun=None)
    assert pickle.loads(pickle.dumps(disk)) == disk
    assert dataclasses.replace(disk, lun=2) == models.Disk(disk.name, disk.id, disk.sku, True, "Delete", lun=2)
