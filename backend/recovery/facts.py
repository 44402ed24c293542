"""What a plan is built from: one VM's documents as ARM returned them, read
into models. The same documents are what the journal keeps ("the VM's full
ARM model captured before the first change"), so a resumed run rebuilds the
very plan it started with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend import mapping
from backend.models import ResourceId, Vm
from backend.safetext import safe_json


@dataclass(frozen=True)
class Lock:
    id: str
    name: str
    level: str  # ReadOnly / CanNotDelete
    scope: str  # the id the lock sits on (the VM, its group, its subscription)
    notes: str = ""

    @property
    def scope_kind(self) -> str:
        rid = ResourceId.parse(self.scope)
        if rid.name:
            return "resource"
        if rid.resource_group:
            return "resource group"
        return "subscription"

    def describe(self) -> str:
        rid = ResourceId.parse(self.scope)
        where = rid.name or rid.resource_group or rid.subscription_id
        return f"{self.level} lock '{self.name}' on {self.scope_kind} {where}"


@dataclass(frozen=True)
class VmSize:
    name: str
    cores: int | None
    memory_mb: int | None
    max_data_disks: int | None
    resource_disk_mb: int | None

    @property
    def premium_io(self) -> bool | None:
        """Premium SSD capable: the size name carries the 's' feature letter
        (Standard_DS2_v2, Standard_D4s_v5, Standard_E8ads_v5). None: unknown name."""
        from backend.sizes import size_info

        info = size_info(self.name)
        if info is None:
            return None
        return "s" in info.features or info.family.endswith("S")

    def describe(self) -> str:
        parts = []
        if self.cores is not None:
            parts.append(f"{self.cores} vCPU")
        if self.memory_mb is not None:
            parts.append(f"{self.memory_mb / 1024:g} GiB")
        return ", ".join(parts)


def _lock(doc: dict[str, Any]) -> Lock:
    lock_id = doc.get("id") or ""
    props = doc.get("properties") or doc
    cut = lock_id.lower().find("/providers/microsoft.authorization/locks/")
    return Lock(
        id=lock_id,
        name=doc.get("name") or lock_id.rsplit("/", 1)[-1],
        level=props.get("level") or "",
        scope=lock_id[:cut] if cut >= 0 else "",
        notes=props.get("notes") or "",
    )


def _size(doc: dict[str, Any]) -> VmSize:
    return VmSize(
        name=doc.get("name") or "",
        cores=doc.get("numberOfCores"),
        memory_mb=doc.get("memoryInMB"),
        max_data_disks=doc.get("maxDataDiskCount"),
        resource_disk_mb=doc.get("resourceDiskSizeInMB"),
    )


def vm_from_documents(docs: dict[str, Any]) -> Vm:
    """Read the VM model the way the inventory does (``backend.mapping``)."""
    public_ips = {p["id"].lower(): mapping.public_ip(p) for p in docs.get("public_ips") or ()}
    model = docs["model"]
    view = (model.get("properties") or {}).get("instanceView")
    return mapping.virtual_machine(
        model,
        view,
        disks={d["id"].lower(): mapping.disk_facts(d) for d in docs.get("disks") or ()},
        nics={n["id"].lower(): mapping.nic_facts(n) for n in docs.get("nics") or ()},
        public_ips=public_ips,
        subnet_nsg={},
        health=mapping.health_status(docs["health"]) if docs.get("health") else None,
    )


@dataclass(frozen=True)
class VmFacts:
    vm: Vm
    documents: dict[str, Any]  # the wire documents, kept in the journal as they are
    locks: tuple[Lock, ...] | None  # None: could not be read
    sizes: tuple[VmSize, ...] | None  # None: not fetched or could not be read

    @classmethod
    def from_documents(cls, docs: dict[str, Any]) -> VmFacts:
        # The models are read from a safe copy (text from outside made safe, see
        # backend/safetext); the documents stay as ARM sent them: they are what a
        # recreate sends back.
        safe = safe_json(docs)
        locks = None if safe.get("locks") is None else tuple(_lock(d) for d in safe["locks"])
        sizes = None if safe.get("sizes") is None else tuple(_size(d) for d in safe["sizes"])
        return cls(vm=vm_from_documents(safe), documents=docs, locks=locks, sizes=sizes)

    @property
    def model(self) -> dict[str, Any]:
        return self.documents["model"]

    @property
    def fetched_at(self) -> datetime | None:
        """When the documents were read: the time a plan, the scenario list and the Recovery
        pane judge the VM's times at (why a maintenance window refuses it), so they agree."""
        return mapping.parse_time(self.documents.get("fetched_at"))

    @property
    def instance_view(self) -> dict[str, Any]:
        return (self.model.get("properties") or {}).get("instanceView") or {}

    @property
    def locks_error(self) -> str | None:
        return self.documents.get("locks_error")

    @property
    def sizes_error(self) -> str | None:
        return self.documents.get("sizes_error")

    def size(self, name: str) -> VmSize | None:
        for s in self.sizes or ():
            if s.name.lower() == name.lower():
                return s
        return None

    @property
    def incident(self) -> Any:
        """The active Azure incident that covers the VM (backend.verdict.Incident), from the
        service issues read with it, or None."""
        from backend.verdict import incident_for

        sub = self.vm.subscription_id
        events = [mapping.service_event(d, sub) for d in self.documents.get("events") or ()]
        return incident_for(self.vm, events, self.documents.get("impacted") or {})

    def read_only_locks(self) -> tuple[Lock, ...]:
        return tuple(lock for lock in self.locks or () if lock.level.lower() == "readonly")

    def extension(self, handler_type: str) -> dict[str, Any] | None:
        """The VM's extension of this handler type (e.g. VMAccessAgent), from the model's resources."""
        for ext in self.model.get("resources") or ():
            props = ext.get("properties") or {}
            if (props.get("type") or "").lower() == handler_type.lower():
                return ext
        return None


def power_state(model: dict[str, Any]) -> str:
    for status in ((model.get("properties") or {}).get("instanceView") or {}).get("statuses") or ():
        code = (status.get("code") or "").lower()
        if code.startswith("powerstate/"):
            return code.split("/", 1)[1]
    return "unknown"


def provisioning(model: dict[str, Any]) -> tuple[str, str | None]:
    """(state, time) of the last operation, from the instance view's ProvisioningState status."""
    for status in ((model.get("properties") or {}).get("instanceView") or {}).get("statuses") or ():
        code = status.get("code") or ""
        if code.lower().startswith("provisioningstate/"):
            return code.split("/", 2)[1].lower(), status.get("time")
    return ((model.get("properties") or {}).get("provisioningState") or "unknown").lower(), None
