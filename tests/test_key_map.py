"""One key map: the same verb has the same key in every pane (enter open, o recover,
p probe, c copy, x export, esc back), and a key names one verb; the lists move with
j/k/g/G like the tables; `?` shows the console's keys, not a text box's own."""

from __future__ import annotations

from collections import defaultdict

from textual.app import App
from textual.binding import Binding
from textual.widgets.option_list import Option

from tests.tui_support import make_app, screen_text, wait_for, wait_loaded
from tui.keymap import declared_bindings
from widgets.option_list import ChoiceList

VERB_KEYS = {"Recover": "o", "Probe": "p", "Copy": "c", "Export": "x", "Back": "escape", "Open": "enter"}


def test_each_verb_has_one_key_and_each_verb_key_means_that_verb():
    by_description: dict[str, set[str]] = defaultdict(set)
    by_key: dict[str, set[str]] = defaultdict(set)
    for _cls, binding in declared_bindings():
        assert isinstance(binding, Binding)
        by_description[binding.description].add(binding.key)
        by_key[binding.key].add(binding.description)
    for verb, key in VERB_KEYS.items():
        assert by_description[verb] == {key}, (verb, by_description[verb])
        assert by_key[key] <= {verb, "Back to the console", "Clear filter", "Clear", "Cancel", "Close"} if key == "escape" else by_key[key] == {verb}, (
            key,
            by_key[key],
        )
    # Each verb is offered where a VM is selected.
    owners = defaultdict(set)
    for cls, binding in declared_bindings():
        owners[binding.description].add(cls.__name__)
    for pane in ("InventoryScreen", "HealthScreen", "VmDetailScreen", "ConnectivityScreen", "BootScreen", "BootDetailScreen"):
        assert pane in owners["Recover"] and pane in owners["Probe"], pane


class Choices(App[None]):
    def compose(self):
        yield ChoiceList(*(Option(f"scenario {i}", id=f"s{i}") for i in range(12)), id="choices")


async def test_the_scenario_and_option_lists_move_with_j_k_g_G():
    app = Choices()
    async with app.run_test(size=(80, 24)) as pilot:
        choices = app.query_one(ChoiceList)
        choices.focus()
        choices.highlighted = 0
        await pilot.press("j", "j")
        assert choices.highlighted == 2
        await pilot.press("k")
        assert choices.highlighted == 1
        await pilot.press("G")
        assert choices.highlighted == 11
        await pilot.press("g")
        assert choices.highlighted == 0


async def test_help_shows_the_consoles_keys_not_the_filter_boxs(emulator):
    app = make_app(emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "o recover · p probe · c copy · x export · esc back" in shown
        assert "Recover" in shown and "inventory.recover" in shown
        # Textual's Input keys ("Move cursor left", "Delete character left", ...) are not the console's map.
        assert "cursor left" not in shown.lower() and "delete" not in shown.lower(), shown


async def test_footers_and_status_lines_are_whole_at_80_columns_with_a_filter_on(emulator):
    """With a filter on, each pane's footer still ends with '? Keys' (the esc key's 'Clear filter'
    pushed it off), and the Connectivity status line's keys end whole, filtered or not ('x .rdp' was cut)."""
    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        panes = {"1": "inventory", "3": "connectivity", "5": "checklist", "6": "boot"}
        for pane, pane_id in panes.items():
            await pilot.press(pane)
            await wait_for(pilot, lambda want=pane_id: getattr(app.screen, "PANE_ID", None) == want, what=f"pane {pane}")
            app.screen.set_filter("web")
            # The footer follows the filter (esc clears it now): wait for it, then read it.
            await wait_for(pilot, lambda: "esc Clear" in screen_text(app).splitlines()[-1], what=f"the footer of pane {pane} with a filter on")
            lines = screen_text(app).splitlines()
            assert "? Keys" in lines[-1], (pane, lines[-1])
            if pane == "3":
                assert lines[-2].rstrip().endswith("x .rdp"), lines[-2]
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(app.screen, "PANE_ID", None) == "connectivity", what="pane 3")
        app.screen.set_filter("")
        await wait_for(pilot, lambda: "esc Clear" not in screen_text(app).splitlines()[-1], what="the footer without a filter")
        assert screen_text(app).splitlines()[-2].rstrip().endswith("x .rdp")


