"""ARM id helpers and the ARM error type used throughout the emulator."""

from __future__ import annotations

from typing import NamedTuple


class ArmError(Exception):
    """An ARM error response: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class IdParts(NamedTuple):
    subscription: str  # as written in the id
    resource_group: str  # '' when the id has none
    namespace: str  # '' when the id has no provider part
    types: tuple[str, ...]  # ("virtualMachines", "extensions")
    names: tuple[str, ...]  # ("vm1", "ext1")

    @property
    def type(self) -> str:
        """Full resource type, e.g. ``Microsoft.Compute/virtualMachines/extensions``."""
        if not self.namespace:
            return "Microsoft.Resources/resourceGroups" if self.resource_group else "Microsoft.Resources/subscriptions"
        return "/".join((self.namespace,) + self.types)

    @property
    def name(self) -> str:
        if self.names:
            return self.names[-1]
        return self.resource_group or self.subscription

    @property
    def parent_id(self) -> str | None:
        """Id of the parent resource of a child resource (None for top-level)."""
        if len(self.names) < 2:
            return None
        return build_id(self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1])


def parse_id(resource_id: str) -> IdParts:
    """Split an ARM id (any case, leading slash optional) into its parts."""
    segs = [s for s in resource_id.split("/") if s]
    low = [s.lower() for s in segs]
    if len(segs) < 2 or low[0] != "subscriptions":
        raise ValueError(f"not an ARM resource id: {resource_id!r}")
    sub = segs[1]
    rg = ""
    i = 2
    if len(segs) > 3 and low[2] == "resourcegroups":
        rg = segs[3]
        i = 4
    ns = ""
    types: list[str] = []
    names: list[str] = []
    if len(segs) > i + 1 and low[i] == "providers":
        ns = segs[i + 1]
        tail = segs[i + 2 :]
        types = tail[0::2]
        names = tail[1::2]
        if len(types) != len(names):  # a collection path, not a resource
            types = types[: len(names)]
    return IdParts(sub, rg, ns, tuple(types), tuple(names))


def build_id(sub: str, rg: str, ns: str, types: tuple[str, ...] | list[str], names: tuple[str, ...] | list[str]) -> str:
    out = f"/subscriptions/{sub}"
    if rg:
        out += f"/resourceGroups/{rg}"
    if ns:
        out += f"/providers/{ns}"
        for t, n in zip(types, names):
            out += f"/{t}/{n}"
    return out


def normalize_id(resource_id: str) -> str:
    """Ensure a leading slash and no trailing slash (ARM accepts ids without the leading '/')."""
    rid = resource_id.strip()
    if not rid.startswith("/"):
        rid = "/" + rid
    return rid.rstrip("/")


def location_key(location: str | None) -> str:
    """'West US' -> 'westus' (the form used in operation URLs)."""
    return (location or "").replace(" ", "").lower() or "global"
