"""Shared building blocks of the built-in estates.

Every document built here has the shape Azure Resource Manager returns on GET
(camelCase, ``id``/``name``/``type``/``location``/``properties``), as in the
official REST examples. The :class:`EstateBuilder` keeps the back references
ARM maintains on its own (NSG -> NICs/subnets, subnet -> ipConfigurations,
public IP -> ipConfiguration, disk -> managedBy, availability set -> VMs,
load balancer pool -> ipConfigurations) so every reference resolves.

Nothing here is shared between two documents: the emulator may mutate them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..changes import change_row, property_change
from ..ids import parse_id
from . import serial

# --------------------------------------------------------------------------- time


class Clock:
    """Formats instants relative to ``now`` (seconds offsets), with a cache."""

    def __init__(self, now: datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self._z: dict[int, str] = {}
        self._o: dict[int, str] = {}

    def at(self, seconds: int) -> datetime:
        return self.now + timedelta(seconds=seconds)

    def z(self, seconds: int) -> str:
        """``2024-05-14T09:12:03Z`` (Resource Health style)."""
        s = self._z.get(seconds)
        if s is None:
            s = self._z[seconds] = self.at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")
        return s

    def o(self, seconds: int) -> str:
        """``2024-05-14T09:12:03+00:00`` (Compute style)."""
        s = self._o.get(seconds)
        if s is None:
            s = self._o[seconds] = self.at(seconds).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        return s


MINUTE = 60
HOUR = 3600
DAY = 86400

# ------------------------------------------------------------------- catalogues

# region name -> (display name, has availability zones)
REGIONS: dict[str, tuple[str, bool]] = {
    "westeurope": ("West Europe", True),
    "northeurope": ("North Europe", True),
    "eastus": ("East US", True),
    "eastus2": ("East US 2", True),
    "westus2": ("West US 2", True),
    "centralus": ("Central US", True),
    "uksouth": ("UK South", True),
    "swedencentral": ("Sweden Central", True),
    "southeastasia": ("Southeast Asia", True),
    "westus": ("West US", False),
    "northcentralus": ("North Central US", False),
}

# size -> (vCPUs, memory GiB, temp disk GiB (0 = none), accelerated networking)
SIZES: dict[str, tuple[int, int, int, bool]] = {
    "Standard_B2s": (2, 4, 8, False),
    "Standard_B2ms": (2, 8, 16, False),
    "Standard_DS1_v2": (1, 3, 7, False),
    "Standard_D2s_v3": (2, 8, 16, True),
    "Standard_D2s_v5": (2, 8, 0, True),
    "Standard_D4s_v5": (4, 16, 0, True),
    "Standard_D2as_v5": (2, 8, 0, True),
    "Standard_D4as_v5": (4, 16, 0, True),
    "Standard_D2ds_v5": (2, 8, 75, True),
    "Standard_E4s_v5": (4, 32, 0, True),
    "Standard_E8s_v5": (8, 64, 0, True),
    "Standard_F4s_v2": (4, 8, 32, True),
}

# image key -> facts about it
IMAGES: dict[str, dict[str, str]] = {
    "ubuntu2204": {
        "os": "Linux",
        "publisher": "Canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts-gen2",
        "exact": "22.04.202409100",
        "gen": "V2",
        "os_name": "ubuntu",
        "os_version": "22.04",
        "family": "ubuntu",
        "pretty": "Ubuntu 22.04.5 LTS",
        "kernel": "5.15.0-1071-azure",
        "systemd": "249.11-0ubuntu3.12",
        "cloudinit": "24.1.3-0ubuntu1~22.04.5",
    },
    "ubuntu2404": {
        "os": "Linux",
        "publisher": "Canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "exact": "24.04.202409120",
        "gen": "V2",
        "os_name": "ubuntu",
        "os_version": "24.04",
        "family": "ubuntu",
        "pretty": "Ubuntu 24.04.1 LTS",
        "kernel": "6.8.0-1014-azure",
        "systemd": "255.4-1ubuntu8.4",
        "cloudinit": "24.2-0ubuntu1~24.04.2",
    },
    "rhel9": {
        "os": "Linux",
        "publisher": "RedHat",
        "offer": "RHEL",
        "sku": "9-lvm-gen2",
        "exact": "9.4.2024081415",
        "gen": "V2",
        "os_name": "redhat",
        "os_version": "9.4",
        "family": "rhel",
        "pretty": "Red Hat Enterprise Linux 9.4 (Plow)",
        "kernel": "5.14.0-427.31.1.el9_4.x86_64",
        "systemd": "252-32.el9_4.7",
        "cloudinit": "23.4-7.el9_4.5",
    },
    "ubuntu1804": {
        "os": "Linux",
        "publisher": "Canonical",
        "offer": "UbuntuServer",
        "sku": "18.04-LTS",
        "exact": "18.04.202306070",
        "gen": "V1",
        "os_name": "ubuntu",
        "os_version": "18.04",
        "family": "ubuntu",
        "pretty": "Ubuntu 18.04.6 LTS",
        "kernel": "5.4.0-1109-azure",
        "systemd": "237-3ubuntu10.57",
        "cloudinit": "23.1.2-0ubuntu0~18.04.1",
    },
    "win2022": {
        "os": "Windows",
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": "2022-datacenter-azure-edition",
        "exact": "20348.2700.240905",
        "gen": "V2",
        "os_name": "Windows Server 2022 Datacenter Azure Edition",
        "os_version": "Microsoft Windows NT 10.0.20348.0",
        "family": "windows",
        "build": "20348",
    },
    "win2019": {
        "os": "Windows",
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": "2019-datacenter-gensecond",
        "exact": "17763.6293.240905",
        "gen": "V2",
        "os_name": "Windows Server 2019 Datacenter",
        "os_version": "Microsoft Windows NT 10.0.17763.0",
        "family": "windows",
        "build": "17763",
    },
    "win2016": {
        "os": "Windows",
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": "2016-Datacenter",
        "exact": "14393.7336.240905",
        "gen": "V1",
        "os_name": "Windows Server 2016 Datacenter",
        "os_version": "Microsoft Windows NT 10.0.14393.0",
        "family": "windows",
        "build": "14393",
    },
    "sql2022": {
        "os": "Windows",
        "publisher": "MicrosoftSQLServer",
        "offer": "sql2022-ws2022",
        "sku": "standard-gen2",
        "exact": "16.0.240910",
        "gen": "V2",
        "os_name": "Windows Server 2022 Datacenter",
        "os_version": "Microsoft Windows NT 10.0.20348.0",
        "family": "windows",
        "build": "20348",
    },
    "win11": {
        "os": "Windows",
        "publisher": "MicrosoftWindowsDesktop",
        "offer": "windows-11",
        "sku": "win11-23h2-pro",
        "exact": "22631.4169.240905",
        "gen": "V2",
        "os_name": "Windows 11 Pro",
        "os_version": "Microsoft Windows NT 10.0.22631.0",
        "family": "windows",
        "build": "22631",
    },
}

AGENT_VERSION = {"Linux": "2.11.1.12", "Windows": "2.7.41491.1102"}

DISK_TIERS = [(4, 32), (6, 64), (10, 128), (15, 256), (20, 512), (30, 1024), (40, 2048), (50, 4096)]
# tier number -> (Premium IOPS, Premium MBps)
PREMIUM_PERF = {4: (120, 25), 6: (240, 50), 10: (500, 100), 15: (1100, 125), 20: (2300, 150), 30: (5000, 200), 40: (7500, 250), 50: (7500, 250)}


def disk_tier(sku: str, size_gb: int) -> tuple[str | None, int, int]:
    """Performance tier name, IOPS and MBps of a managed disk."""
    num = 50
    for n, cap in DISK_TIERS:
        if size_gb <= cap:
            num = n
            break
    if sku.startswith("Premium"):
        iops, mbps = PREMIUM_PERF[num]
        return f"P{num}", iops, mbps
    if sku.startswith("StandardSSD"):
        return f"E{num}", 500 if num <= 30 else 2000, 60 if num <= 30 else 100
    if sku.startswith("UltraSSD"):
        return None, 8000, 300
    return f"S{num}", 500, 60


SKU_TIER = {
    "Premium_LRS": "Premium",
    "Premium_ZRS": "Premium",
    "StandardSSD_LRS": "Standard",
    "StandardSSD_ZRS": "Standard",
    "Standard_LRS": "Standard",
    "UltraSSD_LRS": "Ultra",
    "PremiumV2_LRS": "Premium",
}

DEFAULT_RULES = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", 65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)

VM_SERVICE_GUID = "fd8065f5-ffd0-4756-8788-e6a11bf36257"  # "Virtual Machines" in Service Health
HEALTH_NS = "/providers/Microsoft.ResourceHealth/availabilityStatuses/current"

_NAMESPACE = uuid.UUID("6b0d1f3e-2a57-4c39-9a0e-53b6f1e0c2aa")


def stable_guid(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, key))


def rid(sub: str, rg: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{rtype}/{name}"


def arm_head(resource_id: str, location: str, tags: dict | None) -> dict[str, Any]:
    """The fields an ARM resource document starts with: its name, id and type (read from the id
    of a top-level resource, as ``rid`` writes it), location and a copy of its tags."""
    parts = resource_id.split("/")
    return {"name": parts[8], "id": resource_id, "type": f"{parts[6]}/{parts[7]}", "location": location, "tags": dict(tags or {})}


def quirky_upper(resource_id: str) -> str:
    """ARM returns availability-set membership ids with the group and name upper-cased."""
    parts = resource_id.split("/")
    parts[4] = parts[4].upper()
    parts[-1] = parts[-1].upper()
    return "/".join(parts)


# ---------------------------------------------------------------------- builder


class EstateBuilder:
    """Collects the documents of one estate and keeps back references consistent."""

    def __init__(self, now: datetime, guid: Callable[[str], str] = stable_guid):
        self.clock = Clock(now)
        self.guid = guid
        self.subscriptions: list[dict] = []
        self.resource_groups: list[dict] = []
        self.resources: list[dict] = []
        self.statuses: list[dict] = []
        self.events: list[dict] = []
        self.impacted: dict[str, list[str]] = {}
        self.activity_log: list[dict] = []
        self.health_history: list[dict] = []
        self.changes: list[dict] = []
        self.tunnels: dict[str, str] = {}  # VPN connection id -> why it is down (backend/emulator/netpath_ops.py)
        self.guest: dict[str, dict] = {}
        self.docs: dict[str, dict] = {}  # id -> doc (exact case as built)
        self._subnets: dict[str, list] = {}  # subnet id -> [subnet doc, base "10.1.1.", next host, last host]
        self._rgs: set[str] = set()
        self._mac = 0x1B0000

    # ------------------------------------------------------------------ basics

    def add(self, doc: dict) -> dict:
        self.resources.append(doc)
        self.docs[doc["id"]] = doc
        return doc

    def subscription(self, sub: str, name: str, tenant: str, state: str = "Enabled") -> None:
        self.subscriptions.append(
            {
                "id": f"/subscriptions/{sub}",
                "subscriptionId": sub,
                "tenantId": tenant,
                "displayName": name,
                "state": state,
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "EnterpriseAgreement_2014-09-01" if "Dev" not in name else "MSDNDevTest_2014-09-01",
                    "spendingLimit": "Off",
                },
                "authorizationSource": "RoleBased",
                "managedByTenants": [],
            }
        )

    def resource_group(self, sub: str, name: str, location: str, tags: dict | None = None) -> str:
        gid = f"/subscriptions/{sub}/resourceGroups/{name}"
        if gid.lower() not in self._rgs:
            self._rgs.add(gid.lower())
            self.resource_groups.append(
                {
                    "id": gid,
                    "name": name,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": location,
                    "tags": dict(tags or {}),
                    "properties": {"provisioningState": "Succeeded"},
                }
            )
        return gid

    def mac(self) -> str:
        self._mac += 1
        m = self._mac
        return f"00-0D-3A-{(m >> 16) & 255:02X}-{(m >> 8) & 255:02X}-{m & 255:02X}"

    # ----------------------------------------------------------------- network

    def nsg(self, sub: str, rg: str, name: str, location: str, rules: list[tuple], tags: dict | None = None) -> str:
        """rules: (name, priority, access, protocol, dest ports (str|list), source (str|list)[, direction[, description]])."""
        nid = rid(sub, rg, "Microsoft.Network/networkSecurityGroups", name)
        custom = []
        for r in rules:
            rname, prio, access, proto, dports, src = r[:6]
            direction = r[6] if len(r) > 6 else "Inbound"
            desc = r[7] if len(r) > 7 else None
            props: dict[str, Any] = {"provisioningState": "Succeeded"}
            if desc:
                props["description"] = desc
            props["protocol"] = proto
            props["sourcePortRange"] = "*"
            if isinstance(dports, (list, tuple)):
                props["destinationPortRanges"] = list(dports)
            else:
                props["destinationPortRange"] = dports
            if isinstance(src, (list, tuple)):
                props["sourceAddressPrefixes"] = list(src)
            else:
                props["sourceAddressPrefix"] = src
            props["destinationAddressPrefix"] = "*"
            props["access"] = access
            props["priority"] = prio
            props["direction"] = direction
            custom.append({"name": rname, "id": f"{nid}/securityRules/{rname}", "properties": props})
        defaults = [
            {
                "name": n,
                "id": f"{nid}/defaultSecurityRules/{n}",
                "properties": {
                    "provisioningState": "Succeeded",
                    "description": d,
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": s,
                    "destinationAddressPrefix": t,
                    "access": a,
                    "priority": p,
                    "direction": dr,
                },
            }
            for n, d, s, t, a, p, dr in DEFAULT_RULES
        ]
        self.add(
            {
                **arm_head(nid, location, tags),
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceGuid": self.guid(nid),
                    "securityRules": custom,
                    "defaultSecurityRules": defaults,
                    "networkInterfaces": [],
                    "subnets": [],
                },
            }
        )
        return nid

    def vnet(
        self, sub: str, rg: str, name: str, location: str, prefixes: list[str], subnets: list[tuple[str, str, str | None]], tags: dict | None = None
    ) -> dict[str, str]:
        """subnets: (name, "10.1.1.0/24", nsg id or None). Returns name -> subnet id."""
        vid = rid(sub, rg, "Microsoft.Network/virtualNetworks", name)
        out = {}
        subnet_docs = []
        for sname, prefix, nsg_id in subnets:
            sid = f"{vid}/subnets/{sname}"
            props: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": prefix}
            if nsg_id:
                props["networkSecurityGroup"] = {"id": nsg_id}
                self.docs[nsg_id]["properties"]["subnets"].append({"id": sid})
            props["ipConfigurations"] = []
            props["privateEndpointNetworkPolicies"] = "Disabled"
            props["privateLinkServiceNetworkPolicies"] = "Enabled"
            doc = {"name": sname, "id": sid, "type": "Microsoft.Network/virtualNetworks/subnets", "properties": props}
            subnet_docs.append(doc)
            net, bits = prefix.split("/")
            o = net.split(".")
            size = 2 ** (32 - int(bits))
            self._subnets[sid] = [doc, o, int(o[3]) + 4, int(o[3]) + size - 2]
            out[sname] = sid
        self.add(
            {
                **arm_head(vid, location, tags),
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceGuid": self.guid(vid),
                    "addressSpace": {"addressPrefixes": list(prefixes)},
                    "subnets": subnet_docs,
                    "virtualNetworkPeerings": [],
                    "enableDdosProtection": False,
                },
            }
        )
        return out

    def next_private_ip(self, subnet_id: str) -> str:
        rec = self._subnets[subnet_id]
        host = rec[2]
        if host > rec[3]:
            raise ValueError(f"subnet {subnet_id} is full")
        rec[2] = host + 1
        o = rec[1]
        o2, o3 = int(o[2]) + host // 256, host % 256
        return f"{o[0]}.{o[1]}.{o2}.{o3}"

    def public_ip(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        address: str | None,
        *,
        sku: str = "Standard",
        allocation: str = "Static",
        zones: list[str] | None = None,
        label: str | None = None,
        delete_option: str | None = None,
        tags: dict | None = None,
    ) -> str:
        pid = rid(sub, rg, "Microsoft.Network/publicIPAddresses", name)
        props: dict[str, Any] = {"provisioningState": "Succeeded", "resourceGuid": self.guid(pid)}
        if address:
            props["ipAddress"] = address
        props["publicIPAddressVersion"] = "IPv4"
        props["publicIPAllocationMethod"] = allocation
        props["idleTimeoutInMinutes"] = 4
        if label:
            props["dnsSettings"] = {"domainNameLabel": label, "fqdn": f"{label}.{location}.cloudapp.azure.test"}
        props["ipTags"] = []
        props["ddosSettings"] = {"protectionMode": "VirtualNetworkInherited"}
        if delete_option:
            props["deleteOption"] = delete_option
        doc: dict[str, Any] = {
            **arm_head(pid, location, tags),
        }
        if zones:
            doc["zones"] = list(zones)
        doc["sku"] = {"name": sku, "tier": "Regional"}
        doc["properties"] = props
        self.add(doc)
        return pid

    def nic(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        subnet_id: str,
        *,
        vm_id: str | None,
        nsg_id: str | None = None,
        pip_id: str | None = None,
        pip_delete: str = "Detach",
        lb_pools: Sequence[str] = (),
        nat_rules: Sequence[str] = (),
        accelerated: bool = True,
        private_ip: str | None = None,
        tags: dict | None = None,
    ) -> tuple[str, str, str]:
        """Returns (nic id, ipconfig id, private ip)."""
        nid = rid(sub, rg, "Microsoft.Network/networkInterfaces", name)
        cid = f"{nid}/ipConfigurations/ipconfig1"
        ip = private_ip or self.next_private_ip(subnet_id)
        cprops: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "privateIPAddress": ip,
            "privateIPAllocationMethod": "Dynamic",
            "subnet": {"id": subnet_id},
            "primary": True,
            "privateIPAddressVersion": "IPv4",
        }
        if pip_id:
            cprops["publicIPAddress"] = {"id": pip_id, "properties": {"deleteOption": pip_delete}}
            self.docs[pip_id]["properties"]["ipConfiguration"] = {"id": cid}
        if lb_pools:
            cprops["loadBalancerBackendAddressPools"] = [{"id": p} for p in lb_pools]
            for p in lb_pools:
                self._lb_child(p)["properties"]["backendIPConfigurations"].append({"id": cid})
        if nat_rules:
            cprops["loadBalancerInboundNatRules"] = [{"id": r} for r in nat_rules]
            for r in nat_rules:
                self._lb_child(r)["properties"]["backendIPConfiguration"] = {"id": cid}
        self._subnets[subnet_id][0]["properties"]["ipConfigurations"].append({"id": cid})
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "resourceGuid": self.guid(nid),
            "ipConfigurations": [
                {
                    "name": "ipconfig1",
                    "id": cid,
                    "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                    "properties": cprops,
                }
            ],
            "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
            "macAddress": self.mac(),
            "enableAcceleratedNetworking": accelerated,
            "vnetEncryptionSupported": False,
            "enableIPForwarding": False,
            "disableTcpStateTracking": False,
        }
        if nsg_id:
            props["networkSecurityGroup"] = {"id": nsg_id}
            self.docs[nsg_id]["properties"]["networkInterfaces"].append({"id": nid})
        props["primary"] = True
        if vm_id:
            props["virtualMachine"] = {"id": vm_id}
        props["nicType"] = "Standard"
        self.add(
            {
                **arm_head(nid, location, tags),
                "properties": props,
            }
        )
        return nid, cid, ip

    def _lb_child(self, child_id: str) -> dict:
        lb_id, kind, name = child_id.rsplit("/", 2)
        for item in self.docs[lb_id]["properties"][kind]:
            if item["name"] == name:
                return item
        raise KeyError(child_id)

    def load_balancer(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        pip_id: str,
        *,
        pools: Sequence[str] = ("bepool",),
        nat: Sequence[tuple[str, int, int]] = (),
        lb_rules: Sequence[tuple[str, int, int, str]] = (),
        tags: dict | None = None,
    ) -> str:
        """nat: (rule name, frontend port, backend port); lb_rules: (name, fe port, be port, pool)."""
        lid = rid(sub, rg, "Microsoft.Network/loadBalancers", name)
        fe_id = f"{lid}/frontendIPConfigurations/fe-public"
        probe_ids = []
        probes: list[dict[str, Any]] = []
        rules: list[dict[str, Any]] = []
        for rname, fport, bport, pool in lb_rules:
            pr_id = f"{lid}/probes/probe-{bport}"
            if pr_id not in probe_ids:
                probe_ids.append(pr_id)
                probes.append(
                    {
                        "name": f"probe-{bport}",
                        "id": pr_id,
                        "type": "Microsoft.Network/loadBalancers/probes",
                        "properties": {
                            "provisioningState": "Succeeded",
                            "protocol": "Tcp",
                            "port": bport,
                            "intervalInSeconds": 5,
                            "numberOfProbes": 1,
                            "probeThreshold": 1,
                            "loadBalancingRules": [],
                        },
                    }
                )
            rules.append(
                {
                    "name": rname,
                    "id": f"{lid}/loadBalancingRules/{rname}",
                    "type": "Microsoft.Network/loadBalancers/loadBalancingRules",
                    "properties": {
                        "provisioningState": "Succeeded",
                        "frontendIPConfiguration": {"id": fe_id},
                        "backendAddressPool": {"id": f"{lid}/backendAddressPools/{pool}"},
                        "probe": {"id": pr_id},
                        "protocol": "Tcp",
                        "loadDistribution": "Default",
                        "frontendPort": fport,
                        "backendPort": bport,
                        "idleTimeoutInMinutes": 4,
                        "enableFloatingIP": False,
                        "enableTcpReset": True,
                        "disableOutboundSnat": True,
                    },
                }
            )
            for p in probes:
                if p["id"] == pr_id:
                    p["properties"]["loadBalancingRules"].append({"id": f"{lid}/loadBalancingRules/{rname}"})
        nat_docs = [
            {
                "name": nname,
                "id": f"{lid}/inboundNatRules/{nname}",
                "type": "Microsoft.Network/loadBalancers/inboundNatRules",
                "properties": {
                    "provisioningState": "Succeeded",
                    "frontendIPConfiguration": {"id": fe_id},
                    "frontendPort": fport,
                    "backendPort": bport,
                    "protocol": "Tcp",
                    "idleTimeoutInMinutes": 4,
                    "enableFloatingIP": False,
                    "enableTcpReset": False,
                },
            }
            for nname, fport, bport in nat
        ]
        pool_docs = [
            {
                "name": p,
                "id": f"{lid}/backendAddressPools/{p}",
                "type": "Microsoft.Network/loadBalancers/backendAddressPools",
                "properties": {
                    "provisioningState": "Succeeded",
                    "backendIPConfigurations": [],
                    "loadBalancingRules": [{"id": r["id"]} for r in rules if r["properties"]["backendAddressPool"]["id"].endswith("/" + p)],
                },
            }
            for p in pools
        ]
        self.docs[pip_id]["properties"]["ipConfiguration"] = {"id": fe_id}
        self.add(
            {
                **arm_head(lid, location, tags),
                "sku": {"name": "Standard", "tier": "Regional"},
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceGuid": self.guid(lid),
                    "frontendIPConfigurations": [
                        {
                            "name": "fe-public",
                            "id": fe_id,
                            "type": "Microsoft.Network/loadBalancers/frontendIPConfigurations",
                            "properties": {
                                "provisioningState": "Succeeded",
                                "privateIPAllocationMethod": "Dynamic",
                                "publicIPAddress": {"id": pip_id},
                                "inboundNatRules": [{"id": n["id"]} for n in nat_docs],
                                "loadBalancingRules": [{"id": r["id"]} for r in rules],
                            },
                        }
                    ],
                    "backendAddressPools": pool_docs,
                    "loadBalancingRules": rules,
                    "probes": probes,
                    "inboundNatRules": nat_docs,
                    "inboundNatPools": [],
                    "outboundRules": [],
                },
            }
        )
        return lid

    # ----------------------------------------------------------------- storage

    def storage_account(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        *,
        created: int,
        default_action: str = "Allow",
        ip_rules: Sequence[str] = (),
        public_network_access: str = "Enabled",
        sku: str = "Standard_LRS",
        tags: dict | None = None,
    ) -> str:
        """A storage account as ``StorageAccounts_GetProperties`` returns it (its firewall: ``networkAcls``)."""
        sid = rid(sub, rg, "Microsoft.Storage/storageAccounts", name)
        endpoints = {svc: f"https://{name}.{svc}.core.windows.net/" for svc in ("blob", "queue", "table", "file")}
        self.add(
            {
                "id": sid,
                "name": name,
                "type": "Microsoft.Storage/storageAccounts",
                "location": location,
                "kind": "StorageV2",
                "sku": {"name": sku, "tier": "Standard"},
                "tags": dict(tags or {}),
                "properties": {
                    "provisioningState": "Succeeded",
                    "creationTime": self.clock.z(created),
                    "primaryLocation": location,
                    "statusOfPrimary": "available",
                    "primaryEndpoints": endpoints,
                    "accessTier": "Hot",
                    "supportsHttpsTrafficOnly": True,
                    "minimumTlsVersion": "TLS1_2",
                    "allowBlobPublicAccess": False,
                    "publicNetworkAccess": public_network_access,
                    "networkAcls": {
                        "bypass": "AzureServices",
                        "defaultAction": default_action,
                        "ipRules": [{"value": value, "action": "Allow"} for value in ip_rules],
                        "virtualNetworkRules": [],
                        "resourceAccessRules": [],
                    },
                    "encryption": {
                        "keySource": "Microsoft.Storage",
                        "services": {
                            "blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": self.clock.z(created)},
                            "file": {"enabled": True, "keyType": "Account", "lastEnabledTime": self.clock.z(created)},
                        },
                    },
                },
            }
        )
        return sid

    # ----------------------------------------------------------------- compute

    def availability_set(
        self, sub: str, rg: str, name: str, location: str, *, fault_domains: int = 2, update_domains: int = 5, tags: dict | None = None
    ) -> str:
        aid = rid(sub, rg, "Microsoft.Compute/availabilitySets", name)
        self.add(
            {
                **arm_head(aid, location, tags),
                "sku": {"name": "Aligned"},
                "properties": {
                    "platformFaultDomainCount": fault_domains,
                    "platformUpdateDomainCount": update_domains,
                    "virtualMachines": [],
                },
            }
        )
        return aid

    def scale_set(
        self, sub: str, rg: str, name: str, location: str, size: str, *, capacity: int, zones: list[str] | None = None, tags: dict | None = None
    ) -> str:
        sid = rid(sub, rg, "Microsoft.Compute/virtualMachineScaleSets", name)
        doc: dict[str, Any] = {
            **arm_head(sid, location, tags),
            "sku": {"name": size, "tier": "Standard", "capacity": capacity},
        }
        if zones:
            doc["zones"] = list(zones)
        doc["properties"] = {
            "singlePlacementGroup": False,
            "orchestrationMode": "Flexible",
            "platformFaultDomainCount": 1,
            "provisioningState": "Succeeded",
            "uniqueId": self.guid(sid),
            "timeCreated": self.clock.o(-40 * DAY),
        }
        self.add(doc)
        return sid

    def disk(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        *,
        sku: str,
        size_gb: int,
        vm_id: str | None,
        os_type: str | None = None,
        image: dict | None = None,
        gen: str | None = None,
        trusted_launch: bool = False,
        zones: list[str] | None = None,
        state: str = "Attached",
        created: int = -30 * DAY,
        tags: dict | None = None,
    ) -> str:
        did = rid(sub, rg, "Microsoft.Compute/disks", name)
        tier, iops, mbps = disk_tier(sku, size_gb)
        props: dict[str, Any] = {}
        if os_type:
            props["osType"] = os_type
            props["hyperVGeneration"] = gen or "V1"
            props["supportedCapabilities"] = {"architecture": "x64", "acceleratedNetwork": True}
        if image:
            props["creationData"] = {
                "createOption": "FromImage",
                "imageReference": {
                    "id": (
                        f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
                        f"{image['publisher']}/ArtifactTypes/VMImage/Offers/{image['offer']}/Skus/{image['sku']}"
                        f"/Versions/{image['exact']}"
                    ),
                },
            }
        else:
            props["creationData"] = {"createOption": "Empty"}
        props["diskSizeGB"] = size_gb
        props["diskIOPSReadWrite"] = iops
        props["diskMBpsReadWrite"] = mbps
        props["encryption"] = {"type": "EncryptionAtRestWithPlatformKey"}
        props["networkAccessPolicy"] = "AllowAll"
        props["publicNetworkAccess"] = "Enabled"
        if trusted_launch:
            props["securityProfile"] = {"securityType": "TrustedLaunch"}
        props["timeCreated"] = self.clock.o(created)
        props["provisioningState"] = "Succeeded"
        props["diskState"] = state
        props["diskSizeBytes"] = size_gb * 1073741824
        props["uniqueId"] = self.guid(did)
        if tier:
            props["tier"] = tier
        doc = arm_head(did, location, tags)
        if vm_id:
            doc["managedBy"] = vm_id
        if zones:
            doc["zones"] = list(zones)
        doc["sku"] = {"name": sku, "tier": SKU_TIER.get(sku, "Standard")}
        doc["properties"] = props
        self.add(doc)
        return did

    def snapshot(self, disk_id: str, name: str, *, at: int, tags: dict | None = None) -> str:
        """A full snapshot of a disk of the estate taken `at` seconds from now (Snapshots_CreateOrUpdate, Copy)."""
        disk = self.docs[disk_id]
        props = disk["properties"]
        p = parse_id(disk_id)
        sid = rid(p.subscription, p.resource_group, "Microsoft.Compute/snapshots", name)
        doc: dict[str, Any] = {
            **arm_head(sid, disk["location"], tags),
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {
                **{k: props[k] for k in ("osType", "hyperVGeneration", "supportedCapabilities", "securityProfile") if k in props},
                "creationData": {"createOption": "Copy", "sourceResourceId": disk_id, "sourceUniqueId": props.get("uniqueId")},
                "diskSizeGB": props.get("diskSizeGB"),
                "diskSizeBytes": props.get("diskSizeBytes"),
                "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                "incremental": False,
                "networkAccessPolicy": "AllowAll",
                "publicNetworkAccess": "Enabled",
                "timeCreated": self.clock.o(at),
                "uniqueId": self.guid(sid),
                "provisioningState": "Succeeded",
            },
        }
        self.add(doc)
        return sid

    def restore_point(self, vm_doc: dict, name: str, *, at: int, consistency: str = "ApplicationConsistent", tags: dict | None = None) -> str:
        """A restore point of every disk of a VM of the estate, taken `at` seconds from now, in the
        VM's collection ``rpc-<vm>`` (made here when it is not yet): the collection, the restore
        point with its sourceMetadata, and a disk restore point per disk, as Azure keeps them."""
        p = parse_id(vm_doc["id"])
        vprops = vm_doc["properties"]
        rpc = rid(p.subscription, p.resource_group, "Microsoft.Compute/restorePointCollections", f"rpc-{vm_doc['name']}")
        if rpc not in self.docs:
            self.add(
                {
                    **arm_head(rpc, vm_doc["location"], tags),
                    "properties": {
                        "source": {"id": vm_doc["id"], "location": vm_doc["location"]},
                        "restorePointCollectionId": self.guid(rpc),
                        "provisioningState": "Succeeded",
                    },
                }
            )
        rp = f"{rpc}/restorePoints/{name}"
        storage = vprops["storageProfile"]
        disk_points: list[dict] = []  # added after their restore point

        def entry(ref: dict, os_type: str | None) -> dict:
            disk = self.docs[ref["managedDisk"]["id"]]
            dprops = disk["properties"]
            drp = f"{rp}/diskRestorePoints/{disk['name']}_{self.guid(rp + disk['id'])}"
            disk_points.append(
                {
                    "id": drp,
                    "name": drp.rsplit("/", 1)[-1],
                    "type": "Microsoft.Compute/restorePointCollections/restorePoints/diskRestorePoints",
                    "properties": {
                        "timeCreated": self.clock.o(at),
                        "sourceResourceId": disk["id"],
                        "sourceUniqueId": dprops.get("uniqueId"),
                        "sourceResourceLocation": disk["location"],
                        **{k: dprops[k] for k in ("osType", "hyperVGeneration", "supportedCapabilities") if k in dprops},
                        "familyId": self.guid("family" + disk["id"]),
                        "networkAccessPolicy": "AllowAll",
                        "publicNetworkAccess": "Enabled",
                        "completionPercent": 100.0,
                        "replicationState": "Succeeded",
                    },
                }
            )
            out = {k: ref[k] for k in ("lun", "name", "caching") if k in ref}
            out["diskSizeGB"] = dprops.get("diskSizeGB")
            out["managedDisk"] = {"id": disk["id"], "storageAccountType": disk["sku"]["name"]}
            out["diskRestorePoint"] = {"id": drp}
            if os_type:
                out["osType"] = os_type
            return out

        os_ref = storage["osDisk"]
        point = {
            "name": name,
            "id": rp,
            "type": "Microsoft.Compute/restorePointCollections/restorePoints",
            "properties": {
                "consistencyMode": consistency,
                "excludeDisks": [],
                "sourceMetadata": {
                    "vmId": vprops.get("vmId"),
                    "location": vm_doc["location"],
                    "hardwareProfile": dict(vprops.get("hardwareProfile") or {}),
                    "storageProfile": {
                        "osDisk": entry(os_ref, os_ref.get("osType")),
                        "dataDisks": [entry(ref, None) for ref in storage.get("dataDisks") or ()],
                        "diskControllerType": storage.get("diskControllerType") or "SCSI",
                    },
                    "osProfile": {k: v for k, v in (vprops.get("osProfile") or {}).items() if k in ("computerName", "adminUsername")},
                    "securityProfile": dict(vprops.get("securityProfile") or {}),
                    "diagnosticsProfile": dict(vprops.get("diagnosticsProfile") or {}),
                },
                "timeCreated": self.clock.o(at),
                "provisioningState": "Succeeded",
            },
        }
        self.add(point)
        for doc in disk_points:
            self.add(doc)
        return rp

    def vm(
        self,
        sub: str,
        rg: str,
        name: str,
        location: str,
        *,
        image: str,
        size: str,
        subnet_id: str,
        nsg_id: str | None = None,
        public_ip: str | None = None,
        pip_sku: str = "Standard",
        pip_label: str | None = None,
        zones: list[str] | None = None,
        avset: str | None = None,
        fault_domain: int | None = None,
        update_domain: int | None = None,
        vmss: str | None = None,
        spot: bool = False,
        ephemeral: bool = False,
        trusted_launch: bool = False,
        vhd_account: str | None = None,
        delete_all: bool = False,
        os_sku: str = "Premium_LRS",
        os_size: int | None = None,
        data_disks: Sequence[tuple[int, str]] = (),
        power: str = "running",
        agent: str = "ready",
        maintenance: dict | None = None,
        boot_diag: str = "managed",
        lb_pools: Sequence[str] = (),
        nat_rules: Sequence[str] = (),
        created: int = -120 * DAY,
        uptime: int = 9 * DAY,
        admin: str | None = None,
        extensions: bool = True,
        instance_view: bool | None = True,
        tags: dict | None = None,
        private_ip: str | None = None,
        more_extensions: Sequence[dict] = (),
        user_data: str | None = None,
    ) -> dict:
        """Builds a VM with its NIC, public IP, disks and instance view. Returns facts for guest/serial.

        ``more_extensions``: further extensions as ``{"name", "properties": {publisher, type,
        typeHandlerVersion, settings, ...}}`` (protected settings never appear: ARM never returns
        them). ``user_data``: the VM's userData (base64), returned only with ``$expand=userData``."""
        img = IMAGES[image]
        os_type = img["os"]
        vid = rid(sub, rg, "Microsoft.Compute/virtualMachines", name)
        vcpus, _mem, _temp_gb, accel_ok = SIZES[size]
        tags = dict(tags or {})
        clock = self.clock
        deallocated = power == "deallocated"
        disk_state = "Reserved" if deallocated else "Attached"
        detach = "Delete" if delete_all else "Detach"
        gen = img["gen"]
        short = name.replace("_", "-")

        # -- public IP and NIC
        pip_id = None
        address = None
        if public_ip is not None or pip_label:
            allocation = "Static" if pip_sku == "Standard" else "Dynamic"
            address = public_ip
            if pip_sku != "Standard" and deallocated:
                address = None  # a Basic dynamic IP is released while the VM is deallocated
            pip_zones = (list(zones) if zones else ["1", "2", "3"]) if (pip_sku == "Standard" and REGIONS.get(location, ("", False))[1]) else None
            pip_id = self.public_ip(
                sub, rg, f"{name}-ip", location, address, sku=pip_sku, allocation=allocation, zones=pip_zones, label=pip_label, delete_option=detach, tags=tags
            )
        nic_id, _cid, ip = self.nic(
            sub,
            rg,
            f"{short}-nic",
            location,
            subnet_id,
            vm_id=vid,
            nsg_id=nsg_id,
            pip_id=pip_id,
            pip_delete=detach,
            lb_pools=lb_pools,
            nat_rules=nat_rules,
            accelerated=accel_ok and vcpus >= 2,
            private_ip=private_ip,
            tags=tags,
        )

        # -- storage
        image_ref = None
        if not vhd_account:
            image_ref = {"publisher": img["publisher"], "offer": img["offer"], "sku": img["sku"], "version": "latest", "exactVersion": img["exact"]}
        os_size = os_size or (30 if os_type == "Linux" else 127)
        os_name = f"{name}_OsDisk_1_{self.guid(vid + '#os').replace('-', '')}"
        os_disk: dict[str, Any] = {"osType": os_type, "name": os_name}
        disk_names = [os_name]
        if vhd_account:
            os_disk["name"] = f"{name}-osdisk"
            disk_names[0] = os_disk["name"]
            os_disk["createOption"] = "Attach"
            os_disk["vhd"] = {"uri": f"https://{vhd_account}.blob.core.windows.net/vhds/{name}-osdisk.vhd"}
            os_disk["caching"] = "ReadWrite"
        elif ephemeral:
            os_disk["createOption"] = "FromImage"
            os_disk["caching"] = "ReadOnly"
            os_disk["diffDiskSettings"] = {"option": "Local", "placement": "ResourceDisk"}
            os_disk["managedDisk"] = {
                "storageAccountType": "Standard_LRS",
                "id": rid(sub, rg, "Microsoft.Compute/disks", os_name),
            }
        else:
            os_disk["createOption"] = "FromImage"
            os_disk["caching"] = "ReadWrite"
            did = self.disk(
                sub,
                rg,
                os_name,
                location,
                sku=os_sku,
                size_gb=os_size,
                vm_id=vid,
                os_type=os_type,
                image=img,
                gen=gen,
                trusted_launch=trusted_launch,
                zones=zones,
                state=disk_state,
                created=created,
                tags=tags,
            )
            os_disk["managedDisk"] = {"storageAccountType": os_sku, "id": did}
        os_disk["deleteOption"] = "Delete" if ephemeral else detach
        os_disk["diskSizeGB"] = os_size
        data = []
        for lun, (dsize, dsku) in enumerate(data_disks):
            entry: dict[str, Any] = {"lun": lun}
            if vhd_account:
                dname = f"{name}-data{lun}"
                entry["name"] = dname
                entry["createOption"] = "Attach"
                entry["vhd"] = {"uri": f"https://{vhd_account}.blob.core.windows.net/vhds/{dname}.vhd"}
                entry["caching"] = "None"
            else:
                dname = f"{name}-datadisk-{lun:02d}"
                entry["name"] = dname
                entry["createOption"] = "Attach" if lun % 2 else "Empty"
                entry["caching"] = "None" if dsku.startswith("Ultra") else "ReadOnly"
                ddid = self.disk(sub, rg, dname, location, sku=dsku, size_gb=dsize, vm_id=vid, zones=zones, state=disk_state, created=created, tags=tags)
                entry["managedDisk"] = {"storageAccountType": dsku, "id": ddid}
            entry["deleteOption"] = detach
            entry["diskSizeGB"] = dsize
            entry["toBeDetached"] = False
            entry["writeAcceleratorEnabled"] = False
            data.append(entry)
            disk_names.append(dname)
        storage: dict[str, Any] = {}
        if image_ref:
            storage["imageReference"] = image_ref
        storage["osDisk"] = os_disk
        storage["dataDisks"] = data
        if not vhd_account:
            storage["diskControllerType"] = "SCSI"

        # -- the VM
        vm_guid = self.guid(vid + "#vmId")
        props: dict[str, Any] = {"vmId": vm_guid}
        if avset:
            props["availabilitySet"] = {"id": quirky_upper(avset)}
            self.docs[avset]["properties"]["virtualMachines"].append({"id": quirky_upper(vid)})
        if vmss:
            props["virtualMachineScaleSet"] = {"id": vmss}
        props["hardwareProfile"] = {"vmSize": size}
        props["storageProfile"] = storage
        if any(s.startswith("Ultra") for _, s in data_disks):
            props["additionalCapabilities"] = {"ultraSSDEnabled": True, "hibernationEnabled": False}
        if not vhd_account:  # specialized (attached) disks carry no osProfile
            admin = admin or ("azureuser" if os_type == "Linux" else "contosoadmin")
            osp: dict[str, Any] = {"computerName": name if os_type == "Linux" else name[:15], "adminUsername": admin}
            if os_type == "Linux":
                osp["linuxConfiguration"] = {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {
                                "path": f"/home/{admin}/.ssh/authorized_keys",
                                "keyData": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8Qh0Fy2C8oVt9kWd5uJb3mN0aztriageDemoKey ops@contoso",
                            }
                        ]
                    },
                    "provisionVMAgent": True,
                    "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"},
                }
            else:
                osp["windowsConfiguration"] = {
                    "provisionVMAgent": True,
                    "enableAutomaticUpdates": True,
                    "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"},
                }
            osp["secrets"] = []
            osp["allowExtensionOperations"] = True
            osp["requireGuestProvisionSignal"] = True
            props["osProfile"] = osp
        props["networkProfile"] = {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True, "deleteOption": detach}}]}
        if boot_diag == "off":
            props["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": False}}
        elif boot_diag == "managed":
            props["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": True}}
        else:
            props["diagnosticsProfile"] = {"bootDiagnostics": {"enabled": True, "storageUri": boot_diag}}
        if trusted_launch:
            props["securityProfile"] = {
                "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
                "securityType": "TrustedLaunch",
            }
        if spot:
            props["priority"] = "Spot"
            props["evictionPolicy"] = "Deallocate"
            props["billingProfile"] = {"maxPrice": -1}
        if os_type == "Windows" and img["publisher"] != "MicrosoftWindowsDesktop":
            props["licenseType"] = "Windows_Server"
        props["provisioningState"] = "Updating" if power == "starting" else "Succeeded"
        props["timeCreated"] = clock.o(created)
        if user_data is not None:
            props["userData"] = user_data

        ext_name = "AzureMonitorLinuxAgent" if os_type == "Linux" else "AzureMonitorWindowsAgent"
        ext_version = "1.33" if os_type == "Linux" else "1.30"
        if instance_view is None:  # only where the emulator's derived "running, agent ready" view would differ
            instance_view = power != "running" or agent != "ready" or bool(maintenance) or fault_domain is not None or boot_diag not in ("off", "managed")
        extra = [
            {
                "name": e["name"],
                "id": f"{vid}/extensions/{e['name']}",
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "location": location,
                "properties": dict(e["properties"], provisioningState="Succeeded"),
            }
            for e in more_extensions
        ]
        if instance_view:
            props["instanceView"] = self._instance_view(
                name,
                img,
                power,
                agent,
                maintenance,
                fault_domain,
                update_domain,
                disk_names,
                boot_diag,
                ext_name if extensions else None,
                ext_version,
                uptime,
                vm_guid,
            )
            if extra and power == "running" and agent != "not-ready":
                iv = props["instanceView"]
                for e in extra:
                    p = e["properties"]
                    handler = f"{p['publisher']}.{p['type']}"
                    ok = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
                    iv.setdefault("vmAgent", {}).setdefault("extensionHandlers", []).append(
                        {"type": handler, "typeHandlerVersion": p["typeHandlerVersion"], "status": dict(ok, displayStatus="Ready")}
                    )
                    iv.setdefault("extensions", []).append(
                        {"name": e["name"], "type": handler, "typeHandlerVersion": p["typeHandlerVersion"], "statuses": [dict(ok, message="Enable succeeded")]}
                    )
        doc = arm_head(vid, location, tags)
        if zones:
            doc["zones"] = list(zones)
        doc["properties"] = props
        if extensions:
            doc["resources"] = [
                {
                    "name": ext_name,
                    "id": f"{vid}/extensions/{ext_name}",
                    "type": "Microsoft.Compute/virtualMachines/extensions",
                    "location": location,
                    "properties": {
                        "autoUpgradeMinorVersion": True,
                        "enableAutomaticUpgrade": True,
                        "provisioningState": "Succeeded",
                        "publisher": "Microsoft.Azure.Monitor",
                        "type": ext_name,
                        "typeHandlerVersion": ext_version,
                        "settings": {},
                    },
                }
            ]
        if extra:
            doc["resources"] = doc.get("resources", []) + extra
        self.add(doc)
        return {
            "id": vid,
            "private_ip": ip,
            "public_ip": address,
            "os": os_type,
            "image": img,
            "nic": nic_id,
            "pip": pip_id,
            "instance_view": bool(instance_view),
        }

    def _instance_view(self, name, img, power, agent, maintenance, fd, ud, disk_names, boot_diag, ext_name, ext_version, uptime, vm_guid) -> dict:
        clock = self.clock
        os_type = img["os"]
        iv: dict[str, Any] = {}
        if fd is not None:
            iv["platformUpdateDomain"] = ud if ud is not None else 0
            iv["platformFaultDomain"] = fd
        iv["computerName"] = name if os_type == "Linux" else name[:15]
        if power == "running" or power == "starting":
            iv["osName"] = img["os_name"]
            iv["osVersion"] = img["os_version"]
        boot_t = clock.o(-uptime)
        if power == "running":
            if agent == "not-ready":
                iv["vmAgent"] = {
                    "vmAgentVersion": "Unknown",
                    "statuses": [
                        {
                            "code": "ProvisioningState/Unavailable",
                            "level": "Warning",
                            "displayStatus": "Not Ready",
                            "message": "VM Agent is unresponsive.",
                            "time": clock.o(-3 * HOUR - 17 * MINUTE),
                        }
                    ],
                    "extensionHandlers": [],
                }
            else:
                iv["vmAgent"] = {
                    "vmAgentVersion": AGENT_VERSION[os_type],
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded",
                            "level": "Info",
                            "displayStatus": "Ready",
                            "message": "GuestAgent is running and accepting new configurations.",
                            "time": clock.o(-2 * MINUTE),
                        }
                    ],
                    "extensionHandlers": (
                        [
                            {
                                "type": f"Microsoft.Azure.Monitor.{ext_name}",
                                "typeHandlerVersion": ext_version,
                                "status": {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"},
                            }
                        ]
                        if ext_name
                        else []
                    ),
                }
        if maintenance:
            iv["maintenanceRedeployStatus"] = maintenance
        iv["disks"] = [
            {"name": d, "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": boot_t}]}
            for d in disk_names
        ]
        if boot_diag not in ("off", "managed"):
            container = f"bootdiagnostics-{name.replace('-', '').replace('_', '')[:9].lower()}-{vm_guid}"
            base = boot_diag.rstrip("/")
            iv["bootDiagnostics"] = {
                "consoleScreenshotBlobUri": f"{base}/{container}/{name}.{vm_guid}.screenshot.bmp",
                "serialConsoleLogBlobUri": f"{base}/{container}/{name}.{vm_guid}.serialconsole.log",
            }
        if ext_name and power == "running":
            ok = agent != "not-ready"
            iv["extensions"] = [
                {
                    "name": ext_name,
                    "type": f"Microsoft.Azure.Monitor.{ext_name}",
                    "typeHandlerVersion": ext_version,
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded" if ok else "ProvisioningState/Unavailable",
                            "level": "Info" if ok else "Warning",
                            "displayStatus": "Provisioning succeeded" if ok else "Not Ready",
                            "message": "Enable succeeded" if ok else "Extension status not available: the VM agent is not ready.",
                        }
                    ],
                }
            ]
        iv["hyperVGeneration"] = img["gen"]
        prov = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": boot_t}
        if power == "starting":
            prov = {"code": "ProvisioningState/updating", "level": "Info", "displayStatus": "Updating"}
        iv["statuses"] = [prov, {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}]
        return iv

    def maintenance(self, pre_start: int, pre_end: int, mw_start: int, mw_end: int) -> dict:
        """Pending platform maintenance, its windows in seconds from the estate's now. Azure
        reports isCustomerInitiatedMaintenanceAllowed true only inside the self-service window."""
        c = self.clock
        return {
            "isCustomerInitiatedMaintenanceAllowed": pre_start <= 0 <= pre_end,
            "preMaintenanceWindowStartTime": c.o(pre_start),
            "preMaintenanceWindowEndTime": c.o(pre_end),
            "maintenanceWindowStartTime": c.o(mw_start),
            "maintenanceWindowEndTime": c.o(mw_end),
        }

    # ------------------------------------------------------------ resource health

    def health(self, resource_id: str, location: str, properties: dict) -> None:
        self.statuses.append(
            {
                "id": resource_id + HEALTH_NS,
                "name": "current",
                "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
                "location": location,
                "properties": properties,
            }
        )

    def past_health(self, resource_id: str, location: str, properties: dict) -> None:
        """An earlier availability status of the resource (Resource Health's history)."""
        name = self.guid(f"{resource_id}|{properties.get('occuredTime')}|{properties.get('title')}")
        self.health_history.append(
            {
                "id": f"{resource_id}/providers/Microsoft.ResourceHealth/availabilityStatuses/{name}",
                "name": name,
                "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
                "location": location,
                "properties": properties,
            }
        )

    def activity(
        self,
        resource_id: str,
        operation: str,
        *,
        at: int,
        caller: str,
        statuses: Sequence[str] = ("Started", "Succeeded"),
        client_ip: str = "",
        properties: dict | None = None,
        took: int = 20,
    ) -> None:
        """One operation in the activity log: its Started entry and the ones after it (Accepted, Succeeded,
        Failed), ``took`` seconds apart, under one correlation id."""
        from ..activitylog import event_doc

        sub = resource_id.split("/")[2]
        tenant = next((s.get("tenantId", "") for s in self.subscriptions if s.get("subscriptionId", "").lower() == sub.lower()), "")
        correlation = self.activity_correlation(resource_id, operation, at)
        method = "DELETE" if operation.endswith("/delete") else ("PUT" if operation.endswith("/write") else "POST")
        for n, status in enumerate(statuses):
            when = self.clock.z(at + (0 if n == 0 else 1 if status == "Accepted" else took))
            self.activity_log.append(
                event_doc(
                    subscription_id=sub,
                    tenant_id=tenant,
                    resource_id=resource_id,
                    operation=operation,
                    status=status,
                    at=when,
                    caller=caller,
                    correlation_id=correlation,
                    method=method,
                    client_ip=client_ip,
                    event_name="BeginRequest" if status == "Started" else "EndRequest",
                    sub_status={"Accepted": "Accepted", "Succeeded": "OK"}.get(status, ""),
                    level="Error" if status == "Failed" else "Informational",
                    properties=properties,
                )
            )

    def activity_correlation(self, resource_id: str, operation: str, at: int) -> str:
        """The correlation id ``activity`` gives that operation (a change made by it carries it too)."""
        return self.guid(f"activity|{resource_id}|{operation}|{at}")

    def change(
        self,
        target_id: str,
        change_type: str,
        *,
        at: int,
        changed_by: str,
        client_type: str,
        operation: str,
        changes: dict[str, tuple[Any, Any]],
        correlation_id: str = "",
    ) -> None:
        """A Resource Graph ``resourcechanges`` row: the properties that changed (previous, new) and who changed them."""
        name = self.guid(f"change|{target_id}|{at}|{operation}")
        self.changes.append(
            change_row(
                target_id,
                change_type,
                name=name,
                timestamp=self.clock.z(at),
                correlation=correlation_id or self.guid(f"correlation|{name}"),
                changed_by=changed_by,
                client=client_type,
                operation=operation,
                changes={key: property_change(before, after) for key, (before, after) in changes.items()},
                snapshots=(self.guid(f"snapshot|{name}|before"), self.guid(f"snapshot|{name}|after")),
            )
        )

    def impacted_by(self, tracking_id: str, resource_id: str) -> None:
        """The event lists this resource as impacted (Resource Health impactedResources)."""
        self.impacted.setdefault(tracking_id.lower(), []).append(resource_id)

    def service_event(self, c: Clock, sub: str, tracking_id: str, **props: Any) -> None:
        """A Service Health event of subscription SUB (event_props gives its properties from ``props``)."""
        self.event(sub, tracking_id, event_props(c, tracking_id=tracking_id, subscription=sub, **props))

    def service_issue(
        self,
        sub: str,
        tracking_id: str,
        *,
        title: str,
        region: str,
        updates: list[tuple[int, str]],
        start: int,
        mitigation: int | None = None,
        event_level: str = "Warning",
        **props: Any,
    ) -> None:
        """A service issue in REGION as subscription SUB sees it: Active until it is mitigated, then
        Resolved; its summary is its newest update (``updates`` run oldest first)."""
        status = "Active" if mitigation is None else "Resolved"
        self.service_event(
            self.clock,
            sub,
            tracking_id,
            event_type="ServiceIssue",
            status=status,
            title=title,
            summary=updates[-1][1],
            level="Warning",
            event_level=event_level,
            start=start,
            mitigation=mitigation,
            regions=[(region, status, updates)],
            **props,
        )

    def planned_maintenance(self, sub: str, tracking_id: str, *, title: str, summary: str, regions: Sequence[str], start: int, end: int) -> None:
        """Planned maintenance of VM hosts in REGIONS from START to END, announced two days ago."""
        announced = (-2 * DAY, "Maintenance scheduled. Use the self-service window to redeploy at a time that suits you.")
        self._notice(self.clock, sub, tracking_id, "PlannedMaintenance", title=title, summary=summary, regions=regions, update=announced, start=start, end=end)

    def agent_advisory(self, c: Clock, sub: str, tracking_id: str, regions: Sequence[str], summary: str) -> None:
        """The health advisory that asks to update outdated VM agents, active in REGIONS for ten days."""
        title = "Action recommended: update the Azure VM agent to a supported version"
        self._notice(
            c, sub, tracking_id, "HealthAdvisory", title=title, summary=summary, regions=regions, update=(-10 * DAY, summary), start=-10 * DAY, end=None
        )

    def _notice(
        self,
        c: Clock,
        sub: str,
        tracking_id: str,
        event_type: str,
        *,
        title: str,
        summary: str,
        regions: Sequence[str],
        update: tuple[int, str],
        start: int,
        end: int | None,
    ) -> None:
        """An active informational event in REGIONS with one update (planned maintenance, an advisory)."""
        self.service_event(
            c,
            sub,
            tracking_id,
            event_type=event_type,
            status="Active",
            title=title,
            summary=summary,
            level="Warning",
            event_level="Informational",
            start=start,
            mitigation=end,
            regions=[(r, "Active", [update]) for r in regions],
        )

    def event(self, sub: str, tracking_id: str, properties: dict) -> None:
        self.events.append(
            {
                "id": f"/subscriptions/{sub}/providers/Microsoft.ResourceHealth/events/{tracking_id}",
                "name": tracking_id,
                "type": "/providers/Microsoft.ResourceHealth/events",
                "properties": properties,
            }
        )

    # --------------------------------------------------------------------- guest

    def guest_facts(self, facts: dict, *, name: str, boot: str = "ok", ports: dict | None = None, uptime: int = 9 * DAY, **extra: Any) -> None:
        os_type = facts["os"]
        if ports is None:
            ports = {"22": "ssh"} if os_type == "Linux" else {"3389": "rdp"}
        g: dict[str, Any] = {"ports": dict(ports), "boot": boot}
        g.update({k: v for k, v in extra.items() if v is not None})
        if not facts.get("instance_view", True):
            # what the emulator needs to derive a faithful running instance view
            img = facts["image"]
            g["os_name"] = img["os_name"]
            g["os_version"] = img["os_version"]
            g["hyper_v_generation"] = img["gen"]
        g["serial_log"] = serial.serial_log(
            name=name,
            image=facts["image"],
            private_ip=facts["private_ip"],
            boot=boot,
            boot_time=self.clock.at(-uptime),
            agent_ready=extra.get("agent") != "not-ready",
        )
        self.guest[facts["id"]] = g

    def finish(self) -> dict:
        return {
            "now": self.clock.now.isoformat(),  # the instant the estate was built for (the emulator's estate clock)
            "impactedResources": self.impacted,  # tracking id (lower) -> resource ids the event lists
            "subscriptions": self.subscriptions,
            "resourceGroups": self.resource_groups,
            "resources": self.resources,
            "availabilityStatuses": self.statuses,
            "events": self.events,
            "activityLog": self.activity_log,  # activity-log EventData documents (backend/emulator/activitylog.py)
            "availabilityHistory": self.health_history,  # earlier Resource Health statuses of resources
            "resourceChanges": self.changes,  # Resource Graph resourcechanges rows (property diffs and who made them)
            "guest": self.guest,
            "tunnels": self.tunnels,
        }