async def test_o_from_the_inventory_and_p_from_the_vm_detail(emulator):
    from tui.screens.connectivity import ConnectivityScreen
    from tui.screens.recovery import RecoveryScreen

    app = make_app(emulator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        inventory = app.screen
        inventory.set_filter("dev-spot-01")
        await pilot.pause()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RecoveryScreen) and app.screen.facts is not None, what="the Recovery pane on dev-spot-01")
        recovery = app.screen
        assert recovery.vm_name() == "dev-spot-01"
        options = recovery.query_one("#scenarios")
        assert options.get_option_at_index(options.highlighted).id == "start"  # the verdict's recovery, first
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("enter")  # the detail of the (filtered) VM
        await pilot.pause(0.2)
        await pilot.press("p")
        await wait_for(
            pilot, lambda: isinstance(app.screen, ConnectivityScreen) and not app.screen.probing and app.screen.probed_at is not None, what="the probe"
        )
        probed = [s for s in app.screen.states.values() if s.diagnosis is not None]
        assert {s.vm.name for s in probed} == {"dev-spot-01"}
        assert "dev-spot-01" in screen_text(app)


# Words that name one verb: esc leaves where you are (clears the filter first, closes a dialog),
# and / finds (filters a list, searches a log).
SAME_VERB = {
    "Clear filter": "Back",
    "Clear": "Back",
    "Cancel": "Back",
    "Close": "Back",
    "Back to the console": "Back",
    "Search": "Filter",
}


def _verb(description: str) -> str:
    return SAME_VERB.get(description, description)


def test_no_key_means_two_verbs_in_any_pane_or_dialog():
    """Every binding the console declares (screens, dialogs, widgets, the app): a key means one verb
    wherever it is pressed. A dialog's number keys pick its own numbered items (the copy dialog), which
    a pane's number keys (1-6: panes) cannot mean while it is open: those are the only exception."""
    from textual.screen import ModalScreen

    verbs_of_key: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], set[str]] = defaultdict(set)
    for cls, binding in declared_bindings():
        for key in (k.strip() for k in binding.key.split(",")):
            if key.isdigit() and issubclass(cls, ModalScreen):
                continue
            verbs_of_key[key].add(_verb(binding.description))
            where[(key, _verb(binding.description))].add(cls.__name__)
    twice = {key: {verb: sorted(where[(key, verb)]) for verb in verbs} for key, verbs in verbs_of_key.items() if len(verbs) > 1}
    assert twice == {}, twice
    # The keys the issue found with two meanings now have one each.
    assert verbs_of_key["z"] == {"Azure"} and verbs_of_key["u"] == {"Undo"} and verbs_of_key["b"] == {"Boot log"}
    assert verbs_of_key["v"] == {"View"} and verbs_of_key["w"] == {"Window"} and verbs_of_key["x"] == {"Export"}


def test_each_verb_has_one_key():
    """The other way round: a verb (other than moving in a list) is reached by the same key in every pane."""
    navigation = {"Up", "Down", "Page up", "Page down", "Top", "Bottom", "Left", "Right"}
    keys_of_verb: dict[str, set[str]] = defaultdict(set)
    for _cls, binding in declared_bindings():
        verb = _verb(binding.description)
        if verb not in navigation and not binding.key.isdigit():
            keys_of_verb[verb].add(binding.key)
    assert {verb: keys for verb, keys in keys_of_verb.items() if len(keys) > 1} == {}


def _readme_key_table() -> dict[str, str]:
    """README's key map: | key | verb | where |, one row per key."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("<!-- key map -->", 2)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and not cells[0][1].isdigit():
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_readme_key_table_agrees_with_the_bindings_aztriage_keys_and_help_show():
    from textual.keys import format_key

    from tui.keymap import display_key

    declared: dict[str, set[str]] = defaultdict(set)
    for _cls, binding in declared_bindings():
        for key in (k.strip() for k in binding.key.split(",")):
            if key.isdigit():
                continue  # 1-6 panes, and the copy dialog's items: a row of their own in the README
            declared[display_key(key)].add(_verb(binding.description))
    readme = _readme_key_table()
    assert readme, "README has no key map"
    assert set(readme) == set(declared), (sorted(set(declared) - set(readme)), sorted(set(readme) - set(declared)))
    for key, verbs in declared.items():
        assert readme[key] in verbs, (key, readme[key], verbs)
    assert format_key("question_mark") == "?"
