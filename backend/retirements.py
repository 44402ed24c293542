"""Azure retirements the high-availability checklist flags, in one table.

Source: Microsoft's published retirement list (Azure Updates, retirements:
https://azure.microsoft.com/updates?updateType=retirements, as collected in the
Azure/EOL repository's service_list.json) and each item's migration page on
Microsoft Learn. A date Microsoft moves is one line here.

How a VM is matched (what the inventory already holds, no extra request):

- ``basic-public-ip``: a public IP of the VM with SKU Basic;
- ``basic-load-balancer``: a NIC of the VM in a backend pool or inbound NAT rule of a Basic load balancer;
- ``unmanaged-disks``: a disk that is a VHD in a storage account (the ``unmanaged-disks`` rule);
- ``log-analytics-agent``: the MicrosoftMonitoringAgent or OmsAgentForLinux extension;
- ``azure-diagnostics``: the IaaSDiagnostics (WAD) or LinuxDiagnostic (LAD) extension;
- ``d-ls-series``: a size of the D, Ds, Dv2, Dsv2 or Ls series (Standard_D1-D14, DS1-DS14, *_v2, Standard_L4s-L32s);
- ``azure-disk-encryption``: the AzureDiskEncryption or AzureDiskEncryptionForLinux extension;
- ``nsg-flow-logs``: not read by aztriage (flow logs live in Network Watcher): the checklist names the tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from backend.models import Vm


@dataclass(frozen=True)
class Retirement:
    id: str
    what: str  # in an operator's words
    on: date
    link: str  # Microsoft's migration page
    move_to: str  # what replaces it

    @property
    def day(self) -> str:
        return f"{self.on.day} {self.on:%B %Y}"

    def when(self, today: date) -> str:
        return f"retired on {self.day}" if self.on <= today else f"retiring on {self.day}"

    def deadline(self, today: date) -> str:
        return "now: it is already retired" if self.on <= today else f"before {self.day}"

    def severity(self, today: date) -> str:
        """Retired: high; within a year: medium; later: low."""
        days = (self.on - today).days
        if days <= 0:
            return "high"
        return "medium" if days <= 365 else "low"


RETIREMENTS: dict[str, Retirement] = {
    r.id: r
    for r in (
        Retirement(
            "basic-public-ip",
            "Basic SKU public IP addresses",
            date(2025, 9, 30),
            "https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-basic-upgrade-guidance",
            "a Standard SKU public IP",
        ),
        Retirement(
            "basic-load-balancer",
            "Basic Load Balancer",
            date(2025, 9, 30),
            "https://learn.microsoft.com/azure/load-balancer/load-balancer-basic-upgrade-guidance",
            "a Standard Load Balancer",
        ),
        Retirement(
            "unmanaged-disks",
            "unmanaged (VHD) disks: such VMs cannot start",
            date(2025, 9, 30),
            "https://learn.microsoft.com/azure/virtual-machines/unmanaged-disks-deprecation",
            "managed disks",
        ),
        Retirement(
            "log-analytics-agent",
            "the Log Analytics agent (MMA/OMS)",
            date(2024, 8, 31),
            "https://learn.microsoft.com/azure/azure-monitor/agents/azure-monitor-agent-migration",
            "the Azure Monitor Agent",
        ),
        Retirement(
            "azure-diagnostics",
            "the Azure Diagnostics extension (WAD/LAD)",
            date(2026, 3, 31),
            "https://learn.microsoft.com/azure/azure-monitor/agents/diagnostics-extension-overview",
            "the Azure Monitor Agent",
        ),
        Retirement(
            "d-ls-series",
            "the D, Ds, Dv2, Dsv2 and Ls series sizes",
            date(2028, 5, 1),
            "https://learn.microsoft.com/azure/virtual-machines/sizes/retirement/d-ds-dv2-dsv2-ls-series-retirement",
            "a current size (for example Dsv5 or Lsv3)",
        ),
        Retirement(
            "azure-disk-encryption",
            "Azure Disk Encryption (ADE)",
            date(2028, 9, 15),
            "https://learn.microsoft.com/azure/virtual-machines/disk-encryption-migrate",
            "encryption at host",
        ),
        Retirement(
            "nsg-flow-logs", "NSG flow logs", date(2027, 9, 30), "https://learn.microsoft.com/azure/network-watcher/nsg-flow-logs-migrate", "VNet flow logs"
        ),
    )
}

_EXTENSIONS = {
    "microsoft.enterprisecloud.monitoring.microsoftmonitoringagent": "log-analytics-agent",
    "microsoft.enterprisecloud.monitoring.omsagentforlinux": "log-analytics-agent",
    "microsoft.azure.diagnostics.iaasdiagnostics": "azure-diagnostics",
    "microsoft.azure.diagnostics.linuxdiagnostic": "azure-diagnostics",
    "microsoft.azure.security.azurediskencryption": "azure-disk-encryption",
    "microsoft.azure.security.azurediskencryptionforlinux": "azure-disk-encryption",
}
# Standard_D1-D14 and DS1-DS14 (first generation), their _v2 (and _v2_Promo), Standard_L4s-L32s (Ls, first generation).
_RETIRING_SIZE = re.compile(r"^standard_(?:ds?(?:1[1-5]|[1-5])(?:-\d+)?(?:_v2(?:_promo)?)?|l(?:4|8|16|32)s)$", re.IGNORECASE)


def retiring_size(size: str) -> bool:
    return bool(_RETIRING_SIZE.match((size or "").strip()))


def extension_retirements(vm: Vm) -> list[tuple[Retirement, str]]:
    """(retirement, the extension's name) for each retiring extension on the VM."""
    out = []
    for ext in vm.extensions:
        key = _EXTENSIONS.get(f"{ext.publisher or ''}.{ext.type or ''}".lower())
        if key:
            out.append((RETIREMENTS[key], ext.name))
    return out
