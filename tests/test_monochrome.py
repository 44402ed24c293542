"""Every state reads without colour: wherever a table colours a row as bad,
the row also says so in text (a state in upper case such as UNAVAILABLE,
NOT READY, ACTIVE, HIGH, or a marker: ! ✗ ⏸), so NO_COLOR, a 16-colour
terminal, a projector or a colour-blind operator lose nothing."""

from __future__ import annotations

import re

from backend.checks import run_checks
from backend.diagnose import VERDICTS, Diagnosis
from backend.health import health_view
from tests.support import FIXED_NOW
from widgets.boot_table import BootState, boot_row
from widgets.connectivity_table import PortState, port_row
from widgets.findings_table import BY_RULE, BY_VM, rows_for
from widgets.health_tables import event_rows, maintenance_rows, status_rows
from widgets.step_list import STATE_TEXT
from widgets.vm_table import vm_row

SHOUT = re.compile(r"\b[A-Z][A-Z-]{2,}\b")  # UNAVAILABLE, NOT, HIGH, NSG BLOCKS
MARKERS = ("!", "✗", "⏸")


def says_it_in_text(cells) -> bool:
    return any(SHOUT.search(cell) or any(m in cell for m in MARKERS) for cell in cells)


def bad_rows_without_words(rows) -> list:
    return [row.cells for row in rows if "bad" in row.tones and not says_it_in_text(row.cells)]


async def test_every_table_says_in_text_what_it_colours_bad(backend):
    inv = await backend.inventory()
    vm_rows = [vm_row(vm) for vm in inv.vms]
    assert sum("bad" in r.tones for r in vm_rows) >= 4  # the demo has broken VMs: the check is not empty
    assert bad_rows_without_words(vm_rows) == []

    view = health_view(inv)
    health = status_rows(view.statuses, FIXED_NOW) + event_rows(view.events) + maintenance_rows(view.maintenance)
    assert any("bad" in r.tones for r in health)
    assert bad_rows_without_words(health) == []

    boot = [boot_row(BootState(vm)) for vm in inv.vms] + [boot_row(BootState(vm, off=True)) for vm in inv.vms[:3]]
    assert bad_rows_without_words(boot) == []

    ports = []
    for verdict in VERDICTS:
        vm = inv.vms[0]
        ports.append(port_row(PortState(vm, 22, diagnosis=Diagnosis(vm.name, vm.id, 22, verdict, f"{verdict} summary"))))
    assert any("bad" in r.tones for r in ports)
    assert bad_rows_without_words(ports) == []

    result = run_checks(inv)
    findings = rows_for(result, BY_RULE) + rows_for(result, BY_VM)
    assert any("bad" in r.tones for r in findings)
    assert bad_rows_without_words(findings) == []


def test_plan_step_states_read_in_words():
    for state, (text, tone) in STATE_TEXT.items():
        assert text.split()[-1].strip("…").isalpha(), state  # a word, not only a symbol
        if tone == "bad":
            assert says_it_in_text([text]), state
