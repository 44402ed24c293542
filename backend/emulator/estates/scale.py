"""``scale:N``: a deterministic estate of N VMs with the demo's variety in proportion.

VMs are spread over ``subscriptions`` subscriptions and resource groups of at
most 24 VMs; every group has its own VNet and a shared NSG, some have an
availability set, a load balancer with NAT rules, a VMSS Flex or a subnet NSG.
Each VM has a NIC, an OS disk (or unmanaged VHD / ephemeral disk), 0-2 data
disks, a public IP about half the time, a Resource Health status and guest
facts. Same ``seed`` and ``now`` give the same estate.

Public addresses: ``127.<20+a>.<b>.<c>`` (loopback, b and c never 0 or 255).
"""

from __future__ import annotations

import random
import uuid
import zlib
from datetime import datetime

from backend.gcpause import gc_paused

from ._common import DAY, HOUR, MINUTE, REGIONS, SERVICE_HEALING, EstateBuilder, available, degraded, unavailable, unknown, user_stopped

_NS = uuid.UUID("0e8f4f2c-6a8d-4bd2-b1b5-9a2d5f0e7c11")
TENANT = "5e7d2c1a-64b3-4f8e-b0a9-2d1c7f6e5a38"

UNITS = [
    "Production",
    "Shared Services",
    "Dev/Test",
    "Retail",
    "Finance",
    "HR Systems",
    "Manufacturing",
    "Logistics",
    "Marketing",
    "Data Platform",
    "Sandbox",
    "SAP",
    "Research",
    "Customer Portal",
    "IoT",
    "Security",
    "Analytics",
    "Mobile",
    "Partner APIs",
    "Archive",
]

# (region, weight)
REGION_WEIGHTS = [
    ("westeurope", 30),
    ("northeurope", 20),
    ("eastus", 20),
    ("eastus2", 8),
    ("westus2", 6),
    ("uksouth", 5),
    ("swedencentral", 3),
    ("southeastasia", 3),
    ("centralus", 3),
    ("westus", 2),
]
WORKLOADS = [
    "web",
    "api",
    "app",
    "sql",
    "db",
    "cache",
    "batch",
    "etl",
    "files",
    "jump",
    "mq",
    "iis",
    "ftp",
    "mon",
    "build",
    "erp",
    "crm",
    "bi",
    "portal",
    "search",
]
WINDOWS_HEAVY = {"sql", "iis", "files", "erp", "crm", "bi", "jump"}
ENVS = ["prod", "prod", "prod", "uat", "test", "dev"]
LINUX_IMAGES = ["ubuntu2204"] * 5 + ["ubuntu2404"] * 2 + ["rhel9"] * 2 + ["ubuntu1804"]
WINDOWS_IMAGES = ["win2022"] * 5 + ["win2019"] * 3 + ["sql2022", "win2016"]
SIZES = (
    ["Standard_D2s_v5"] * 5
    + ["Standard_B2ms"] * 3
    + ["Standard_D4s_v5"] * 2
    + ["Standard_E4s_v5"] * 2
    + ["Standard_D2as_v5"] * 2
    + ["Standard_DS1_v2", "Standard_E8s_v5", "Standard_F4s_v2", "Standard_B2s", "Standard_D2s_v3"]
)
DATA_SKUS = ["Premium_LRS"] * 5 + ["StandardSSD_LRS"] * 3 + ["Standard_LRS", "Premium_ZRS"]
DATA_SIZES = [32, 64, 128, 128, 256, 256, 512, 1024]
STOP_CODES = ["INACCESSIBLE_BOOT_DEVICE", "CRITICAL_PROCESS_DIED", "CRITICAL_SERVICE_FAILED"]
PER_GROUP = 24


def _cum(weights):
    total = 0
    out = []
    for item, w in weights:
        total += w
        out.append((total, item))
    return out, total


def _public_ip(g: int) -> str:
    a, rest = divmod(g, 254 * 254)
    b, c = divmod(rest, 254)
    return f"127.{20 + a}.{b + 1}.{c + 1}"


def build(n: int, *, subscriptions: int = 3, seed: int = 0, now: datetime) -> dict:
    with gc_paused():  # building ~50 small containers per VM: the cyclic GC would only slow this down
        return _build(n, subscriptions, seed, now)


