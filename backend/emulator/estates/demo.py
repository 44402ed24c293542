"""The demo estate: Contoso's three subscriptions, about thirty VMs, every story of the runbook.

Each VM's name says what it is (``web-prod-01``, ``rdgw-shared-01``); the table
in :data:`STORIES` says what is wrong with it. Everything is deterministic for
a given ``now``; all timestamps are offsets from it.

Public addresses are loopback only (``127.10.<subscription>.<n>``), FQDNs are
under ``cloudapp.azure.test``, private addresses under ``10.0.0.0/8``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from ._common import DAY, HOUR, MINUTE, SERVICE_HEALING, Clock, EstateBuilder, available, degraded, rid, unavailable, user_stopped, user_transient

TENANT = "5e7d2c1a-64b3-4f8e-b0a9-2d1c7f6e5a38"
PROD = "3f2b8c1e-7a4d-4e2b-9c61-5d8a0f4b2e17"
SHARED = "8d14e6a2-2c5f-4b9e-a7d3-61f0c9e8b453"
DEV = "c7a95f30-91be-4d28-8e4f-2b6d3a7c9015"

SUBSCRIPTIONS = {
    PROD: ("Contoso Production", 1),
    SHARED: ("Contoso Shared Services", 2),
    DEV: ("Contoso Dev/Test", 3),
}

LEGACY_VHD_ACCOUNT = "contosolegacyvhds"
LEGACY_DIAG_ACCOUNT = "contosolegacydiag"
LEGACY_DIAG_URI = f"https://{LEGACY_DIAG_ACCOUNT}.blob.core.windows.net/"

# VM name -> the story it tells (also the table in the hand-over report)
STORIES: dict[str, str] = {
    "web-prod-01": "zonal (zone 1) web server behind lb-web-prod; healthy baseline",
    "web-prod-02": "zonal (zone 2); restarted by service healing a few hours ago (recentlyResolved + Unplanned event)",
    "web-prod-03": "zonal (zone 3); healthy",
    "sql-prod-01": "availability set avset-sql-prod, all three members crowded in fault domain 0",
    "sql-prod-02": "same availability set; Resource Health Degraded (host hardware failure predicted)",
    "sql-prod-03": "same availability set, fault domain 0",
    "app-prod-ne-01": "single VM; planned maintenance pending, its self-service window open now (perform-maintenance runs)",
    "app-prod-ne-02": "single VM; planned maintenance pending, its self-service window opens a day from now (Azure refuses it before)",
    "erp-prod-eus-01": "zonal, Ultra disk; Unavailable now (Unplanned) during the East US service issue, which lists it as impacted",
    "jump-prod-01": "NIC NSG Deny 3389 at priority 200 beats Allow 3389 at 300: RDP blocked",
    "dc-shared-01": "availability set holding only this VM; Premium_ZRS data disk; CanNotDelete lock",
    "rdgw-shared-01": "Basic dynamic public IP changed (previous_public_ip in guest facts)",
    "tools-lnx-shared-01": "subnet-level NSG denies SSH although the NIC NSG allows it",
    "files-shared-01": "NSG allows RDP but the guest firewall drops 3389 (silent)",
    "mon-shared-eus-01": "VM agent Not Ready (waagent cannot reach the WireServer)",
    "legacy-app-01": "unmanaged VHD in contosolegacyvhds; boot diagnostics in a customer storage account whose firewall lets only the office in (its serial console is refused)",
    "legacy-app-02": "unmanaged VHD in contosolegacyvhds; deallocated, so its Basic dynamic IP has no address",
    "legacy-ftp-01": "unmanaged VHD in contosolegacyvhds; Standard_DS1_v2 with temp disk; sshd down (refused)",
    "build-lnx-01": "no public IP: reachable only via lb-build-shared NAT 50001 -> 22",
    "build-win-01": "no public IP: reachable only via lb-build-shared NAT 50002 -> 3389",
    "payroll-app-01": "private IP only, in vnet-hub-weu whose site-to-site VPN connection is NotConnected",
    "dev-spot-01": "Spot VM evicted (deallocated); boot diagnostics disabled",
    "dev-ephemeral-01": "ephemeral OS disk on the resource disk",
    "vmss-build-dev_3f9a1c2e": "VMSS Flexible member of vmss-build-dev",
    "win11-tl-dev-01": "Trusted Launch Gen2 VM, starting",
    "dev-sandbox-01": "OS disk, data disks, NIC and public IP all deleteOption Delete",
    "qa-win-01": "stopped but not deallocated (still billed)",
    "api-dev-01": "Linux stuck in emergency mode: /etc/fstab names a disk that was detached",
    "pg-dev-01": "Linux stuck in initramfs asking for a manual fsck",
    "iis-test-01": "Windows stop code INACCESSIBLE_BOOT_DEVICE since a storage driver update this morning; a snapshot of its OS disk from yesterday (iis-test-01-os-before-update) and last night's restore point (rp-nightly) hold it as it was (restore-disk)",
}

ALLOW_SSH = ("Allow-SSH", 300, "Allow", "Tcp", "22", "*")
ALLOW_RDP = ("Allow-RDP", 310, "Allow", "Tcp", "3389", "*")


class _Subs:
    """Hands out loopback 'public' addresses per subscription: 127.10.<sub index>.<n>."""

    def __init__(self) -> None:
        self.next = {s: 10 for s in SUBSCRIPTIONS}

    def ip(self, sub: str) -> str:
        n = self.next[sub]
        self.next[sub] = n + 1
        return f"127.10.{SUBSCRIPTIONS[sub][1]}.{n}"


# dev-sandbox-01 (the recreate story) carries more than the monitoring agent: an extension with
# public settings, one whose command lives in protected settings (ARM never returns those), and
# userData, which a recreate has to carry over.
SANDBOX_EXTENSIONS = [
    {
        "name": "DependencyAgentLinux",
        "properties": {
            "publisher": "Microsoft.Azure.Monitoring.DependencyAgent",
            "type": "DependencyAgentLinux",
            "typeHandlerVersion": "9.10",
            "autoUpgradeMinorVersion": True,
            "enableAutomaticUpgrade": True,
            "settings": {"enableAMA": "true"},
        },
    },
    {
        "name": "sandbox-bootstrap",
        "properties": {
            "publisher": "Microsoft.Azure.Extensions",
            "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "autoUpgradeMinorVersion": True,
            "settings": {"fileUris": ["https://stcontosodevtools.blob.core.windows.net/bootstrap/sandbox.sh"]},
        },
    },
]
SANDBOX_USER_DATA = base64.b64encode(
    b"#!/bin/sh\n# dev-sandbox-01: what the platform team expects on a sandbox\necho 'role=sandbox team=platform' > /etc/sandbox-role\n"
).decode()


class _Group:
    """A resource group and what its VMs share: subscription, location, tags, and the subnet and
    NSG a VM is put on unless it names its own (set by :meth:`network`, or by hand)."""

    def __init__(self, b: EstateBuilder, ips: _Subs, sub: str, name: str, loc: str, env: str, owner: str, app: str) -> None:
        self.b, self.ips, self.sub, self.name, self.loc = b, ips, sub, name, loc
        self.tags = {"env": env, "owner": owner, "app": app, "costCenter": {"prod": "CC-1042", "shared": "CC-2001"}.get(env, "CC-3300")}
        b.resource_group(sub, name, loc, self.tags)
        self.subnets: dict[str, str] = {}
        self.subnet_id = ""
        self.nsg_id: str | None = None

    def nsg(self, name: str, rules: list[tuple]) -> str:
        return self.b.nsg(self.sub, self.name, name, self.loc, rules, self.tags)

    def vnet(self, name: str, prefix: str, subnets: list[tuple[str, str, str | None]]) -> dict[str, str]:
        self.subnets = self.b.vnet(self.sub, self.name, name, self.loc, [prefix], subnets, self.tags)
        return self.subnets

    def network(self, rules: list[tuple], prefix: str, subnet: tuple[str, str]) -> str:
        """The usual network of a group rg-X: NSG nsg-X (on the VMs' NICs) and VNet vnet-X with one subnet. Returns the NSG's id."""
        base = self.name.removeprefix("rg-")
        self.nsg_id = nsg_id = self.nsg(f"nsg-{base}", rules)
        self.vnet(f"vnet-{base}", prefix, [(*subnet, None)])
        self.subnet_id = self.subnets[subnet[0]]
        return nsg_id

    def load_balancer(self, name: str, label: str, **kw: Any) -> str:
        """A load balancer behind a zone-redundant public IP pip-<name> whose DNS label is LABEL."""
        pip = self.b.public_ip(self.sub, self.name, f"pip-{name}", self.loc, self.ips.ip(self.sub), zones=["1", "2", "3"], label=label, tags=self.tags)
        return self.b.load_balancer(self.sub, self.name, name, self.loc, pip, tags=self.tags, **kw)

    def vm(self, name: str, *, health: dict | None = None, guest: dict | None = None, uptime: int = 12 * DAY, pip: bool | str = True, **kw: Any) -> dict:
        """One VM with health and guest facts; pip=True gives it a Standard static public IP, an address that one, False none."""
        b = self.b
        if pip is True:
            kw.setdefault("public_ip", self.ips.ip(self.sub))
            kw.setdefault("pip_label", name.replace("_", "-"))
        elif pip:  # an address given explicitly
            kw["public_ip"] = pip
            kw.setdefault("pip_label", name.replace("_", "-"))
        kw.setdefault("subnet_id", self.subnet_id)
        kw.setdefault("nsg_id", self.nsg_id)
        facts = b.vm(self.sub, self.name, name, self.loc, uptime=uptime, tags=self.tags, **kw)
        power = kw.get("power", "running")
        if health is None:
            health = available(b.clock, since=-uptime) if power == "running" else user_stopped(b.clock, power=power, since=-uptime)
        b.health(facts["id"], self.loc, health)
        b.guest_facts(facts, name=name, uptime=uptime, **(guest or {}))
        return facts


def build(now: datetime) -> dict:
    b = EstateBuilder(now)
    c = b.clock
    ips = _Subs()
    for sub, (name, _i) in SUBSCRIPTIONS.items():
        b.subscription(sub, name, TENANT)

    def group(sub: str, name: str, loc: str, env: str, owner: str, app: str) -> _Group:
        return _Group(b, ips, sub, name, loc, env, owner, app)

    # ================================================================ Production
    P = PROD
    # -- web tier: three zonal VMs behind a public Standard load balancer
    web = group(P, "rg-web-prod", "westeurope", "prod", "web-team", "contoso-web")
    web.network([("Allow-HTTP-HTTPS", 100, "Allow", "Tcp", ["80", "443"], "Internet"), ALLOW_SSH], "10.10.0.0/16", ("snet-web", "10.10.1.0/24"))
    lb_web = web.load_balancer(
        "lb-web-prod",
        "contoso-web-prod",
        pools=["bepool-web"],
        lb_rules=[("rule-http", 80, 80, "bepool-web"), ("rule-https", 443, 443, "bepool-web")],
    )
    pool = f"{lb_web}/backendAddressPools/bepool-web"
    # one VM a zone; web-prod-02 was restarted by service healing a few hours ago
    healed_at, back_at = -6 * HOUR - 12 * MINUTE, -5 * HOUR - 49 * MINUTE
    web_tier = []
    for zone in ("1", "2", "3"):
        healed = zone == "2"
        web_tier.append(
            web.vm(
                f"web-prod-0{zone}",
                image="ubuntu2204",
                size="Standard_D2s_v5",
                zones=[zone],
                lb_pools=[pool],
                data_disks=[(128, "Premium_LRS")],
                uptime=-back_at if healed else 23 * DAY,
                created=-410 * DAY,
                health=available(c, since=back_at, recently_resolved=(healed_at, back_at, SERVICE_HEALING)) if healed else None,
            )
        )
    web2 = web_tier[1]

    # -- SQL: an availability set of three, all crowded in fault domain 0
    sql = group(P, "rg-sql-prod", "westeurope", "prod", "dba-team", "contoso-sql")
    sql.network([("Allow-SQL-From-Web", 200, "Allow", "Tcp", "1433", "10.10.1.0/24"), ALLOW_RDP], "10.11.0.0/16", ("snet-sql", "10.11.1.0/24"))
    avset_sql = b.availability_set(P, sql.name, "avset-sql-prod", sql.loc, fault_domains=2, update_domains=5, tags=sql.tags)
    for i, name in enumerate(("sql-prod-01", "sql-prod-02", "sql-prod-03")):
        sql.vm(
            name,
            image="sql2022",
            size="Standard_E4s_v5",
            avset=avset_sql,
            fault_domain=0,
            update_domain=i,
            data_disks=[(512, "Premium_LRS"), (256, "Premium_LRS")],
            uptime=31 * DAY,
            created=-700 * DAY,
            health=degraded(c, since=-42 * MINUTE) if name == "sql-prod-02" else None,
        )

    # -- northeurope app servers with planned maintenance pending
    app = group(P, "rg-app-prod", "northeurope", "prod", "app-team", "contoso-portal")
    app.network([ALLOW_SSH, ALLOW_RDP], "10.12.0.0/16", ("snet-app", "10.12.1.0/24"))
    # Two waves of one maintenance: app-prod-ne-01's self-service window opened yesterday, so the
    # operator can start it now; app-prod-ne-02's opens tomorrow, and Azure refuses it until then.
    # Both close before the scheduled window in which Azure does it itself.
    mw_start, mw_end = 9 * DAY, 11 * DAY
    waves = (
        ("app-prod-ne-01", "win2022", "Standard_D4s_v5", (256, "Premium_LRS"), -1 * DAY),
        ("app-prod-ne-02", "rhel9", "Standard_D2s_v5", (128, "StandardSSD_LRS"), 1 * DAY),
    )
    for name, image, size, data_disk, window_opens in waves:
        maintenance = b.maintenance(window_opens, 8 * DAY, mw_start, mw_end)
        app.vm(name, image=image, size=size, data_disks=[data_disk], maintenance=maintenance, uptime=44 * DAY, created=-380 * DAY)

    # -- eastus ERP, down during the region's service issue
    erp_group = group(P, "rg-erp-prod", "eastus", "prod", "erp-team", "contoso-erp")
    erp_group.network([ALLOW_RDP], "10.13.0.0/16", ("snet-erp", "10.13.1.0/24"))
    erp = erp_group.vm(
        "erp-prod-eus-01",
        image="win2022",
        size="Standard_E8s_v5",
        zones=["1"],
        data_disks=[(1024, "UltraSSD_LRS"), (256, "Premium_LRS")],
        uptime=62 * DAY,
        created=-500 * DAY,
        health=unavailable(c, since=-47 * MINUTE),
    )

    # -- jump host whose NSG blocks RDP
    jump_group = group(P, "rg-jump-prod", "westeurope", "prod", "ops-team", "jump")
    nsg_jump = jump_group.network(
        [
            ("Deny-RDP-Incident-4711", 200, "Deny", "Tcp", "3389", "*", "Inbound", "Temporary block during security incident INC-4711"),
            ("Allow-RDP", 300, "Allow", "Tcp", "3389", "*"),
        ],
        "10.14.0.0/16",
        ("snet-jump", "10.14.1.0/24"),
    )
    jump = jump_group.vm("jump-prod-01", image="win2022", size="Standard_B2ms", os_sku="StandardSSD_LRS", uptime=8 * DAY, created=-260 * DAY)

    # ============================================================ Shared Services
    S = SHARED
    identity = group(S, "rg-identity-shared", "westeurope", "shared", "identity-team", "active-directory")
    identity.network(
        [("Allow-AD-DS-VNet", 200, "Allow", "*", ["53", "88", "135", "389", "445", "464", "636", "3268-3269"], "VirtualNetwork"), ALLOW_RDP],
        "10.20.0.0/16",
        ("snet-identity", "10.20.1.0/24"),
    )
    avset_dc = b.availability_set(S, identity.name, "avset-dc-shared", identity.loc, fault_domains=2, update_domains=5, tags=identity.tags)
    dc = identity.vm(
        "dc-shared-01",
        image="win2022",
        size="Standard_D2s_v5",
        avset=avset_dc,
        fault_domain=0,
        update_domain=0,
        data_disks=[(64, "Premium_ZRS")],
        uptime=17 * DAY,
        created=-900 * DAY,
    )
    b.add(
        {
            "id": dc["id"] + "/providers/Microsoft.Authorization/locks/do-not-delete-dc",
            "name": "do-not-delete-dc",
            "type": "Microsoft.Authorization/locks",
            "properties": {"level": "CanNotDelete", "notes": "Domain controller: deleting it breaks sign-in", "owners": []},
        }
    )

    jumpbox = group(S, "rg-jumpbox-shared", "northeurope", "shared", "ops-team", "jumpbox")
    jumpbox.nsg_id = jumpbox.nsg("nsg-jumpbox-shared", [ALLOW_SSH, ALLOW_RDP])
    nsg_tools = jumpbox.nsg("nsg-snet-tools-shared", [("Deny-SSH-Inbound", 110, "Deny", "Tcp", "22", "*", "Inbound", "SSH only through Bastion")])
    jumpbox.vnet("vnet-jumpbox-shared", "10.21.0.0/16", [("snet-jumpbox", "10.21.1.0/24", None), ("snet-tools", "10.21.2.0/24", nsg_tools)])
    jumpbox.subnet_id = jumpbox.subnets["snet-jumpbox"]
    old_ip = "127.10.2.201"
    jumpbox.vm(
        "rdgw-shared-01",
        image="win2019",
        size="Standard_B2ms",
        pip_sku="Basic",
        os_sku="StandardSSD_LRS",
        uptime=2 * DAY + 3 * HOUR,
        created=-1100 * DAY,
        guest={"previous_public_ip": old_ip},
    )
    jumpbox.vm(
        "tools-lnx-shared-01",
        image="ubuntu2204",
        size="Standard_B2s",
        subnet_id=jumpbox.subnets["snet-tools"],
        os_sku="StandardSSD_LRS",
        uptime=15 * DAY,
        created=-300 * DAY,
    )

    files = group(S, "rg-files-shared", "westeurope", "shared", "infra-team", "file-services")
    files.network([("Allow-SMB-VNet", 200, "Allow", "Tcp", "445", "VirtualNetwork"), ALLOW_RDP], "10.22.0.0/16", ("snet-files", "10.22.1.0/24"))
    files.vm(
        "files-shared-01",
        image="win2022",
        size="Standard_D4s_v5",
        data_disks=[(1024, "StandardSSD_LRS"), (2048, "Standard_LRS")],
        uptime=6 * DAY,
        created=-640 * DAY,
        guest={"ports": {"3389": "silent"}},
    )

    monitoring = group(S, "rg-monitoring-shared", "eastus", "shared", "ops-team", "monitoring")
    monitoring.network([ALLOW_SSH], "10.23.0.0/16", ("snet-monitoring", "10.23.1.0/24"))
    monitoring.vm(
        "mon-shared-eus-01",
        image="ubuntu1804",
        size="Standard_B2ms",
        os_sku="StandardSSD_LRS",
        data_disks=[(256, "Standard_LRS")],
        agent="not-ready",
        uptime=71 * DAY,
        created=-1200 * DAY,
        guest={"agent": "not-ready"},
    )

    legacy = group(S, "rg-legacy-shared", "westeurope", "shared", "infra-team", "legacy-lob")
    legacy.network([("Allow-FTP", 200, "Allow", "Tcp", ["21", "50000-50100"], "*"), ALLOW_SSH, ALLOW_RDP], "10.24.0.0/16", ("snet-legacy", "10.24.1.0/24"))
    # legacy-app-01's boot diagnostics go to a customer storage account whose firewall lets only the office
    # in (198.51.100.0/24), not the serial console's addresses: its serial console is refused.
    b.storage_account(
        S, legacy.name, LEGACY_DIAG_ACCOUNT, legacy.loc, created=-2100 * DAY, default_action="Deny", ip_rules=["198.51.100.0/24"], tags=legacy.tags
    )
    # what the three legacy VMs have in common: unmanaged VHDs, a Basic dynamic IP, no extensions
    unmanaged: dict[str, Any] = {"vhd_account": LEGACY_VHD_ACCOUNT, "pip_sku": "Basic", "extensions": False}
    legacy.vm(
        "legacy-app-01",
        image="win2016",
        size="Standard_D2s_v3",
        data_disks=[(128, "")],
        boot_diag=LEGACY_DIAG_URI,
        uptime=33 * DAY,
        created=-2100 * DAY,
        **unmanaged,
    )
    legacy2 = legacy.vm(
        "legacy-app-02", image="win2016", size="Standard_D2s_v3", data_disks=[(128, "")], power="deallocated", uptime=5 * DAY, created=-2100 * DAY, **unmanaged
    )
    legacy.vm(
        "legacy-ftp-01", image="ubuntu1804", size="Standard_DS1_v2", uptime=90 * DAY, created=-1900 * DAY, guest={"ports": {"22": "refused"}}, **unmanaged
    )

    build_shared = group(S, "rg-build-shared", "westeurope", "shared", "devops-team", "build-agents")
    build_shared.network([ALLOW_SSH, ALLOW_RDP], "10.25.0.0/16", ("snet-build", "10.25.1.0/24"))
    lb_build = build_shared.load_balancer(
        "lb-build-shared",
        "contoso-build",
        pools=["bepool-build"],
        nat=[("nat-ssh-build-lnx-01", 50001, 22), ("nat-rdp-build-win-01", 50002, 3389)],
    )
    # no public IP: each is reached through its NAT rule on the load balancer
    for name, image, nat in (("build-lnx-01", "ubuntu2204", "nat-ssh-build-lnx-01"), ("build-win-01", "win2022", "nat-rdp-build-win-01")):
        build_shared.vm(
            name,
            image=image,
            size="Standard_D2as_v5",
            pip=False,
            lb_pools=[f"{lb_build}/backendAddressPools/bepool-build"],
            nat_rules=[f"{lb_build}/inboundNatRules/{nat}"],
            os_sku="StandardSSD_LRS",
            uptime=4 * DAY,
            created=-200 * DAY,
        )

    # -- hub VNet with a site-to-site VPN that is down, and a private-only VM behind it
    hub = group(S, "rg-connectivity-shared", "westeurope", "shared", "network-team", "hub")
    nsg_hub = hub.nsg("nsg-hub-apps", [("Allow-RDP-From-OnPrem", 200, "Allow", "Tcp", "3389", "192.168.0.0/16")])
    hub.vnet("vnet-hub-weu", "10.0.0.0/16", [("GatewaySubnet", "10.0.255.0/27", None), ("snet-apps", "10.0.1.0/24", nsg_hub)])
    _vpn(b, S, hub.name, hub.loc, hub.subnets["GatewaySubnet"], ips.ip(S), hub.tags)
    hub.vm("payroll-app-01", image="win2019", size="Standard_D2s_v5", subnet_id=hub.subnets["snet-apps"], pip=False, uptime=27 * DAY, created=-800 * DAY)

    # ================================================================ Dev/Test
    D = DEV
    dev = group(D, "rg-dev-weu", "westeurope", "dev", "dev-team", "contoso-dev")
    dev.network([ALLOW_SSH, ALLOW_RDP], "10.30.0.0/16", ("snet-dev", "10.30.1.0/24"))
    spot = dev.vm(
        "dev-spot-01",
        image="ubuntu2204",
        size="Standard_D2as_v5",
        spot=True,
        power="deallocated",
        boot_diag="off",
        os_sku="StandardSSD_LRS",
        uptime=14 * HOUR,
        created=-20 * DAY,
        health={
            "availabilityState": "Unavailable",
            "title": "Evicted",
            "summary": "This Azure Spot virtual machine was evicted and deallocated because Azure needed the capacity back",
            "reasonType": "Planned",
            "context": "Platform Initiated",
            "category": "Planned",
            "reasonChronicity": "Persistent",
            "detailedStatus": "Spot virtual machines can be evicted at any time when Azure needs the capacity",
            "occuredTime": c.z(-14 * HOUR),
            "reportedTime": c.z(-90),
            "recommendedActions": [
                {
                    "action": "To start this virtual machine, open the resource blade and click Start",
                    "actionUrl": "<#ResourceBlade>",
                    "actionUrlText": "resource blade",
                }
            ],
        },
    )
    dev.vm("dev-ephemeral-01", image="ubuntu2404", size="Standard_D2ds_v5", ephemeral=True, uptime=3 * DAY, created=-3 * DAY)
    dev.vm(
        "dev-sandbox-01",
        image="ubuntu2204",
        size="Standard_B2ms",
        delete_all=True,
        os_sku="StandardSSD_LRS",
        data_disks=[(64, "StandardSSD_LRS"), (32, "StandardSSD_LRS")],
        uptime=1 * DAY,
        created=-9 * DAY,
        more_extensions=SANDBOX_EXTENSIONS,
        user_data=SANDBOX_USER_DATA,
    )
    dev.vm(
        "api-dev-01",
        image="ubuntu2204",
        size="Standard_D2s_v5",
        os_sku="StandardSSD_LRS",
        uptime=38 * MINUTE,
        created=-150 * DAY,
        guest={"boot": "emergency-fstab", "ports": {"22": "silent"}},
    )
    dev.vm(
        "pg-dev-01",
        image="ubuntu2204",
        size="Standard_D2s_v5",
        data_disks=[(256, "Premium_LRS")],
        uptime=2 * HOUR,
        created=-230 * DAY,
        guest={"boot": "fsck", "ports": {"22": "silent"}},
    )

    build_dev = group(D, "rg-build-dev", "northeurope", "dev", "devops-team", "build-agents")
    build_dev.network([ALLOW_SSH], "10.31.0.0/16", ("snet-build", "10.31.1.0/24"))
    vmss = b.scale_set(D, build_dev.name, "vmss-build-dev", build_dev.loc, "Standard_D2s_v5", capacity=1, tags=build_dev.tags)
    build_dev.vm("vmss-build-dev_3f9a1c2e", image="ubuntu2204", size="Standard_D2s_v5", vmss=vmss, os_sku="StandardSSD_LRS", uptime=11 * DAY, created=-11 * DAY)

    test = group(D, "rg-test-eus", "eastus", "test", "qa-team", "contoso-qa")
    test.network([ALLOW_RDP], "10.32.0.0/16", ("snet-test", "10.32.1.0/24"))
    test.vm("win11-tl-dev-01", image="win11", size="Standard_D2s_v5", trusted_launch=True, power="starting", uptime=40, created=-60 * DAY)
    qa = test.vm("qa-win-01", image="win2019", size="Standard_B2ms", os_sku="StandardSSD_LRS", power="stopped", uptime=3 * DAY + 4 * HOUR, created=-330 * DAY)
    iis = test.vm(
        "iis-test-01",
        image="win2019",
        size="Standard_D2s_v5",
        uptime=25 * MINUTE,
        created=-330 * DAY,
        guest={"boot": "stop-code:INACCESSIBLE_BOOT_DEVICE", "ports": {"3389": "silent"}},
    )
    # What restore-disk restores it from: a snapshot of its OS disk taken yesterday and last night's
    # restore point, both from before the storage driver update that broke its boot this morning.
    iis_doc = b.docs[iis["id"]]
    iis_os = iis_doc["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
    b.snapshot(iis_os, "iis-test-01-os-before-update", at=-DAY, tags=test.tags)
    b.restore_point(iis_doc, "rp-nightly", at=-9 * HOUR, tags=test.tags)

    _events(b, web2["id"], healed_at, back_at)
    _history(b, jump=jump["id"], jump_nsg=nsg_jump, spot=spot["id"], qa=qa["id"], legacy2=legacy2["id"], web2=web2["id"], healed_at=healed_at, back_at=back_at)
    # The East US incident lists the resources it hit (Resource Health impactedResources): the ERP VM,
    # whose disks sit on the storage scale units that lost power. Other VMs in the region were spared.
    b.impacted_by("7T2K-LQ8", erp["id"])
    from ._backup import add_backup

    backup = add_backup(b, P, S)
    estate = b.finish()
    estate["backup"] = backup  # Recovery Services vaults' protected VMs and policies (backend/emulator/backup.py)
    # Sizes this production subscription may not use (Resource SKUs restrictions): a resize of
    # web-prod-03 (zone 3) to E8s_v5, or of any VM to E16s_v5 in West Europe, is refused with the
    # reason; so is a move of an E4s_v5 SQL VM to zone 2 (move-to-zone), while zone 1 is open.
    estate["skuRestrictions"] = {P: {"westeurope": {"Standard_E8s_v5": ["3"], "Standard_E16s_v5": "all", "Standard_E4s_v5": ["2"]}}}
    return estate


def _vpn(b: EstateBuilder, sub: str, group: str, loc: str, gateway_subnet: str, address: str, tags: dict) -> None:
    pip = b.public_ip(sub, group, "pip-vgw-hub-weu", loc, address, zones=["1", "2", "3"], tags=tags)
    gw_id = rid(sub, group, "Microsoft.Network/virtualNetworkGateways", "vgw-hub-weu")
    cfg_id = f"{gw_id}/ipConfigurations/default"
    b.docs[pip]["properties"]["ipConfiguration"] = {"id": cfg_id}
    b.add(
        {
            "name": "vgw-hub-weu",
            "id": gw_id,
            "type": "Microsoft.Network/virtualNetworkGateways",
            "location": loc,
            "tags": dict(tags),
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": b.guid(gw_id),
                "ipConfigurations": [
                    {
                        "name": "default",
                        "id": cfg_id,
                        "properties": {
                            "provisioningState": "Succeeded",
                            "privateIPAllocationMethod": "Dynamic",
                            "subnet": {"id": gateway_subnet},
                            "publicIPAddress": {"id": pip},
                        },
                    }
                ],
                "sku": {"name": "VpnGw1AZ", "tier": "VpnGw1AZ", "capacity": 2},
                "gatewayType": "Vpn",
                "vpnType": "RouteBased",
                "vpnGatewayGeneration": "Generation1",
                "enableBgp": False,
                "activeActive": False,
                "enablePrivateIpAddress": False,
            },
        }
    )
    b._subnets[gateway_subnet][0]["properties"]["ipConfigurations"].append({"id": cfg_id})
    lgw_id = rid(sub, group, "Microsoft.Network/localNetworkGateways", "lgw-onprem-amsterdam")
    b.add(
        {
            "name": "lgw-onprem-amsterdam",
            "id": lgw_id,
            "type": "Microsoft.Network/localNetworkGateways",
            "location": loc,
            "tags": dict(tags),
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": b.guid(lgw_id),
                "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]},
                "gatewayIpAddress": "127.10.250.1",
            },
        }
    )
    cn_id = rid(sub, group, "Microsoft.Network/connections", "cn-hub-to-onprem-amsterdam")
    b.add(
        {
            "name": "cn-hub-to-onprem-amsterdam",
            "id": cn_id,
            "type": "Microsoft.Network/connections",
            "location": loc,
            "tags": dict(tags),
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": b.guid(cn_id),
                "virtualNetworkGateway1": {"id": gw_id, "properties": {}},
                "localNetworkGateway2": {"id": lgw_id, "properties": {}},
                "connectionType": "IPsec",
                "connectionProtocol": "IKEv2",
                "connectionMode": "Default",
                "routingWeight": 0,
                "dpdTimeoutSeconds": 45,
                "enableBgp": False,
                "useLocalAzureIpAddress": False,
                "usePolicyBasedTrafficSelectors": False,
                "ipsecPolicies": [],
                "trafficSelectorPolicies": [],
                "connectionStatus": "NotConnected",
                "ingressBytesTransferred": 0,
                "egressBytesTransferred": 0,
            },
        }
    )
    # Why it is down (backend/emulator/netpath_ops.py): a stale security association, which a reset of the connection clears.
    b.tunnels[cn_id] = "stuck"


def _events(b: EstateBuilder, healed_vm: str, healed_at: int, back_at: int) -> None:
    c = b.clock
    eus_start = -55 * MINUTE
    eus_updates = [
        (
            -50 * MINUTE,
            "Starting at {t} UTC, a subset of customers using Virtual Machines in East US may experience "
            "connection failures or unexpected restarts. Engineers are investigating.",
        ),
        (
            -31 * MINUTE,
            "We have identified a power event affecting a subset of storage scale units in one datacenter "
            "in East US. Virtual Machines whose disks are hosted there may be unavailable. Engineers are "
            "working on mitigation.",
        ),
        (
            -9 * MINUTE,
            "Power has been restored to the affected storage scale units. Most Virtual Machines are "
            "recovering; some may need a restart. The next update will be provided in 60 minutes.",
        ),
    ]
    first = c.at(eus_start).strftime("%H:%M")
    eus_updates = [(t, s.replace("{t}", first)) for t, s in eus_updates]
    for sub in (PROD, SHARED, DEV):
        b.service_issue(
            sub,
            "7T2K-LQ8",
            title="Virtual Machines - East US - Connectivity failures and unexpected restarts",
            region="eastus",
            updates=eus_updates,
            start=eus_start,
            event_level="Error",
            services=("Virtual Machines", "Storage"),
        )
    for sub in (PROD, SHARED):
        ups = [
            (-4 * DAY - 3 * HOUR + 20 * MINUTE, "Engineers are investigating allocation failures for Virtual Machines in North Europe."),
            (
                -4 * DAY - 1 * HOUR,
                "Mitigated: between {s} and {e} UTC, customers may have seen allocation failures "
                "when starting or resizing Virtual Machines in North Europe. A configuration "
                "change was rolled back.".replace("{s}", c.at(-4 * DAY - 3 * HOUR).strftime("%d %b %H:%M")).replace(
                    "{e}", c.at(-4 * DAY - 1 * HOUR).strftime("%H:%M")
                ),
            ),
        ]
        b.service_issue(
            sub,
            "2M9D-TH0",
            title="Mitigated - Virtual Machines - North Europe - Allocation failures",
            region="northeurope",
            updates=ups,
            start=-4 * DAY - 3 * HOUR,
            mitigation=-4 * DAY - 1 * HOUR,
        )
    mw_start, mw_end = 9 * DAY, 11 * DAY
    b.planned_maintenance(
        PROD,
        "9Q7S-P2X",
        title="Planned maintenance: Virtual Machines - North Europe",
        summary="Azure will perform host maintenance that requires a reboot of some Virtual Machines in North "
        "Europe. You can start maintenance yourself during each VM's self-service window (they open in waves "
        f"from {c.z(-1 * DAY)} and close at {c.z(8 * DAY)}); otherwise it happens during the scheduled window "
        f"({c.z(mw_start)} to {c.z(mw_end)}).",
        regions=["northeurope"],
        start=mw_start,
        end=mw_end,
    )
    for sub in (PROD, SHARED, DEV):
        b.agent_advisory(
            c,
            sub,
            "4H1A-RV8",
            ("westeurope", "northeurope", "eastus"),
            "Virtual machines running an Azure VM agent older than 2.2.53 (Linux) or 2.7.41491.1010 "
            "(Windows) can lose the ability to run extensions and to report health. Update the agent.",
        )
    ups = [
        (
            back_at,
            "Azure detected a failure of the host server running web-prod-02. Service healing moved the "
            "virtual machine to a healthy host and restarted it. No action is needed.",
        )
    ]
    b.service_issue(
        PROD,
        "RH-WP02-7F3C",
        title="Unplanned: virtual machine web-prod-02 was restarted by service healing",
        region="westeurope",
        updates=ups,
        start=healed_at,
        mitigation=back_at,
        source="ResourceHealth",
        extra={"reason": "Unplanned", "platformInitiated": True, "additionalInformation": {"message": f"Impacted resource: {healed_vm}"}},
    )


def _history(b: EstateBuilder, *, jump: str, jump_nsg: str, spot: str, qa: str, legacy2: str, web2: str, healed_at: int, back_at: int) -> None:
    """What the activity log and Resource Health's history say happened to the VMs of the stories,
    consistent with their state now (the timeline's "who stopped it?")."""
    c = b.clock
    vm_ops = "Microsoft.Compute/virtualMachines"
    lro = ("Started", "Accepted", "Succeeded")

    # jump-prod-01: restarted by ops a week ago (its uptime); 2 h 40 min ago the security on-call added
    # the Deny 3389 rule at priority 200 to its NIC's NSG, which beats Allow-RDP at 300: RDP has been blocked since.
    b.activity(jump, f"{vm_ops}/restart/action", at=-8 * DAY - 3 * MINUTE, caller="ops.admin@contoso.com", statuses=lro, client_ip="198.51.100.24", took=95)
    b.past_health(jump, "westeurope", user_stopped_transient(c, "Restarting", since=-8 * DAY - 2 * MINUTE))
    rule_op = "Microsoft.Network/networkSecurityGroups/securityRules/write"
    rule_at = -2 * HOUR - 40 * MINUTE
    rule_id = f"{jump_nsg}/securityRules/Deny-RDP-Incident-4711"
    b.activity(rule_id, rule_op, at=rule_at, caller="sec.oncall@contoso.com", statuses=lro, client_ip="198.51.100.77", took=12)
    b.change(
        jump_nsg,
        "Update",
        at=rule_at + 12,
        changed_by="sec.oncall@contoso.com",
        client_type="Azure Portal",
        operation=rule_op,
        correlation_id=b.activity_correlation(rule_id, rule_op, rule_at),
        changes={
            "properties.securityRules[0].name": (None, "Deny-RDP-Incident-4711"),
            "properties.securityRules[0].properties.access": (None, "Deny"),
            "properties.securityRules[0].properties.priority": (None, "200"),
            "properties.securityRules[0].properties.destinationPortRange": (None, "3389"),
        },
    )

    # dev-spot-01: created by its developer, deallocated by her three evenings ago and started yesterday;
    # Azure evicted it 14 hours ago (Spot capacity). Nobody deallocated it: the platform did.
    dev = "dana.ng@contoso.com"
    b.activity(spot, f"{vm_ops}/write", at=-20 * DAY, caller=dev, statuses=lro, client_ip="203.0.113.41", took=140)
    b.activity(spot, f"{vm_ops}/deallocate/action", at=-3 * DAY - 5 * HOUR, caller=dev, statuses=lro, client_ip="203.0.113.41", took=70)
    b.past_health(spot, "westeurope", user_stopped(c, power="deallocated", since=-3 * DAY - 5 * HOUR))
    b.activity(spot, f"{vm_ops}/start/action", at=-28 * HOUR, caller=dev, statuses=lro, client_ip="203.0.113.41", took=50)
    b.past_health(spot, "westeurope", available(c, since=-28 * HOUR + MINUTE))

    # qa-win-01: stopped three days ago from inside Windows (shutdown /s): no Azure operation, so no
    # activity-log entry; before that it ran for a month.
    b.past_health(qa, "eastus", available(c, since=-33 * DAY))
    b.activity(qa, f"{vm_ops}/write", at=-12 * DAY, caller="qa.lead@contoso.com", statuses=lro, client_ip="203.0.113.90", took=60)
    b.change(
        qa,
        "Update",
        at=-12 * DAY + 60,
        changed_by="qa.lead@contoso.com",
        client_type="Azure CLI",
        operation=f"{vm_ops}/write",
        correlation_id=b.activity_correlation(qa, f"{vm_ops}/write", -12 * DAY),
        changes={"properties.hardwareProfile.vmSize": ("Standard_B2s", "Standard_B2ms")},
    )

    # legacy-app-02: deallocated by the application owner five days ago.
    b.activity(legacy2, f"{vm_ops}/deallocate/action", at=-5 * DAY, caller="j.smith@contoso.com", statuses=lro, client_ip="198.51.100.150", took=80)
    b.past_health(legacy2, "westeurope", available(c, since=-40 * DAY))

    # web-prod-02: its host failed; service healing moved it to a healthy host and restarted it.
    b.past_health(web2, "westeurope", available(c, since=-23 * DAY))
    b.past_health(
        web2,
        "westeurope",
        {
            "availabilityState": "Unavailable",
            "title": "Unavailable",
            "summary": SERVICE_HEALING,
            "reasonType": "Unplanned",
            "context": "Platform Initiated",
            "category": "Unplanned",
            "reasonChronicity": "Persistent",
            "detailedStatus": "The host server running this virtual machine failed; it was rebooted for repair on a healthy host",
            "occuredTime": c.z(healed_at),
            "reportedTime": c.z(back_at),
        },
    )


def user_stopped_transient(c: Clock, title: str, *, since: int) -> dict:
    """A short user-initiated outage (a restart) as Resource Health reported it."""
    return user_transient(
        c,
        "Unavailable",
        title,
        "This virtual machine is restarting as requested by an authorized user or process. It will be back online after the reboot completes",
        since=since,
        reported=since + 2 * MINUTE,
    )