# ------------------------------------------------------------- health documents


def available(c: Clock, *, since: int = -9 * DAY, recently_resolved: tuple[int, int, str] | None = None) -> dict:
    p: dict[str, Any] = {
        "availabilityState": "Available",
        "title": "Available",
        "summary": "There aren't any known Azure platform problems affecting this virtual machine",
        "reasonChronicity": "Persistent",
        "context": "Not Applicable",
        "category": "Not Applicable",
        "detailedStatus": "",
        "occuredTime": c.z(since),
        "reportedTime": c.z(-90),
    }
    if recently_resolved:
        start, end, summary = recently_resolved
        p["recentlyResolved"] = {
            "unavailableOccuredTime": c.z(start),
            "resolvedTime": c.z(end),
            "unavailableSummary": summary,
        }
    return p


def user_transient(c: Clock, state: str, title: str, summary: str, *, since: int, reported: int) -> dict:
    """A short outage a user or process asked for (a start, a restart), as Resource Health reports it."""
    return {
        "availabilityState": state,
        "title": title,
        "summary": summary,
        "reasonType": "UserInitiated",
        "reasonChronicity": "Transient",
        "context": "Customer Initiated",
        "category": "Not Applicable",
        "detailedStatus": "",
        "occuredTime": c.z(since),
        "reportedTime": c.z(reported),
    }


