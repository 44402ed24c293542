"""`?`: every key of the screen underneath, with the user's key overrides
applied, grouped by where it works."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from widgets.plain import add_plain_row

PLACES = {
    "AztriageApp": "everywhere",
    "InventoryScreen": "inventory pane",
    "HealthScreen": "health pane",
    "VmDetailScreen": "VM detail",
    "EventDetailScreen": "event detail",
    "VmTable": "tables",
    "StatusTable": "tables",
    "EventTable": "tables",
    "MaintenanceTable": "tables",
    "FastTable": "tables",
    "FilterBox": "filter box",
    "ChecklistScreen": "checklist pane",
    "FindingsTable": "tables",
    "RecoveryScreen": "recovery pane",
    "StepList": "tables",
    "RunTable": "tables",
    "BootScreen": "boot pane",
    "BootTable": "tables",
    "BootDetailScreen": "boot diagnostics",
    "SerialLogView": "serial log",
    "LogSearch": "filter box",
    "ScrollPanel": "detail panels",
    "VmDetail": "detail panels",
    "ChoiceList": "lists",
    "CopyDialog": "copy dialog",
}

# The verbs on a VM, the same key in every pane (tui/vm_commands.py): shown first by `?` and `aztriage keys`.
VERBS = "enter open · o recover · p probe · c copy · x export · esc back · / filter (in a log: search) · v next view · i serial console · tab next panel"


def _bindings_of(node: DOMNode) -> list[Binding]:
    bindings = node._bindings.copy()
    keymap = node.app._keymap
    if keymap:
        bindings.apply_keymap(keymap)
    out = []
    for _key, binding in bindings:
        if binding.system or not binding.description:
            continue
        out.append(binding)
    return out


def key_rows(screen: Screen) -> list[tuple[str, str, str, str]]:
    """(where, keys, description, binding id) for the screen, its widgets and the app."""
    nodes: list[DOMNode] = [screen.app, screen, *screen.walk_children()]
    grouped: dict[tuple[str, str], list[str]] = {}
    meta: dict[tuple[str, str], tuple[str, str]] = {}
    order: list[tuple[str, str]] = []
    for node in nodes:
        place = PLACES.get(type(node).__name__)
        if place is None:
            continue
        for binding in _bindings_of(node):
            if not binding.id:
                continue  # a widget's own keys (the filter box's cursor keys): not the console's map
            key = (place, binding.action)
            display = screen.app.get_key_display(binding)
            if key not in grouped:
                grouped[key] = []
                meta[key] = (binding.description, binding.id or "")
                order.append(key)
            elif binding.id and not meta[key][1]:
                meta[key] = (binding.description, binding.id)
            if display not in grouped[key]:
                grouped[key].append(display)
    return [(place, " ".join(grouped[(place, action)]), *meta[(place, action)]) for place, action in order]


class HelpScreen(ModalScreen):
    CSS_PATH = "help.tcss"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Close", id="help.close"),
        Binding("question_mark", "app.pop_screen", "Keys", id="help.toggle"),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        table.add_column("WHERE", style="dim", no_wrap=True)
        table.add_column("KEY", style="bold", no_wrap=True)
        table.add_column("WHAT")
        table.add_column("BINDING ID", style="dim", no_wrap=True)
        last = None
        for place, keys, description, binding_id in key_rows(self.under):
            add_plain_row(table, place if place != last else "", keys, description, binding_id)
            last = place
        with VerticalScroll(id="help-box"):
            yield Static(Text("Keys  (esc or ? closes; remap by binding id under [keys] in config.toml)", style="bold"), markup=False)
            yield Static(Text("Everywhere a VM is selected: " + VERBS), markup=False)
            yield Static(table, markup=False)
            yield Static(
                Text(
                    "Filter box: type to filter as you go, enter keeps the filter, esc clears it.\n"
                    "ctrl+p opens the command palette: every action, and 'vm: open NAME' to jump to a VM.",
                    style="dim",
                ),
                markup=False,
            )
