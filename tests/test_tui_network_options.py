"""The network recoveries' options in the Recovery pane, each one the CLI offers: fix-nsg's
source (the detected address, edited, a CIDR; * only after the typed phrase) and hours;
reset-vpn's connection (when there are several) and its heavier gateway option, with the
interruption it causes on screen and the VM's name typed to run it; upgrade-public-ip's
public IP when the VM has several; disable-nla, which says it weakens security before it runs.
All by keys, through the real app."""

from __future__ import annotations

import copy

import pytest

from tests.recovery_support import arm_request, resources, vm_doc
from tests.test_recovery_reset_vpn import status
from tests.test_tui_fix_nsg import open_fix_nsg
from tests.tui_support import choose_scenario, detail, make_app, open_options, open_scenarios, steps_text, wait_for
from widgets.confirm_dialog import ConfirmDialog
from widgets.text_prompt import TextPrompt

pytestmark = pytest.mark.xdist_group("tui-recovery")


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


def option_ids(screen) -> list[str]:
    options = screen.query_one("#options")
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


def option_text(screen, option_id: str) -> str:
    options = screen.query_one("#options")
    return str(options.get_option_at_index(option_ids(screen).index(option_id)).prompt)


async def move_to(pilot, screen, option_id: str) -> None:
    """j from the top until the option is highlighted, as an operator moves."""
    await pilot.press("g")
    for _ in range(option_ids(screen).index(option_id)):
        await pilot.press("j")
    await pilot.pause()
    assert screen.query_one("#options").highlighted == option_ids(screen).index(option_id)


async def answer(pilot, app, text: str) -> TextPrompt:
    await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the prompt")
    prompt = app.screen
    prompt.query_one("#prompt-input").value = ""
    await pilot.press(*text, "enter")
    await pilot.pause()
    return prompt