def user_stopped(c: Clock, *, power: str, since: int) -> dict:
    if power == "deallocated":
        title, summary = ("Stopped and deallocated", "This virtual machine is stopped and deallocated as requested by an authorized user or process")
    elif power == "starting":
        return user_transient(
            c,
            "Unknown",
            "Unknown",
            "This virtual machine is starting as requested by an authorized user or process. It will be online shortly",
            since=since,
            reported=-30,
        )
    else:
        title, summary = (
            "Stopped by user or process",
            "This virtual machine is stopped as requested by an authorized user or process; its compute resources are still allocated and billed",
        )
    return {
        "availabilityState": "Unavailable",
        "title": title,
        "summary": summary,
        "reasonType": "UserInitiated",
        "reasonChronicity": "Persistent",
        "context": "Customer Initiated",
        "category": "Not Applicable",
        "detailedStatus": "",
        "occuredTime": c.z(since),
        "reportedTime": c.z(-90),
        "recommendedActions": [
            {
                "action": "To start this virtual machine, open the resource blade and click Start",
                "actionUrl": "<#ResourceBlade>",
                "actionUrlText": "resource blade",
            }
        ],
    }


def unavailable(c: Clock, *, since: int, eta: int | None = 30 * MINUTE) -> dict:
    p: dict[str, Any] = {
        "availabilityState": "Unavailable",
        "title": "Unavailable",
        "summary": "We're sorry, we couldn't automatically recover your virtual machine",
        "reasonType": "Unplanned",
        "context": "Platform Initiated",
        "category": "Unplanned",
        "reasonChronicity": "Persistent",
        "detailedStatus": "Disk problems are preventing us from automatically recovering your virtual machine",
        "occuredTime": c.z(since),
        "reportedTime": c.z(-2 * MINUTE),
        "rootCauseAttributionTime": c.z(since + MINUTE),
    }
    if eta is not None:
        p["resolutionETA"] = c.z(eta)
    p["recommendedActions"] = [
        {
            "action": "To start this virtual machine, open the resource blade and click Start",
            "actionUrl": "<#ResourceBlade>",
            "actionUrlText": "resource blade",
        },
        {
            "action": "If you are experiencing problems you believe are caused by Azure, contact support",
            "actionUrl": "<#SupportCase>",
            "actionUrlText": "contact support",
        },
    ]
    return p