def _build(n: int, subscriptions: int, seed: int, now: datetime) -> dict:
    rng = random.Random(seed)
    rand = rng.random

    def choice(seq):  # rng.choice is several times slower and this runs ~8 times per VM
        return seq[int(rand() * len(seq))]

    getrandbits = rng.getrandbits

    def guid(_key: str) -> str:
        s = f"{getrandbits(128):032x}"
        return f"{s[:8]}-{s[8:12]}-4{s[13:16]}-a{s[17:20]}-{s[20:]}"

    b = EstateBuilder(now, guid)
    c = b.clock
    subs = [str(uuid.uuid5(_NS, f"scale-{seed}-{i}")) for i in range(subscriptions)]
    for i, sub in enumerate(subs):
        unit = UNITS[i % len(UNITS)] + (f" {i // len(UNITS) + 1}" if i >= len(UNITS) else "")
        b.subscription(sub, f"Contoso {unit}", TENANT)

    cum, total = _cum(REGION_WEIGHTS)

    def pick_region() -> str:
        x = rand() * total
        for edge, item in cum:
            if x < edge:
                return item
        return cum[-1][1]

    groups = max(subscriptions, -(-n // PER_GROUP))
    pip_counter = 0
    sub_regions: dict[str, dict[str, int]] = {s: {} for s in subs}
    maint_regions: dict[str, set[str]] = {s: set() for s in subs}
    now_offsets_created = [-(d * DAY + h * HOUR) for d in range(20, 1500, 7) for h in (0, 5, 13)]

    for g in range(groups):
        si = g % subscriptions
        sub = subs[si]
        region = pick_region()
        zonal_region = REGIONS[region][1]
        wl = choice(WORKLOADS)
        env = choice(ENVS)
        rg = f"rg-{wl}-{env}-{g:04d}"
        tags = {"env": env, "owner": f"{wl}-team", "app": f"contoso-{wl}", "costCenter": f"CC-{1000 + g % 900}"}
        b.resource_group(sub, rg, region, tags)
        first = g * n // groups
        last = (g + 1) * n // groups
        count = last - first
        sub_regions[sub][region] = sub_regions[sub].get(region, 0) + count

        deny_rdp = rand() < 0.06
        rules: list[tuple] = [("Allow-SSH", 300, "Allow", "Tcp", "22", "*"), ("Allow-RDP", 310, "Allow", "Tcp", "3389", "*")]
        if deny_rdp:
            rules.insert(0, ("Deny-RDP-Internet", 200, "Deny", "Tcp", "3389", "Internet"))
        if wl in ("web", "api", "portal", "iis"):
            rules.insert(0, ("Allow-HTTP-HTTPS", 100, "Allow", "Tcp", ["80", "443"], "Internet"))
        nsg = b.nsg(sub, rg, f"nsg-{wl}-{env}-{g:04d}", region, rules, tags)
        subnet_nsg = None
        if rand() < 0.04:
            subnet_nsg = b.nsg(
                sub,
                rg,
                f"nsg-snet-{wl}-{g:04d}",
                region,
                [
                    ("Deny-SSH-Inbound", 110, "Deny", "Tcp", "22", "*", "Inbound", "SSH only through Bastion"),
                ],
                tags,
            )
        o2, o3 = (g >> 8) & 255, g & 255
        sn = b.vnet(sub, rg, f"vnet-{wl}-{env}-{g:04d}", region, [f"10.{o2}.{o3}.0/24"], [("default", f"10.{o2}.{o3}.0/24", subnet_nsg)], tags)["default"]
        avset = None
        crowded = False
        fd_count = 2
        if count >= 2 and rand() < 0.35:
            fd_count = choice((2, 2, 3))
            avset = b.availability_set(sub, rg, f"avset-{wl}-{env}-{g:04d}", region, fault_domains=fd_count, update_domains=5, tags=tags)
            crowded = rand() < 0.2
        lb = None
        if count >= 2 and rand() < 0.12:
            lb_pip = b.public_ip(
                sub,
                rg,
                f"pip-lb-{wl}-{g:04d}",
                region,
                _public_ip(pip_counter),
                zones=["1", "2", "3"] if zonal_region else None,
                label=f"lb-{wl}-{env}-{g:04d}",
                tags=tags,
            )
            pip_counter += 1
            nat = []
            for k in range(count):
                nat.append((f"nat-{k:02d}", 50001 + k, 0))  # backend port fixed below per VM OS
            lb = b.load_balancer(
                sub, rg, f"lb-{wl}-{env}-{g:04d}", region, lb_pip, pools=["bepool"], nat=nat, lb_rules=[("rule-https", 443, 443, "bepool")], tags=tags
            )
        vmss = None
        if count >= 3 and rand() < 0.05:
            vmss = b.scale_set(sub, rg, f"vmss-{wl}-{env}-{g:04d}", region, "Standard_D2s_v5", capacity=0, tags=tags)

        for k in range(count):
            windows = rand() < (0.7 if wl in WINDOWS_HEAVY else 0.3)
            image = choice(WINDOWS_IMAGES if windows else LINUX_IMAGES)
            size = choice(SIZES)
            name = f"{wl}-{env}-{g:04d}-{k:02d}"
            r = rand()
            power = "running" if r < 0.86 else "deallocated" if r < 0.94 else "stopped" if r < 0.98 else "starting"
            zones = None
            fd = ud = None
            in_set = None
            member_of = None
            if avset and rand() < 0.8:
                in_set = avset
                fd = 0 if crowded else k % fd_count
                ud = k % 5
            elif vmss and rand() < 0.6:
                member_of = vmss
                name = f"vmss-{wl}-{env}-{g:04d}_{getrandbits(24):06x}{k:02x}"
            elif zonal_region and rand() < 0.4:
                zones = [choice("123")]
            spot = ephemeral = unmanaged = False
            if not in_set and not member_of and not windows and env != "prod" and rand() < 0.12:
                spot = True
            if not windows and not in_set and rand() < 0.04:
                ephemeral = True
                size = "Standard_D2ds_v5"
            if not zones and not member_of and not ephemeral and rand() < 0.025:
                unmanaged = True
            trusted = not unmanaged and image not in ("win2016", "ubuntu1804") and rand() < 0.3
            delete_all = ephemeral or rand() < 0.2
            has_pip = rand() < 0.5
            nat_rules = []
            lb_pools = []
            if lb is not None:
                lb_pools = [f"{lb}/backendAddressPools/bepool"]
                if not has_pip:
                    rule_id = f"{lb}/inboundNatRules/nat-{k:02d}"
                    b._lb_child(rule_id)["properties"]["backendPort"] = 3389 if windows else 22
                    nat_rules = [rule_id]
            pip_sku = "Basic" if has_pip and rand() < 0.08 else "Standard"
            address = None
            if has_pip:
                address = _public_ip(pip_counter)
                pip_counter += 1
            ndata = choice((0, 0, 1, 1, 2))
            data = [(choice(DATA_SIZES), choice(DATA_SKUS)) for _ in range(ndata)]
            if zones and rand() < 0.05:
                data.append((1024, "UltraSSD_LRS"))
            agent = "ready"
            maintenance = None
            boot = "ok"
            ports = None
            uptime = choice((3 * HOUR, 2 * DAY, 6 * DAY, 13 * DAY, 27 * DAY, 45 * DAY, 90 * DAY))
            if power == "running":
                x = rand()
                if x < 0.03:
                    s0 = choice((1, 2, 3, 5)) * DAY
                    maintenance = b.maintenance(s0, s0 + 7 * DAY, s0 + 9 * DAY, s0 + 11 * DAY)
                    maint_regions[sub].add(region)
                elif x < 0.05:
                    agent = "not-ready"
                x = rand()
                if windows and x < 0.008:
                    boot = "stop-code:" + choice(STOP_CODES)
                elif not windows and x < 0.006:
                    boot = "emergency-fstab"
                elif not windows and x < 0.012:
                    boot = "fsck"
            port = "3389" if windows else "22"
            x = rand()
            if boot != "ok" or x < 0.02:
                ports = {port: "silent"}
            elif x < 0.04:
                ports = {port: "refused"}
            else:
                ports = {port: "rdp" if windows else "ssh"}
            bd = rand()
            boot_diag = "managed" if bd < 0.85 else "off" if bd < 0.95 else f"https://stbootdiag{si:03d}.blob.core.windows.net/"
            facts = b.vm(
                sub,
                rg,
                name,
                region,
                image=image,
                size=size,
                subnet_id=sn,
                nsg_id=nsg,
                public_ip=address,
                pip_sku=pip_sku,
                pip_label=name.replace("_", "-") if has_pip and rand() < 0.5 else None,
                zones=zones,
                avset=in_set,
                fault_domain=fd,
                update_domain=ud,
                vmss=member_of,
                spot=spot,
                ephemeral=ephemeral,
                trusted_launch=trusted,
                vhd_account=f"stlegacyvhd{si:03d}" if unmanaged else None,
                delete_all=delete_all,
                os_sku=choice(("Premium_LRS", "Premium_LRS", "StandardSSD_LRS")),
                data_disks=data,
                power=power,
                agent=agent,
                maintenance=maintenance,
                boot_diag=boot_diag,
                lb_pools=lb_pools,
                nat_rules=nat_rules,
                created=choice(now_offsets_created),
                uptime=uptime,
                extensions=rand() < 0.5,
                tags=tags,
                instance_view=None,
            )
            # -- Resource Health
            if power != "running":
                props = user_stopped(c, power=power, since=-uptime)
            else:
                x = rand()
                if x < 0.02:
                    props = unavailable(c, since=-choice((12, 25, 47, 95)) * MINUTE)
                elif x < 0.045:
                    props = degraded(c, since=-choice((20, 42, 180)) * MINUTE)
                elif x < 0.055:
                    props = unknown(c, since=-choice((11, 15, 30)) * MINUTE)
                elif x < 0.075:
                    end = -uptime
                    props = available(c, since=end, recently_resolved=(end - 23 * MINUTE, end, SERVICE_HEALING))
                else:
                    props = available(c, since=-uptime)
            b.health(facts["id"], region, props)
            extra = {}
            if agent == "not-ready":
                extra["agent"] = "not-ready"
            if has_pip and rand() < 0.02:
                extra["previous_public_ip"] = _public_ip(10_000_000 + pip_counter)
            b.guest_facts(facts, name=name, boot=boot, ports=ports, uptime=uptime, **extra)

        if lb is not None:  # NAT rules no VM took (VMs with their own public IP) are dropped
            lbd = b.docs[lb]["properties"]
            keep = [r for r in lbd["inboundNatRules"] if "backendIPConfiguration" in r["properties"]]
            lbd["inboundNatRules"] = keep
            lbd["frontendIPConfigurations"][0]["properties"]["inboundNatRules"] = [{"id": r["id"]} for r in keep]

    _events(b, subs, sub_regions, maint_regions, rng)
    return b.finish()


def _tracking_suffix(key: str) -> str:
    return f"{zlib.crc32(key.encode()) & 0xFFFF:04X}-{zlib.crc32(key.encode()) % 1000:03d}"


def _events(b: EstateBuilder, subs, sub_regions, maint_regions, rng) -> None:
    c = b.clock
    for sub in subs:
        regions = sorted(sub_regions[sub], key=lambda r: (-sub_regions[sub][r], r)) or ["westeurope"]
        active = regions[0]
        name = REGIONS[active][0]
        rng.getrandbits(16)  # kept: the estate's random sequence stays what it was
        # One service issue per region, shared by the subscriptions it touches, as Azure has one
        # tracking id per incident: a thousand subscriptions do not make a thousand outages.
        tid = _tracking_suffix(active)
        ups = [
            (
                -40 * MINUTE,
                f"Starting at {c.at(-45 * MINUTE):%H:%M} UTC, a subset of customers using Virtual "
                f"Machines in {name} may experience connection failures. Engineers are investigating.",
            ),
            (
                -12 * MINUTE,
                "A networking device in one datacenter was identified as the cause and taken out of rotation. Impacted Virtual Machines are recovering.",
            ),
        ]
        b.service_issue(
            sub,
            "SI" + tid,
            title=f"Virtual Machines - {name} - Connectivity failures",
            region=active,
            updates=ups,
            start=-45 * MINUTE,
            event_level="Error",
        )
        other = regions[-1]
        ups = [(-6 * DAY, f"Mitigated: customers may have seen allocation failures for Virtual Machines in {REGIONS[other][0]}.")]
        b.service_issue(
            sub,
            "RS" + _tracking_suffix(other),
            title=f"Mitigated - Virtual Machines - {REGIONS[other][0]} - Allocation failures",
            region=other,
            updates=ups,
            start=-6 * DAY - 2 * HOUR,
            mitigation=-6 * DAY,
        )
        if maint_regions[sub]:
            mregs = sorted(maint_regions[sub])
            b.planned_maintenance(
                sub,
                "PM" + _tracking_suffix("-".join(mregs)),
                title="Planned maintenance: Virtual Machines - " + ", ".join(REGIONS[r][0] for r in mregs),
                summary="Azure will perform host maintenance that requires a reboot of some Virtual Machines.",
                regions=mregs,
                start=10 * DAY,
                end=16 * DAY,
            )
        b.agent_advisory(
            c,
            sub,
            "HA" + _tracking_suffix(regions[0]),
            regions[:3],
            "Virtual machines running an outdated Azure VM agent can lose the ability to run extensions and to report health. Update the agent.",
        )
