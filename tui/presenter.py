"""Presenter mode and the trail of what the operator has done.

For walkthroughs and incident bridges: `--present` (or `P`, binding id
`present.toggle`) puts the `-present` class on the app, which makes the
layout roomier (tui/presenter.tcss) and shows a panel at the foot of every
page (widgets/presenter_panel.py) with the "why" of what is on screen, large:

- Recovery pane: the diagnosis that led here, the highlighted scenario, the
  why of the highlighted plan step, and while a run goes, the running step;
- Connectivity pane: the verdict of the row under the cursor and its evidence;
- Boot pane and boot diagnostics page: what the serial log says.

Under it, a breadcrumb of the operator's actions: panes visited, VMs opened,
probes run, recovery steps confirmed, runs finished. The trail is kept
whether presenter mode is on or not (so turning it on mid-incident shows
the story so far), and each entry also goes to the log file.

Where the trail comes from: screen changes (a Textual signal), a press on a
confirmation dialog's button (bubbled up to the app), and a light watch over
the panes' own state a few times a second (a probe that finished, a run
that ended): the panes' workers report to their screen only, so the app
cannot hear them finish. Nothing in the panes had to change: a screen may
offer `presenter_focus() -> Focus` to say what matters itself; otherwise
the readers below look at its state.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from widgets.presenter_panel import Focus, PresenterPanel

log = logging.getLogger("aztriage.activity")

PRESENT_CLASS = "-present"
TRAIL_LIMIT = 200
# How often the panel follows the cursor and the trail looks at the panes: attribute reads, no I/O.
WATCH_S = 0.25


class Trail:
    """The operator's actions in this session, oldest first."""

    def __init__(self, clock: Callable[[], datetime], limit: int = TRAIL_LIMIT) -> None:
        self._clock = clock
        self._items: deque[tuple[datetime, str]] = deque(maxlen=limit)

    def add(self, text: str) -> bool:
        text = " ".join(text.split())
        if not text or (self._items and self._items[-1][1] == text):
            return False
        self._items.append((self._clock(), text))
        log.info("operator: %s", text)
        return True

    @property
    def texts(self) -> list[str]:
        return [text for _at, text in self._items]

    def entries(self) -> list[tuple[datetime, str]]:
        return list(self._items)


# --- what a screen is about ----------------------------------------------------------


def _vm_name(app: Any, vm_id: str) -> str:
    inventory = getattr(app, "inventory", None)
    vm = inventory.vm_by_id(vm_id) if inventory is not None and vm_id else None
    return vm.name if vm is not None else (vm_id or "").rsplit("/", 1)[-1]