def degraded(c: Clock, *, since: int) -> dict:
    return {
        "availabilityState": "Degraded",
        "title": "Degraded",
        "summary": "We're sorry, your virtual machine is degraded because a hardware failure was predicted on the host server",
        "reasonType": "Unplanned",
        "context": "Platform Initiated",
        "category": "Unplanned",
        "reasonChronicity": "Persistent",
        "detailedStatus": "Azure detected a hardware degradation on the host server that is expected to cause a "
        "failure soon. Redeploy the virtual machine to move it to a healthy host before the host "
        "is taken out of service",
        "occuredTime": c.z(since),
        "reportedTime": c.z(-3 * MINUTE),
        "recommendedActions": [
            {"action": "Redeploy this virtual machine to move it to a new host", "actionUrl": "<#Redeploy>", "actionUrlText": "Redeploy"},
            {
                "action": "If you are experiencing problems you believe are caused by Azure, contact support",
                "actionUrl": "<#SupportCase>",
                "actionUrlText": "contact support",
            },
        ],
    }


def unknown(c: Clock, *, since: int) -> dict:
    return {
        "availabilityState": "Unknown",
        "title": "Unknown",
        "summary": "We are currently unable to determine the health of this virtual machine",
        "reasonChronicity": "Transient",
        "context": "Not Applicable",
        "category": "Not Applicable",
        "detailedStatus": "Resource Health hasn't received information about this virtual machine for more than 10 minutes",
        "occuredTime": c.z(since),
        "reportedTime": c.z(-60),
    }


