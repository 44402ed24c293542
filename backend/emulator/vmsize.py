"""What the emulator reads from a VM size name: its vCPUs (quota) and whether it
takes premium storage (an OS-disk swap). Its own reading, not the product's.

Azure's naming convention (Microsoft Learn, "Azure virtual machine sizes naming
conventions"): ``Standard_`` + family letters + vCPUs (``-N``: constrained to N
active vCPUs) + additive feature letters (``s``: premium storage capable) +
``_vN`` version. DS and GS are first-generation families with premium storage.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^(?:standard|basic)_([a-z]+?)(\d+)(?:-(\d+))?([a-z]*)(?:_v\d+)?(?:_promo)?$", re.IGNORECASE)


def vcpus(size: str) -> int | None:
    """Active vCPUs of a size; None for a name of another shape."""
    m = _NAME.match((size or "").strip())
    return int(m[3] or m[2]) if m else None


def premium_capable(size: str) -> bool | None:
    """Can the size use premium SSDs? None for a name of another shape."""
    m = _NAME.match((size or "").strip())
    if not m:
        return None
    return "s" in m[4].lower() or m[1].upper() in ("DS", "GS")