async def test_fix_nsg_takes_a_typed_range_and_hours_and_plans_with_them(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "allow", choose=False)
        assert "192.88.99.10 (your address) for 4 h" in option_text(screen, "allow")
        await move_to(pilot, screen, "source")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the source prompt")
        assert app.screen.query_one("#prompt-input").value == "192.88.99.10"  # the detected address, to edit
        prompt = await answer(pilot, app, "203.0.113.0/33")
        assert app.screen is prompt and "neither an IP address, a CIDR range" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "203.0.113.9/24")
        await wait_for(pilot, lambda: app.screen is screen and screen.stage == "options", what="the options again")
        assert "from 203.0.113.0/24 for 4 h" in option_text(screen, "allow")
        assert screen.query_one("#options").highlighted == 0
        await move_to(pilot, screen, "hours")
        await pilot.press("enter")
        prompt = await answer(pilot, app, "73")
        assert app.screen is prompt and "from 1 to 72" in str(prompt.query_one("#prompt-error").content)
        await answer(pilot, app, "8")
        await wait_for(pilot, lambda: app.screen is screen and "for 8 h" in option_text(screen, "allow"), what="the hours")
        await pilot.press("g", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["source"] == "203.0.113.0/24" and screen.plan.params["hours"] == 8
        assert "Temporary allow rule: 203.0.113.0/24 to port 3389" in steps_text(screen)
        assert "for 8 h" in screen.plan.summary


async def test_fix_nsg_star_typed_as_the_source_needs_the_phrase(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_fix_nsg(pilot, emu, "source")
        await answer(pilot, app, "*")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the phrase dialog")
        assert app.screen.type_name == "allow 3389 from anywhere"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back in the pane")
        await pilot.pause()
        assert screen.stage == "options" and screen.plan is None  # nothing planned without the phrase
        await move_to(pilot, screen, "source")
        await pilot.press("enter")
        await answer(pilot, app, "Internet")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the phrase dialog")
        await pilot.press(*"allow 3389 from anywhere", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["source"] == "*" and not screen.plan.blockers


def add_connection(emu, name: str, status: str) -> None:
    """A second site-to-site connection on the hub's gateway, as another estate would have."""
    (doc,) = [d for d in resources(emu, "Microsoft.Network/connections") if d["name"] == "cn-hub-to-onprem-amsterdam"]
    other = copy.deepcopy(doc)
    other["name"] = name
    other["id"] = doc["id"].rsplit("/", 1)[0] + f"/{name}"
    other["properties"]["connectionStatus"] = status
    emu.store.put(other)


async def test_reset_vpn_offers_each_connection_and_the_gateway_reset_with_its_interruption(emu):
    add_connection(emu, "cn-hub-to-onprem-rotterdam", "Connected")
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "payroll-app-01", "reset-vpn")
        assert option_ids(screen) == [
            "connection:cn-hub-to-onprem-amsterdam",
            "gateway:cn-hub-to-onprem-amsterdam",
            "connection:cn-hub-to-onprem-rotterdam",
            "gateway:cn-hub-to-onprem-rotterdam",
        ]
        assert "(Connected: a reset only interrupts it)" in option_text(screen, "connection:cn-hub-to-onprem-rotterdam")
        assert "Interrupts service" not in detail(screen)
        await pilot.press("j")
        await pilot.pause()
        text = " ".join(detail(screen).split())
        assert "Interrupts service: gateway vgw-hub-weu" in text and "30-45 minutes with no VPN" in text
        assert "Also interrupted: cn-hub-to-onprem-rotterdam" in text
        await move_to(pilot, screen, "connection:cn-hub-to-onprem-rotterdam")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"gateway": False, "connection": "cn-hub-to-onprem-rotterdam"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "options", what="the connections again")
        assert option_ids(screen)[screen.query_one("#options").highlighted] == "connection:cn-hub-to-onprem-rotterdam"
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.stage == "scenarios", what="the scenarios")
        await choose_scenario(pilot, screen, "reset-vpn")
        await wait_for(pilot, lambda: screen.stage == "options", what="the options")
        await move_to(pilot, screen, "gateway:cn-hub-to-onprem-amsterdam")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"gateway": True, "connection": "cn-hub-to-onprem-amsterdam"}
        assert "Reset VPN gateway vgw-hub-weu" in steps_text(screen) and "DESTRUCTIVE" in steps_text(screen)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        assert app.screen.type_name == "payroll-app-01"
        await pilot.press(*"payroll-app-01", "enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        # The connection reset brought it back: the heavier gateway reset was not needed.
        assert screen.states == {0: "verified", 1: "verified", 2: "skipped", 3: "verified"}, screen.messages
        assert status(emu) == "Connected"


async def test_upgrade_public_ip_asks_which_ip_when_the_vm_has_several(emu):
    vm = vm_doc(emu, "rdgw-shared-01")["doc"]
    nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    group = vm["id"].split("/providers/")[0]
    pip_id = f"{group}/providers/Microsoft.Network/publicIPAddresses/rdgw-shared-01-ip2"
    code, _ = arm_request(emu, "PUT", pip_id, {"location": vm["location"]})
    assert code == 201
    code, nic = arm_request(emu, "GET", nic_id)
    second = copy.deepcopy(nic["properties"]["ipConfigurations"][0])
    second["name"] = "ipconfig2"
    second.pop("id", None)
    second["properties"]["primary"] = False
    second["properties"]["publicIPAddress"] = {"id": pip_id}
    second["properties"].pop("privateIPAddress", None)
    nic["properties"]["ipConfigurations"].append(second)
    code, _ = arm_request(emu, "PUT", nic_id, nic)
    assert code == 200
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_options(pilot, "rdgw-shared-01", "upgrade-public-ip")
        assert option_ids(screen) == ["rdgw-shared-01-ip", "rdgw-shared-01-ip2"]
        assert "Basic, Dynamic" in option_text(screen, "rdgw-shared-01-ip2")
        await pilot.press("G", "enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params["public_ip"] == "rdgw-shared-01-ip2"
        assert "public IP rdgw-shared-01-ip2" in screen.plan.summary


async def test_disable_nla_from_the_pane_says_it_weakens_security_and_turns_nla_off(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_scenarios(pilot, "rdgw-shared-01")
        options = screen.query_one("#scenarios")
        options.highlighted = [options.get_option_at_index(i).id for i in range(options.option_count)].index("disable-nla")
        await pilot.pause()
        assert "RDP check that answers with CredSSP (NLA) while you cannot sign in" in " ".join(detail(screen).split())
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert "Turn NLA off on the RDP listener (weakens security)" in steps_text(screen)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
        lines = str(app.screen.query_one("#confirm-lines").content)
        assert "WEAKENS SECURITY" in lines
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.run_id and not screen.running, timeout=60, what="the run")
        assert set(screen.states.values()) == {"verified"}, screen.messages
    facts = emu.store.guest_facts(vm_doc(emu, "rdgw-shared-01")["doc"]["id"])
    assert facts["rdp_security"] == {"UserAuthentication": 0, "SecurityLayer": 1}
