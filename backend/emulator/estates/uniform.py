"""Uniform virtual machine scale sets added to an estate: the scale set, its instances
(``Microsoft.Compute/virtualMachineScaleSets/virtualMachines``, with their instance view)
and each instance's NIC (``.../virtualMachines/{id}/networkInterfaces/{name}``), in the
shapes the Compute and Network providers give them.

Azure's subscription-wide VM list does not return these instances (they are reached
through the scale set's own API, or Resource Graph's ``computeresources`` table); the
emulator's VM list does not either, and its Resource Graph serves them from
``computeresources``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

_NS = uuid.UUID("6f1d0b5e-3c2a-4e8f-9b7d-1a2c3e4f5a6b")


def add_uniform_scale_set(
    estate: dict,
    sub: str,
    rg: str,
    name: str,
    location: str,
    *,
    size: str,
    subnet_id: str,
    powers: Sequence[str] = ("running",),
    private_prefix: str = "10.250.0.",
) -> list[str]:
    """Add the scale set and one instance per entry of ``powers`` (its power state);
    returns the instances' ids."""
    ss_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
    resources = estate.setdefault("resources", [])
    resources.append(
        {
            "id": ss_id,
            "name": name,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": location,
            "sku": {"name": size, "tier": "Standard", "capacity": len(powers)},
            "properties": {
                "orchestrationMode": "Uniform",
                "upgradePolicy": {"mode": "Manual"},
                "provisioningState": "Succeeded",
                "uniqueId": str(uuid.uuid5(_NS, ss_id)),
            },
        }
    )
    ids = []
    for index, power in enumerate(powers):
        vm_id = f"{ss_id}/virtualMachines/{index}"
        nic_id = f"{vm_id}/networkInterfaces/{name}-nic"
        resources.append(
            {
                "id": nic_id,
                "name": f"{name}-nic",
                "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces",
                "location": location,
                "properties": {
                    "provisioningState": "Succeeded",
                    "primary": True,
                    "ipConfigurations": [
                        {
                            "id": f"{nic_id}/ipConfigurations/{name}-ipconfig",
                            "name": f"{name}-ipconfig",
                            "properties": {
                                "privateIPAddress": f"{private_prefix}{4 + index}",
                                "privateIPAllocationMethod": "Dynamic",
                                "subnet": {"id": subnet_id},
                                "primary": True,
                            },
                        }
                    ],
                    "virtualMachine": {"id": vm_id},
                },
            }
        )
        resources.append(
            {
                "id": vm_id,
                "name": f"{name}_{index}",
                "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                "location": location,
                "instanceId": str(index),
                "sku": {"name": size, "tier": "Standard"},
                "properties": {
                    "latestModelApplied": True,
                    "vmId": str(uuid.uuid5(_NS, vm_id)),
                    "provisioningState": "Succeeded",
                    "storageProfile": {
                        "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                        "osDisk": {
                            "osType": "Linux",
                            "name": f"{name}_{name}_{index}_OsDisk_1",
                            "createOption": "FromImage",
                            "caching": "ReadWrite",
                            "managedDisk": {"storageAccountType": "Premium_LRS"},
                            "diskSizeGB": 30,
                        },
                        "dataDisks": [],
                    },
                    "osProfile": {
                        "computerName": f"{name}{index:06d}",
                        "adminUsername": "azureuser",
                        "linuxConfiguration": {"disablePasswordAuthentication": True},
                    },
                    "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
                    "instanceView": {
                        "statuses": [
                            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                            {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"},
                        ],
                    },
                },
            }
        )
        ids.append(vm_id)
    return ids
