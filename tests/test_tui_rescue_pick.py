"""The rescue scenario's choice of an existing rescue VM on a large estate, in the Recovery pane: the
options list the first five VMs that can serve and say how many more could; any other is typed by
name (or id), resolved as `recover --rescue-vm` resolves it, and refused with one sentence (the
prompt again) when it is unknown or cannot serve. All by keys, through the real app, on an estate
of 120 VMs in one subscription (erp-prod-0000-00, Windows in uksouth, has 24 VMs that can serve)."""

from __future__ import annotations

import re

import pytest

from tests.support import start_emulator
from tests.test_tui_network_options import move_to, option_ids, option_text
from tests.tui_support import choose_scenario, detail, make_app, open_scenarios, wait_for
from widgets.text_prompt import TextPrompt

VM = "erp-prod-0000-00"
BEYOND = "erp-prod-0002-10"  # running, Available, Windows in uksouth: it can serve, but is not among the five listed

pytestmark = pytest.mark.xdist_group("tui-recovery")


@pytest.fixture(scope="module")
def emu():
    """An estate larger than the demo's: 120 VMs in one subscription (this module's own emulator)."""
    e = start_emulator("scale:120", subscriptions=1, seed=0)
    yield e
    e.stop()


@pytest.fixture(autouse=True)
def private_journal(recovery_journal):
    return recovery_journal


def vm_id(app, name: str) -> str:
    (vm,) = app.inventory.vm_by_name(name)
    return vm.id


async def open_rescue_options(pilot):
    screen = await open_scenarios(pilot, VM)
    await choose_scenario(pilot, screen, "rescue")
    await wait_for(pilot, lambda: screen.stage == "options", what="the rescue options")
    return screen


async def type_rescue_vm(pilot, app, text: str) -> TextPrompt:
    """The name typed into the rescue VM prompt (the one on screen); returns that prompt."""
    await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rescue VM prompt")
    prompt = app.screen
    prompt.query_one("#prompt-input").value = ""
    await pilot.press(*text, "enter")
    return prompt


async def refused(pilot, app, screen, earlier: TextPrompt) -> tuple[str, str]:
    """The prompt asked again after `earlier` was answered: (the sentence under its field, the pane's detail)."""
    await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt) and app.screen is not earlier, what="the prompt again")
    return str(app.screen.query_one("#prompt-error").content), " ".join(detail(screen).split())


async def test_a_rescue_vm_beyond_the_five_listed_is_typed_and_the_plan_uses_it(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rescue_options(pilot)
        ids = option_ids(screen)
        listed = [option_id.split(":", 1)[1] for option_id in ids if option_id.startswith("existing:")]
        assert len(listed) == 5 and vm_id(app, BEYOND) not in listed
        assert ids[-1] == "+rescue"
        assert option_text(screen, "+rescue") == "Use another VM: 19 more running VMs could serve; type its name…"

        await move_to(pilot, screen, "+rescue")
        await pilot.press("enter")
        await type_rescue_vm(pilot, app, BEYOND.upper())  # names are matched as Azure matches them, whatever the case
        await wait_for(pilot, lambda: app.screen is screen and f"existing:{vm_id(app, BEYOND)}" in option_ids(screen), what="the typed VM")
        # Listed with the others, its two choices as theirs, the first one highlighted; the count is one less.
        beyond = vm_id(app, BEYOND)
        assert option_text(screen, f"existing:{beyond}") == f"Use {BEYOND} (rg-erp-prod-0002) as the rescue VM; run the common fixes"
        assert option_text(screen, f"existing-manual:{beyond}") == f"  Use {BEYOND}; you repair the disk yourself"
        assert screen.query_one("#options").highlighted == option_ids(screen).index(f"existing:{beyond}")
        assert option_text(screen, "+rescue") == "Use another VM: 18 more running VMs could serve; type its name…"

        await move_to(pilot, screen, f"existing-manual:{beyond}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.stage == "plan", what="the plan")
        assert screen.plan.params == {"rescue_vm": beyond, "run_fixes": False, "credential": None}
        assert f"repair the copy on {BEYOND}" in " ".join(detail(screen).split())
        assert f"rescue VM: - → {BEYOND} (yours, LUN" in detail(screen)


async def test_an_unknown_name_and_a_vm_that_cannot_serve_are_refused_and_asked_again(emu):
    app = make_app(emu)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rescue_options(pilot)
        await move_to(pilot, screen, "+rescue")
        await pilot.press("enter")

        prompt = await type_rescue_vm(pilot, app, "nope-01")
        under_field, in_pane = await refused(pilot, app, screen, prompt)
        assert under_field == f"no VM named nope-01 in the subscription of {VM}: a rescue VM must be in the same subscription and region"
        assert under_field in in_pane
        assert app.screen.query_one("#prompt-input").value == "nope-01"  # kept, to correct it

        # Stopped (deallocated), and another OS family: each says why, in one sentence.
        prompt = await type_rescue_vm(pilot, app, "erp-prod-0000-18")
        under_field, in_pane = await refused(pilot, app, screen, prompt)
        assert under_field == "erp-prod-0000-18 is deallocated: start it first, the repair happens on it" and under_field in in_pane
        prompt = await type_rescue_vm(pilot, app, "erp-prod-0000-03")
        under_field, _ = await refused(pilot, app, screen, prompt)
        assert under_field == "erp-prod-0000-03 runs Linux and the disk is Windows: repair it from a VM of the same OS family"
        # The VM being repaired, by its id.
        prompt = await type_rescue_vm(pilot, app, vm_id(app, VM))
        under_field, _ = await refused(pilot, app, screen, prompt)
        assert under_field == f"{VM} is the VM being repaired: the rescue VM must be another one"
        assert "Traceback" not in under_field

        # esc: back to the options as they were, the typed option highlighted, nothing added.
        before = option_ids(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="the options again")
        assert screen.stage == "options" and option_ids(screen) == before
        assert screen.query_one("#options").highlighted == before.index("+rescue")
        assert re.search(r"19 more running VMs could serve", option_text(screen, "+rescue"))
