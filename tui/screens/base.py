"""What every pane and detail page shares: the header, the error rows, a
status line and the footer, and redrawing when the inventory changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static
from textual.worker import Worker

from backend.models import Inventory
from tui.messages import InventoryChanged, LoadStateChanged
from widgets.app_header import AppHeader
from widgets.error_rows import ErrorRows
from widgets.fast_table import MANY_ROWS, FastTable
from widgets.presenter_panel import PresenterPanel
from widgets.scroll_panel import ScrollPanel

if TYPE_CHECKING:
    from tui.app import AztriageApp


# From this many VMs a pane the operator leaves lets go of its rows (BaseScreen._hidden).
HIDDEN_ROWS_KEPT = 2000


class BaseScreen(Screen):
    """A screen that mirrors the app's inventory."""

    PANE_ID = ""
    _behind = False  # a newer inventory arrived while the screen was not shown

    @property
    def aztriage(self) -> AztriageApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        # A detail page highlights the pane it was opened from.
        yield AppHeader(self.PANE_ID or self.app.current_mode)
        yield from self.compose_body()
        yield PresenterPanel(id="presenter")  # shown in presenter mode only (tui/presenter.py)
        yield ErrorRows(id="error-rows")
        yield Static("", id="status-line", markup=False)
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.aztriage.subscribe(self)
        inventory = self.aztriage.inventory
        if inventory is not None:
            self.show_inventory(inventory)
        self.show_load_state()

    def on_resize(self, event: events.Resize) -> None:
        # The first frame the operator sees is drawn when the pane is laid out at the
        # terminal's size (the driver's first Resize); what is slow starts after it.
        self.call_after_refresh(self.aztriage.pane_painted)

    def on_unmount(self) -> None:
        self.aztriage.unsubscribe(self)

    @on(InventoryChanged)
    def _inventory_changed(self, message: InventoryChanged) -> None:
        if self.is_current:
            self._behind = False
            self.show_inventory(message.inventory)
        else:
            # A pane nobody looks at is redrawn when it is shown again, not on every
            # refresh: on 10k VMs each pane's redraw holds the event loop for a while.
            # (It keeps no reference to the new inventory meanwhile.)
            self._behind = True
        self.show_load_state()

    def redraw_when_shown(self) -> None:
        """Redraw from the app's inventory now if the screen is shown, else when it is shown again."""
        if self.aztriage.inventory is not None:
            if self.is_current:
                self.show_inventory(self.aztriage.inventory)
            else:
                self._behind = True

    @on(events.ScreenSuspend)
    def _hidden(self) -> None:
        # A pane the operator left for another pane (not a page opened over it) lets go of its
        # table rows on a large estate and rebuilds them when shown: at 10,000 VMs each pane's
        # rows are tens of MB that nobody looks at. What the pane knows (probe results, logs
        # read, the checklist's result) stays; only the rows drawn from it go.
        inventory = self.aztriage.inventory
        if not self.PANE_ID or self.app.current_mode == self.PANE_ID or inventory is None or len(inventory.vms) <= HIDDEN_ROWS_KEPT:
            return
        for table in self.query(FastTable):
            # Only the tables of the estate (a plan's steps or the run list stay as they are).
            if table.total_count > HIDDEN_ROWS_KEPT and table.release_rows():
                self._behind = True
                self.rows_released()

    def rows_released(self) -> None:
        """The pane's estate tables let go of their rows (it is hidden): anything kept to
        make them again goes too."""

    @on(events.ScreenResume)
    def _catch_up(self) -> None:
        if self._behind and self.aztriage.inventory is not None:
            self._behind = False
            self.show_inventory(self.aztriage.inventory)
            self.show_load_state()

    @on(Worker.StateChanged)
    def _forward_worker_state(self, event: Worker.StateChanged) -> None:
        # Textual posts a worker's state changes to the node that started it, without
        # bubbling: forwarded, the app's one handler sees this screen's failed workers too.
        self.app.post_message(Worker.StateChanged(event.worker, event.state))

    @on(LoadStateChanged)
    def _load_state_changed(self, message: LoadStateChanged) -> None:
        self.show_load_state()

    def show_inventory(self, inventory: Inventory) -> None:
        """Redraw from a new inventory (override)."""

    def show_load_state(self) -> None:
        self.query_one(ErrorRows).show_errors(self.aztriage.error_lines())
        self.update_status()

    def update_status(self) -> None:
        """Refresh the status line (override)."""

    def set_status(self, text: Any) -> None:
        # Every pane's status line is one line across the screen (its CSS): new text never
        # changes its size, so no layout of the whole screen for each cursor move or keystroke.
        self.query_one("#status-line", Static).update(text, layout=False)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        """(name, help, callback) of this screen's commands for the command palette."""
        return []