def _recovery_focus(screen: Any) -> Focus | None:
    stage = getattr(screen, "stage", "")
    if stage == "scenarios":
        rec = getattr(screen, "recommended", None)
        vm_id = getattr(screen, "vm_id", None) or ""
        if rec is not None and rec.vm_id.lower() == vm_id.lower() and rec.reason:
            evidence = tuple(e for e in rec.evidence if not e.startswith("recommended: "))[:3]
            return Focus(f"Diagnosis: {screen.vm_name()}", rec.reason, evidence + (f"recommended: {rec.scenario}",))
        from textual.widgets import OptionList

        from backend.recovery import scenarios

        options = screen.query_one("#scenarios", OptionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        try:
            scenario = scenarios.get(option_id)
        except (KeyError, ValueError):
            return None
        return Focus(f"Scenario: {scenario.title} for {screen.vm_name()}", scenario.summary)
    if stage in ("plan", "run"):
        plan = getattr(screen, "plan", None)
        if plan is None or not plan.steps:
            return None
        states: dict[int, str] = getattr(screen, "states", {}) or {}
        index = None
        if stage == "run":
            index = next((i for i, s in sorted(states.items()) if s in ("running", "done", "waiting")), None)
        if index is None:
            from widgets.step_list import StepList

            index = screen.query_one(StepList).cursor_index
        if index is None or not 0 <= index < len(plan.steps):
            return None
        step = plan.steps[index]
        lines = [f"changes: {step.changes}"] if step.changes else []
        state = states.get(index)
        if state:
            lines.append(f"state: {state}")
        return Focus(f"Step {index + 1} of {len(plan.steps)}: {step.title}", step.why, tuple(lines))
    return None


def _connectivity_focus(screen: Any) -> Focus | None:
    state = screen.table.cursor_state
    diagnosis = getattr(state, "diagnosis", None) if state is not None else None
    if diagnosis is None:
        return None
    from backend.diagnose import SCENARIO_TITLES

    lines = [line for line in diagnosis.evidence if not line.startswith("recommended: ")][:3]
    if diagnosis.recommended_scenario:
        title = SCENARIO_TITLES.get(diagnosis.recommended_scenario, diagnosis.recommended_scenario)
        lines.append(f"next: o opens the recovery '{title}'")
    return Focus(f"Diagnosis: {diagnosis.vm} port {diagnosis.port}", diagnosis.summary, tuple(lines))


def _boot_state_focus(state: Any) -> Focus | None:
    if state is None:
        return None
    from tui.screens.boot import reason_of

    reason, evidence = reason_of(state)
    if not reason:
        return None
    return Focus(f"Boot diagnosis: {state.vm.name}", reason, tuple(evidence[:3]))


READERS: dict[str, Callable[[Any], Focus | None]] = {
    "RecoveryScreen": _recovery_focus,
    "ConnectivityScreen": _connectivity_focus,
    "BootDetailScreen": lambda screen: _boot_state_focus(screen.state),
    "BootScreen": lambda screen: _boot_state_focus(screen.table.cursor_item),
}


def focus_of(screen: Any) -> Focus | None:
    """The "why" to show for this screen, or None. A reader that trips over a
    half-built screen shows nothing rather than breaking the console."""
    try:
        own = getattr(screen, "presenter_focus", None)
        if callable(own):
            return own()
        reader = READERS.get(type(screen).__name__)
        return reader(screen) if reader is not None else None
    except Exception:
        log.debug("no presenter focus for %s", type(screen).__name__, exc_info=True)
        return None


# --- the app's side ----------------------------------------------------------------------


class Presenter:
    """Owns the trail and presenter mode for one app."""

    def __init__(self, app: Any, *, enabled: bool = False) -> None:
        self.app = app
        self.enabled = enabled
        self.trail = Trail(lambda: app.now())
        self._timer: Any = None
        self._last_pane: str | None = None
        self._shown: tuple[Any, ...] | None = None
        self._dialog: weakref.ref[Any] | None = None
        # What the watch saw last, per screen: {id(screen): marker}
        self._probes: dict[int, tuple[Any, dict[str, int]]] = {}
        self._runs: dict[int, tuple[Any, ...]] = {}
        self.ticks = 0  # looks taken (tests wait on these)

    # --- mode -------------------------------------------------------------------------

    def start(self) -> None:
        """Called from the app's on_mount, before the first pane is shown."""
        self.app.screen_change_signal.subscribe(self.app, self.screen_changed)
        self.app.set_class(self.enabled, PRESENT_CLASS)
        self._timer = self.app.set_interval(WATCH_S, self.tick, name="presenter")

    def toggle(self) -> bool:
        self.set_enabled(not self.enabled)
        return self.enabled

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self.app.set_class(enabled, PRESENT_CLASS)
        self._shown = None
        self.update_panel()

    def tick(self) -> None:
        self.watch_panes()
        self.update_panel()
        self.ticks += 1

    def update_panel(self) -> None:
        if not self.enabled:
            return
        screen = self.app.screen
        try:
            panel = screen.query_one(PresenterPanel)
        except Exception:  # a dialog or the palette: its page keeps its panel
            return
        focus = focus_of(screen)
        trail = self.trail.texts
        shown = (id(screen), focus, len(trail), trail[-1] if trail else None)
        if shown == self._shown:
            return
        if panel.show(focus, trail):
            self._shown = shown

    # --- the trail ---------------------------------------------------------------------

    def note(self, text: str) -> None:
        if self.trail.add(text):
            self.update_panel()

    def screen_changed(self, screen: Any) -> None:
        name = type(screen).__name__
        if name == "ConfirmDialog":
            self._dialog = weakref.ref(screen)
            return
        pane_id = getattr(screen, "PANE_ID", "")
        if pane_id and pane_id != self._last_pane and len(self.app.screen_stack) == 1:
            from tui.panes import pane

            self._last_pane = pane_id
            try:
                p = pane(pane_id)
                self.note(f"{p.key} {p.title}")
            except KeyError:
                self.note(pane_id)
        elif name == "VmDetailScreen":
            self.note(f"opened VM {_vm_name(self.app, getattr(screen, 'vm_id', ''))}")
        elif name == "BootDetailScreen":
            self.note(f"boot diagnostics of {_vm_name(self.app, getattr(screen, 'vm_id', ''))}")
        elif name == "EventDetailScreen":
            self.note("opened a Service Health event")
        self.update_panel()

    def dialog_confirmed(self, control: Any, value: str | None = None) -> None:
        """A press on a confirmation dialog's OK button (or enter in its name box)."""
        dialog = self._dialog() if self._dialog is not None else None
        if dialog is None:
            return
        if value is not None and value.strip() != (getattr(dialog, "type_name", None) or ""):
            return  # enter with the wrong name typed: the dialog stays open
        title = getattr(dialog, "_title", "") or "a confirmation"
        self.note(f"confirmed: {title}")

    def watch_panes(self) -> None:
        """Note the probes and recovery runs that finished since the last look."""
        for screen in list(getattr(self.app, "_subscribers", ())):
            name = type(screen).__name__
            if name == "ConnectivityScreen":
                self._watch_probe(screen)
            elif name == "RecoveryScreen":
                self._watch_run(screen)

    def _watch_probe(self, screen: Any) -> None:
        if getattr(screen, "probing", False):
            return  # judged when it has finished: rows are cleared and refilled meanwhile
        error = getattr(screen, "probe_error", "")
        diagnoses = {key: id(state.diagnosis) for key, state in getattr(screen, "states", {}).items() if state.diagnosis is not None}
        seen = self._probes.get(id(screen))
        self._probes[id(screen)] = (error, diagnoses)
        if seen is None:
            return
        if error and error != seen[0]:
            self.note(error)
            return
        fresh = [screen.states[key] for key, ident in diagnoses.items() if seen[1].get(key) != ident]
        if fresh:
            self.note(probe_text(fresh))

    def _watch_run(self, screen: Any) -> None:
        run_id = getattr(screen, "run_id", None)
        marker = (run_id, getattr(screen, "summary_text", ""))
        seen = self._runs.get(id(screen))
        self._runs[id(screen)] = marker
        if getattr(screen, "running", False) or seen is None or seen == marker or not run_id or not marker[1]:
            return
        first = marker[1].strip().splitlines()
        self.note(f"run {run_id}: {first[0] if first else 'finished'}")


def probe_text(states: list[Any]) -> str:
    """One trail entry for the rows a probe just diagnosed."""
    from backend.diagnose import REACHABLE

    ok = sum(1 for s in states if s.diagnosis.verdict == REACHABLE)
    names = sorted({s.vm.name for s in states})
    what = names[0] if len(names) == 1 else f"{len(names)} VMs"
    bad = len(states) - ok
    return f"probed {what}: {ok} of {len(states)} ports reachable" + (f", {bad} NOT" if bad else "")
