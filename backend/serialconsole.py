"""What the serial console needs of a custom boot-diagnostics storage account.

Azure Serial Console reads and writes through the storage account the VM's boot
diagnostics use. Managed storage always works; a customer's account behind a firewall
(``networkAcls.defaultAction: Deny``) must let the serial console's gateway in, by IP
rules for the addresses of the VM's geography. Storage firewalls take no service tags,
and the "Allow Azure services" exception does not cover the gateway. Microsoft lists
the addresses per geography in "Azure Serial Console" (Security: "Use Serial Console
with custom boot diagnostics storage account firewall enabled"). That page also says
VMs in a geography with only one region are not supported behind such a firewall.

``storage_firewall_refusal`` is pure: the account (``backend.models.StorageAccount``,
read through the ``StorageAccounts`` capability) and the VM's region in, the one
sentence that refuses the console out (or None).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from backend.models import StorageAccount


@dataclass(frozen=True)
class Geography:
    name: str
    regions: frozenset[str]  # programmatic region names
    addresses: tuple[str, ...]  # the serial console gateway's addresses a storage firewall must allow


def _geo(name: str, regions: str, addresses: str) -> Geography:
    return Geography(name, frozenset(regions.split()), tuple(a.strip() for a in addresses.split(",")))


# Microsoft's table (public Azure), as published; the first addresses are the ones the docs'
# own example names (North Europe: 52.146.139.220 and 20.105.209.72).
GEOGRAPHIES: tuple[Geography, ...] = (
    _geo(
        "Asia", "eastasia southeastasia", "20.205.69.28, 20.195.85.180, 4.145.74.168, 20.195.85.181, 20.205.68.106, 20.205.68.107, 23.97.88.117, 23.98.106.151"
    ),
    _geo(
        "Australia",
        "australiacentral australiacentral2 australiaeast australiasoutheast",
        "20.53.53.224, 20.70.222.112, 4.198.45.55, 4.200.251.224, 20.167.131.228, 20.53.52.250, 20.53.55.174, 20.70.222.113, 68.218.123.133",
    ),
    _geo(
        "Brazil",
        "brazilsouth brazilsoutheast",
        "191.234.136.63, 20.206.0.194, 20.206.0.192, 20.206.0.193, 20.226.211.157, 108.140.5.172, 191.238.77.232, 191.238.77.233",
    ),
    _geo(
        "Canada",
        "canadacentral canadaeast",
        "52.228.86.177, 52.242.40.90, 20.175.7.183, 20.48.201.78, 20.48.201.79, 20.220.7.246, 52.139.106.74, 52.139.106.75",
    ),
    _geo(
        "Europe",
        "northeurope westeurope",
        "52.146.139.220, 20.105.209.72, 4.210.131.60, 20.105.209.73, 40.113.178.49, 52.146.137.65, 52.146.139.221, 98.71.107.78",
    ),
    _geo(
        "France",
        "francecentral francesouth",
        "20.111.0.244, 40.80.103.247, 51.138.215.126, 51.138.215.127, 52.136.191.8, 52.136.191.9, 52.136.191.10, 98.66.128.35",
    ),
    _geo(
        "Germany",
        "germanynorth germanywestcentral",
        "20.52.94.114, 20.52.94.115, 20.52.95.48, 20.113.251.155, 51.116.75.88, 51.116.75.89, 51.116.75.90, 98.67.183.186",
    ),
    _geo(
        "India",
        "centralindia southindia westindia",
        "4.187.107.68, 20.192.47.134, 20.192.47.135, 20.192.152.150, 20.192.152.151, 20.192.153.104, 20.207.175.96, 52.172.82.199, 98.70.20.180",
    ),
    _geo(
        "Japan", "japaneast japanwest", "20.18.7.188, 20.43.70.205, 20.89.12.192, 20.89.12.193, 20.189.194.100, 20.189.228.222, 20.189.228.223, 20.210.144.254"
    ),
    _geo(
        "Korea",
        "koreacentral koreasouth",
        "20.200.166.136, 20.200.194.238, 20.200.194.239, 20.200.196.96, 20.214.133.81, 52.147.119.28, 52.147.119.29, 52.147.119.30",
    ),
    _geo("Norway", "norwayeast norwaywest", "20.100.1.154, 20.100.1.155, 20.100.1.184, 20.100.21.182, 51.13.138.76, 51.13.138.77, 51.13.138.78, 51.120.183.54"),
    _geo(
        "South Africa",
        "southafricanorth southafricawest",
        "20.87.80.28, 20.87.86.207, 40.117.27.221, 102.37.86.192, 102.37.86.193, 102.37.86.194, 102.37.166.222, 102.37.166.223",
    ),
    _geo(
        "Sweden", "swedencentral swedensouth", "20.91.100.236, 51.12.22.174, 51.12.22.175, 51.12.22.204, 51.12.72.222, 51.12.72.223, 51.12.73.92, 172.160.216.6"
    ),
    _geo(
        "Switzerland",
        "switzerlandnorth switzerlandwest",
        "20.199.207.188, 20.208.4.98, 20.208.4.99, 20.208.4.120, 20.208.149.229, 51.107.251.190, 51.107.251.191, 51.107.255.176",
    ),
    _geo("UAE", "uaecentral uaenorth", "20.38.141.5, 20.45.95.64, 20.45.95.65, 20.45.95.66, 20.203.93.198, 20.233.132.205, 40.120.87.50, 40.120.87.51"),
    _geo(
        "United Kingdom", "uksouth ukwest", "20.58.68.62, 20.58.68.63, 20.90.32.180, 20.90.132.144, 20.90.132.145, 51.104.30.169, 172.187.0.26, 172.187.65.53"
    ),
    _geo(
        "United States",
        "centralus eastus eastus2 northcentralus southcentralus westus westus2 westus3 centraluseuap eastus2euap",
        "4.149.249.197, 4.150.239.210, 20.14.127.175, 20.40.200.175, 20.45.242.18, 20.45.242.19, 20.45.242.20, 20.47.232.186, 20.51.21.252, "
        "20.69.5.160, 20.69.5.161, 20.69.5.162, 20.83.222.100, 20.83.222.101, 20.83.222.102, 20.98.146.84, 20.98.146.85, 20.98.194.64, "
        "20.98.194.65, 20.98.194.66, 20.168.188.34, 20.241.116.153, 52.159.214.194, 57.152.124.244, 68.220.123.194, 74.249.127.175, "
        "74.249.142.218, 157.55.93.0, 168.61.232.59, 172.183.234.204, 172.191.219.35",
    ),
)
SHOWN_ADDRESSES = 2  # a refusal names this many of the addresses (one sentence, one line)


def geography_of(region: str) -> Geography | None:
    key = "".join(region.split()).lower()
    return next((g for g in GEOGRAPHIES if key in g.regions), None)


def _allowed(address: str, rules: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in rules:
        try:
            if ip in ipaddress.ip_network(rule, strict=False):
                return True
        except ValueError:
            continue  # not an address or a range: lets nothing in
    return False


def missing_addresses(account: StorageAccount, region: str) -> tuple[str, ...]:
    """The serial console addresses of the region's geography the account's IP rules do not allow."""
    geography = geography_of(region)
    if geography is None:
        return ()
    return tuple(a for a in geography.addresses if not _allowed(a, account.ip_rules))


def storage_firewall_refusal(account: StorageAccount, region: str) -> str | None:
    """The sentence that refuses the serial console of a VM in `region` whose boot diagnostics
    use `account`, or None when the account lets the serial console in."""
    if not account.firewalled:
        return None
    name = account.name
    managed = "or switch the VM's boot diagnostics to managed storage"
    if account.public_network_access.lower() == "disabled":
        return f"Boot diagnostics storage account {name} has public network access disabled, which the serial console cannot pass: enable it for selected networks with the serial console's addresses, {managed}."
    geography = geography_of(region)
    if geography is None:
        return f"Boot diagnostics storage account {name} has a firewall, and the serial console cannot pass a storage firewall for a VM in {region} (a geography with one region): {managed}."
    missing = missing_addresses(account, region)
    if not missing:
        return None
    shown = ", ".join(missing[:SHOWN_ADDRESSES]) + (f" and {len(missing) - SHOWN_ADDRESSES} more" if len(missing) > SHOWN_ADDRESSES else "")
    return (
        f"Boot diagnostics storage account {name} has a firewall that does not let the serial console in: "
        f"allow its {geography.name} addresses ({shown}) in the account's IP rules, {managed}."
    )
