"""What a VM size name tells: its family, vCPUs, and whether it has a
temporary (local, non-persistent) disk.

Azure has no field on the VM for the temporary disk; the size decides it.
Rather than call the (deprecated) sizes API per region, this module reads the
size name with a small, documented table. Where the table does not know a
family, the answer is ``None`` ("unknown") and the checklist says nothing
instead of guessing.

Sources: Microsoft Learn, "Azure VM sizes with no local temporary disk" and the
size-series pages (naming convention: family, vCPUs, additive features such as
``d`` = local temp disk on v4 and later, ``s`` = premium storage, version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Standard_E4-2ds_v5: family E, 4 vCPUs constrained to 2, features "ds", version v5.
_SIZE = re.compile(
    r"^(?:standard|basic)_(?P<family>[a-z]+?)(?P<vcpus>\d+)(?:-(?P<constrained>\d+))?(?P<features>[a-z]*)(?:_(?P<version>v\d+))?(?:_promo)?$",
    re.IGNORECASE,
)

# (family, version) -> has a temporary disk. Families up to v3 carried one
# everywhere; from v4 on, the "d" feature letter marks it (handled below).
_TEMP_DISK: dict[tuple[str, str | None], bool] = {
    ("A", None): True,  # Basic_A*, Standard_A* (v1)
    ("A", "v2"): True,
    ("B", None): True,  # B-series v1 (Standard_B2ms)
    ("B", "v2"): False,  # Bsv2, Basv2, Bpsv2: remote storage only
    ("D", None): True,  # Dv1
    ("DS", None): True,
    ("D", "v2"): True,
    ("DS", "v2"): True,
    ("D", "v3"): True,
    ("E", "v3"): True,
    ("F", None): True,
    ("FS", None): True,
    ("F", "v2"): True,  # Fsv2
    ("G", None): True,
    ("GS", None): True,
    ("M", None): True,
    ("M", "v2"): True,
    ("L", None): True,
    ("L", "v2"): True,
    ("L", "v3"): True,
    ("NC", None): True,
    ("NC", "v2"): True,
    ("NC", "v3"): True,
    ("NV", None): True,
    ("NV", "v3"): True,
}

# Families whose v4+ sizes follow the "d means temp disk" naming rule.
_D_RULE_FAMILIES = {"D", "E", "F", "FX", "EC", "DC"}


@dataclass(frozen=True)
class SizeInfo:
    name: str
    family: str  # upper case: D, DS, E, B, A, NC, ...
    vcpus: int | None  # active vCPUs (a constrained size counts its active ones)
    features: str  # lower case additive letters: "ds", "ms", "as", ...
    version: str | None  # "v3", None for first generation
    temp_disk: bool | None  # None: not known for this family

    @property
    def entry_level(self) -> bool:
        """A- and B-series: burstable or entry-level, not for constant full-CPU load."""
        return self.family in ("A", "B")


@lru_cache(maxsize=1024)
def size_info(name: str) -> SizeInfo | None:
    """Read a size name; None when it is not a name of the usual shape."""
    m = _SIZE.match((name or "").strip())
    if not m:
        return None
    family = m["family"].upper()
    features = (m["features"] or "").lower()
    version = (m["version"] or "").lower() or None
    vcpus = int(m["constrained"] or m["vcpus"])
    return SizeInfo(name=name, family=family, vcpus=vcpus, features=features, version=version, temp_disk=_temp_disk(family, features, version))


def _temp_disk(family: str, features: str, version: str | None) -> bool | None:
    known = _TEMP_DISK.get((family, version))
    if known is not None:
        return known
    if version and version[1:].isdigit() and int(version[1:]) >= 4 and family in _D_RULE_FAMILIES:
        # The AMD v4 sizes (Dav4, Dasv4, Eav4, Easv4) kept a temp disk without the "d".
        if version == "v4" and "a" in features:
            return True
        return "d" in features
    return None


def has_temp_disk(size: str) -> bool | None:
    info = size_info(size)
    return info.temp_disk if info else None


def vcpus(size: str) -> int | None:
    info = size_info(size)
    return info.vcpus if info else None


def temp_disk_location(os_type: str) -> str:
    """Where the operator sees the temporary disk inside the guest."""
    if (os_type or "").lower() == "windows":
        return "drive D:"
    return "/dev/sdb1 (mounted at /mnt or /mnt/resource)"