SERVICE_HEALING = (
    "We're sorry, your virtual machine was unavailable because of an unexpected failure on the host "
    "server. Azure service healing moved it to a healthy host and restarted it"
)


# ---------------------------------------------------------------------- events


def event_props(
    c: Clock,
    *,
    event_type: str,
    status: str,
    title: str,
    summary: str,
    level: str,
    event_level: str,
    start: int,
    mitigation: int | None,
    regions: list[tuple[str, str, list]],
    subscription: str,
    services: tuple[str, ...] = ("Virtual Machines",),
    tracking_id: str,
    header: str | None = None,
    source: str = "ServiceHealth",
    extra: dict | None = None,
) -> dict:
    """regions: (region name, status, [(offset seconds, summary), ...] updates, newest last)."""
    impact = []
    for svc in services:
        impacted = []
        for region, rstatus, updates in regions:
            ups = [{"summary": s, "updateDateTime": c.z(t)} for t, s in sorted(updates, reverse=True)]
            impacted.append(
                {
                    "impactedRegion": REGIONS[region][0],
                    "status": rstatus,
                    "impactedSubscriptions": [subscription],
                    "impactedTenants": [],
                    "lastUpdateTime": c.z(max(t for t, _ in updates)) if updates else c.z(start),
                    "updates": ups,
                }
            )
        impact.append(
            {
                "impactedService": svc,
                "impactedServiceGuid": VM_SERVICE_GUID if svc == "Virtual Machines" else stable_guid(svc),
                "impactedRegions": impacted,
            }
        )
    last = max([t for _, _, ups in regions for t, _ in ups] or [start])
    p: dict[str, Any] = {
        "eventType": event_type,
        "eventSource": source,
        "status": status,
        "title": title,
        "summary": summary,
        "header": header
        or {
            "ServiceIssue": "Your service might have been impacted by an Azure service issue",
            "PlannedMaintenance": "Your service might be impacted by an upcoming Azure planned maintenance",
            "HealthAdvisory": "Your service might be impacted by an Azure health advisory",
        }.get(event_type, ""),
        "article": {"articleContent": f"<html><p>{summary}</p></html>"},
        "links": [
            {
                "type": "Hyperlink",
                "displayText": {"value": "Request RCA", "localizedValue": "Request RCA"},
                "extensionName": "Microsoft_Azure_Health",
                "bladeName": "RequestRCABlade",
                "parameters": {"trackingId": tracking_id, "rcaRequested": "False"},
            }
        ]
        if event_type == "ServiceIssue"
        else [],
        "level": level,
        "eventLevel": event_level,
        "impactStartTime": c.z(start),
    }
    if mitigation is not None:
        p["impactMitigationTime"] = c.z(mitigation)
    p["impact"] = impact
    p["isHIR"] = False
    p["enableMicrosoftSupport"] = True
    p["enableChatWithUs"] = False
    p["priority"] = 2 if status == "Active" else 20
    p["lastUpdateTime"] = c.z(last)
    if extra:
        p.update(extra)
    return p