class FilterBox(Input):
    """A pane's filter box: typing filters the pane's table at once. Hidden by the pane's CSS
    unless it has the ``-shown`` class or the focus."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder=placeholder, id="filter", select_on_focus=False)
        # No blinking cursor: steadier over SSH and on a screen share.
        self.set_reactive(Input.cursor_blink, False)


class TableFilterMixin:
    """`/` shows the screen's filter box, typing filters its table, esc clears it: the
    one filter of every pane with a table (the table's own matching: FastTable.set_filter).

    A screen composes ``self.filter_box(placeholder)`` and has ``table`` (with
    ``set_filter``) and ``update_status``; ``after_filter`` is its hook. A screen's own
    ``check_action`` ends with ``super().check_action(...)``."""

    filter_box = FilterBox

    if TYPE_CHECKING:  # what the screen that mixes this in provides
        table: Any

        def query_one(self, *args: Any, **kwargs: Any) -> Any: ...
        def update_status(self) -> None: ...
        def refresh_bindings(self) -> None: ...

        active_bindings: dict[str, Any]
        _bindings: Any

    _opening_filter = False  # `/` has shown the box; it takes the focus at its turn

    def action_filter(self) -> None:
        box = self.query_one(self.filter_box)
        box.add_class("-shown")
        box.focus()
        box.cursor_position = len(box.value)
        self._opening_filter = not box.has_focus

    def on_key(self, event) -> None:
        """Keys typed right after `/` (pasted, or sent together over SSH) reach the screen
        before the `/` binding has run and before the box can take the focus, so they went to
        the table, which had no use for them: "/web" filtered on nothing. So the filter's key
        opens the box as it arrives here, and a printable key that reaches the screen while the
        box is taking the focus is typed into it."""
        if self._opening_filter:
            if event.is_printable and event.character:
                event.stop()
                event.prevent_default()
                self.query_one(self.filter_box).insert_text_at_cursor(event.character)
        elif any(binding.action == "filter" for binding in self._bindings.key_to_bindings.get(event.key, ())):
            event.stop()
            event.prevent_default()
            self.action_filter()

    def on_descendant_focus(self, event) -> None:
        self._opening_filter = False  # the box has the focus (or the operator moved it elsewhere)

    def action_clear_filter(self) -> None:
        box = self.query_one(self.filter_box)
        box.value = ""
        box.remove_class("-shown")
        self.table.set_filter("")
        self.table.focus()
        self.update_status()
        self.refresh_bindings()  # the box's change finds the table's filter already set (on_input_changed)

    def set_filter(self, text: str) -> None:
        box = self.query_one(self.filter_box)
        box.value = text
        box.set_class(bool(text), "-shown")
        self.table.set_filter(text)
        self.after_filter()
        self.update_status()
        self.refresh_bindings()

    def after_filter(self) -> None:
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            # Only offered while there is a filter to clear.
            return bool(self.table.filter_text or self.query_one(self.filter_box).has_focus)
        return super().check_action(action, parameters)  # type: ignore[misc]

    # Typing in the box filters as you go; enter keeps the filter and returns to the table.
    # Typed into the box: the footer is told only when the filter changed what it offers (a key
    # that needs a row under the cursor, esc while a filter is on): it recomposes every key
    # widget when told, about a third of a keystroke's time at 10,000 VMs (benchmarks/launch.py).
    def on_input_changed(self, event) -> None:
        if event.input.id != "filter":
            return
        offered = self._offered_keys()
        self.table.set_filter(event.value)
        self.after_filter()
        self.update_status()
        if self._offered_keys() != offered:
            self.refresh_bindings()

    def _offered_keys(self) -> list[tuple[str, str, bool]]:
        """What the footer shows: each active key, its action and whether it is enabled."""
        return [(key, active.binding.action, active.enabled) for key, active in self.active_bindings.items()]

    def on_input_submitted(self, event) -> None:
        if event.input.id != "filter":
            return
        if not event.value.strip():
            event.input.remove_class("-shown")
        self.table.focus()


TableT = TypeVar("TableT", bound=Widget)  # a FastTable of the pane's own kind, made with its id alone


class TablePane(TableFilterMixin, BaseScreen, Generic[TableT]):
    """A pane of a summary line, the filter box, one table and the scrolling detail panel of
    its current row (Boot, Checklist, Connectivity). A pane sets the table's type and id, the
    detail's id (its panel is ``<id>-box``) and the panel's name, said in its border's hint."""

    table_type: type[TableT]
    table_id = ""
    detail_id = ""
    detail_name = ""
    filter_placeholder = ""

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", markup=False)
        yield self.filter_box(self.filter_placeholder)
        yield self.table_type(id=self.table_id)
        with ScrollPanel(id=f"{self.detail_id}-box", name=self.detail_name):
            yield Static("", id=self.detail_id, markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.focus()

    @property
    def table(self) -> TableT:
        return self.query_one(self.table_type)


class StateRowsMixin:
    """A pane whose table shows one state object per row (Boot, Connectivity).

    Changes that arrive in bursts (probe results, sweeps) are flushed together
    FLUSH_S after the first; a full redraw of many rows is made in slices by a
    worker, the event loop running between them. A screen sets ``row`` (state ->
    table row) and has ``states``, ``table``, ``show_summary``, ``show_detail`` and
    ``update_status``."""

    FLUSH_S = 0.05
    row: Callable[[Any], Any]
    states: dict
    _flush_timer: Any = None

    if TYPE_CHECKING:  # what the screen that mixes this in provides
        table: Any

        is_current: bool
        _behind: bool

        def set_timer(self, *args: Any, **kwargs: Any) -> Any: ...
        def show_summary(self) -> None: ...
        def show_detail(self) -> None: ...
        def update_status(self) -> None: ...

    def _redraw(self) -> None:
        if len(self.states) > MANY_ROWS:
            self._flush_in_slices()
        else:
            self._flush()

    def _empty_text(self) -> str:
        return "No VMs match the filter." if self.states else "No VMs in the selected subscriptions."

    @work(exclusive=True, group="state-rows", exit_on_error=False, description="building rows")
    async def _flush_in_slices(self) -> None:
        table = self.table
        table.empty_text = self._empty_text()
        await table.set_rows_in_slices(self.row(s) for s in list(self.states.values()))
        self._after_rows()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(self.FLUSH_S, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if not self.is_current:
            # Hidden (another pane is shown, or a page over this one): redrawn when shown again
            # (BaseScreen._catch_up). At 10,000 VMs the Connectivity pane, hidden, made its
            # rows (one per VM and port) again each time the background probe changed a verdict: 96 ms on average,
            # 215 times in a 600 s soak (benchmarks/soak.py --trace).
            self._behind = True
            return
        self.table.empty_text = self._empty_text()
        self.table.update_states(self.states.values())
        self._after_rows()

    def _after_rows(self) -> None:
        self.show_summary()
        self.show_detail()
        self.update_status()
