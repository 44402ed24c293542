"""Which Azure regions offer availability zones (and with them zone-redundant
managed disks).

A static, conservative list: the public regions Microsoft Learn lists under
"Azure regions with availability zone support" that were generally available
with zones by mid-2025. A region missing here is treated as *unknown*, not as
"no zones": the checklist then stays silent about ZRS rather than invent an
answer. Premium SSD and Standard SSD ZRS disks are offered in these regions;
Ultra Disk, Premium SSD v2 and Standard HDD have no ZRS variant anywhere.
"""

from __future__ import annotations

ZONE_REGIONS: frozenset[str] = frozenset(
    {
        # Americas
        "brazilsouth",
        "canadacentral",
        "centralus",
        "chilecentral",
        "eastus",
        "eastus2",
        "mexicocentral",
        "southcentralus",
        "westus2",
        "westus3",
        "usgovvirginia",
        # Europe
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uksouth",
        "westeurope",
        # Middle East and Africa
        "israelcentral",
        "qatarcentral",
        "uaenorth",
        "southafricanorth",
        # Asia Pacific
        "australiaeast",
        "centralindia",
        "eastasia",
        "indonesiacentral",
        "japaneast",
        "japanwest",
        "koreacentral",
        "malaysiawest",
        "newzealandnorth",
        "southeastasia",
    }
)

# LRS disk SKU -> its zone-redundant counterpart.
ZRS_EQUIVALENT: dict[str, str] = {
    "premium_lrs": "Premium_ZRS",
    "standardssd_lrs": "StandardSSD_ZRS",
}


def normalize(region: str | None) -> str:
    """'East US 2' and 'eastus2' are the same region."""
    return "".join((region or "").split()).lower()


def offers_zones(region: str | None) -> bool | None:
    """True when the region is known to have zones; None when unknown."""
    return True if normalize(region) in ZONE_REGIONS else None


def zrs_for(sku: str | None) -> str | None:
    """The ZRS SKU a disk of this LRS SKU could move to, or None."""
    return ZRS_EQUIVALENT.get((sku or "").lower())
