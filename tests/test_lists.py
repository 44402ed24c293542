"""The raw inventory lists send what the installed SDK would send."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlparse

import pytest

from backend.azure.lists import INVENTORY_LISTS

SUB = "00000000-0000-0000-0000-000000000001"


def sdk_requests():
    # The SDK's own request builders for the same operations (private modules, read here
    # only to keep the table honest when the SDK is upgraded).
    from azure.mgmt.compute.operations import _operations as compute
    from azure.mgmt.network.operations import _operations as network
    from azure.mgmt.resourcehealth.operations import _operations as health

    return {
        "vm_status": compute.build_virtual_machines_list_all_request(SUB, status_only="true"),
        "vms": compute.build_virtual_machines_list_all_request(SUB),
        "disks": compute.build_disks_list_request(SUB),
        "availability_sets": compute.build_availability_sets_list_by_subscription_request(SUB),
        "nics": network.build_network_interfaces_list_all_request(SUB),
        "public_ips": network.build_public_ip_addresses_list_all_request(SUB),
        "nsgs": network.build_network_security_groups_list_all_request(SUB),
        "load_balancers": network.build_load_balancers_list_all_request(SUB),
        "vnets": network.build_virtual_networks_list_all_request(SUB),
        "health": health.build_availability_statuses_list_by_subscription_id_request(SUB, filter="x", expand="recommendedactions"),
        "events": health.build_events_list_by_subscription_id_request(SUB),
    }


@pytest.mark.parametrize("name", sorted(INVENTORY_LISTS))
def test_route_matches_the_sdk(name):
    sdk = sdk_requests()[name]
    route = INVENTORY_LISTS[name]
    url = urlparse(sdk.url)
    assert url.path.lower().replace("{endpoint}", "") == f"/subscriptions/{SUB}{route.path}".lower()
    query = dict(parse_qsl(url.query))
    query.update({k: str(v) for k, v in (sdk.params or {}).items()} if hasattr(sdk, "params") else {})
    assert query.get("api-version") == route.api_version
    if name == "vm_status":
        assert dict(route.params)["statusOnly"] == "true"


def test_subscription_list_and_instance_view_match_the_sdk():
    from azure.mgmt.compute.operations import _operations as compute
    from azure.mgmt.resource.subscriptions.operations import _operations as subscriptions

    from backend.azure.lists import INSTANCE_VIEW_API_VERSION, SUBSCRIPTIONS_LIST, instance_view_path

    sdk = subscriptions.build_subscriptions_list_request()
    assert urlparse(sdk.url).path == SUBSCRIPTIONS_LIST.path
    assert dict(parse_qsl(urlparse(sdk.url).query))["api-version"] == SUBSCRIPTIONS_LIST.api_version
    sdk = compute.build_virtual_machines_instance_view_request("rg-a", "vm-1", SUB)
    assert sdk.method == "GET"
    assert urlparse(sdk.url).path == instance_view_path(SUB, "rg-a", "vm-1")
    assert dict(parse_qsl(urlparse(sdk.url).query))["api-version"] == INSTANCE_VIEW_API_VERSION
