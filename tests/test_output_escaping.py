"""Tenant text cannot break out of the document it is written into (issue 14, item 7).

A Markdown report or checklist read in a ticket or a wiki must show data as text: no raw
HTML (``<script>``, ``<img onerror>``), no link or image (``javascript:``), no emphasis
or code span, no extra table column, no heading or list started by data. A CSV export
opened in a spreadsheet must never run a cell as a formula (OWASP CSV injection: a cell
that begins with ``=``, ``+``, ``-``, ``@``, tab or CR). Proven three ways: for any
string (hypothesis) through the one helper every writer uses (backend/escape.py), for the
hostile estate's payload classes, and on the real outputs (``aztriage report`` and
``aztriage check --format md``, the console's CSV and Markdown exports) read back by a
Markdown parser (markdown-it, CommonMark with GFM tables) and by the csv module.
"""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from backend.emulator.estates import hostile
from backend.escape import CSV_FORMULA_STARTERS, csv_cell, md_code, md_inline, safe_filename
from backend.safetext import safe_text
from tests.recovery_support import cli_connection, cli_env
from tests.tui_support import make_app, wait_loaded

REPO = Path(__file__).resolve().parents[1]
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# Every link counts, whatever its scheme: markdown-it drops javascript: and file: links itself,
# another renderer may not, and a link from data is a finding whatever it points at.
MD.validateLink = lambda url: True

# Text as models hold it: anything but the controls backend/safetext already made visible.
MODEL_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf")), max_size=60)
# The hostile estate's payloads as models hold them (made safe where they came in).
PAYLOADS = [safe_text(hostile.payload(cls, random.Random(f"{cls}{i}"))) for cls in hostile.CLASSES for i in range(8)]
PAYLOADS += [safe_text(hostile.hostile_text(random.Random(i), "word")) for i in range(8)]
STRUCTURE = {"html_inline", "html_block", "link_open", "image", "em_open", "strong_open", "code_inline", "s_open", "autolink", "hardbreak", "softbreak"}


def inline_tokens(markdown: str) -> list:
    (block,) = [t for t in MD.parse(markdown) if t.type == "inline"]
    return block.children or []


def shown_text(tokens) -> str:
    return "".join(t.content for t in tokens if t.type == "text")


def assert_literal(value: str) -> None:
    tokens = inline_tokens("before " + md_inline(value) + " after")
    assert not [t.type for t in tokens if t.type in STRUCTURE], f"{value!r} became Markdown: {md_inline(value)!r}"
    assert shown_text(tokens) == "before " + (value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ") or "-") + " after"


@given(MODEL_TEXT)
@settings(max_examples=400, deadline=None)
def test_any_text_is_literal_in_a_markdown_line(value):
    assert_literal(value)


@given(MODEL_TEXT)
@settings(max_examples=300, deadline=None)
def test_any_text_stays_in_its_table_cell(value):
    doc = "| a | b | c |\n|---|---|---|\n| x | " + md_inline(value) + " | y |\n"
    tokens = MD.parse(doc)
    assert [t.type for t in tokens].count("td_open") == 3, f"{value!r} changed the table's columns: {md_inline(value)!r}"
    (middle,) = [tokens[i + 1] for i, t in enumerate(tokens) if t.type == "td_open"][1:2]
    assert not [t.type for t in middle.children or [] if t.type in STRUCTURE]
    # A table cell's edges are trimmed; "" is shown as "-".
    assert shown_text(middle.children or []).strip() == (value.strip() if value else "-")


@pytest.mark.parametrize("value", PAYLOADS, ids=lambda v: repr(v)[:30])
def test_hostile_payloads_are_literal_markdown(value):
    assert_literal(value)


@given(MODEL_TEXT)
@settings(max_examples=200, deadline=None)
def test_a_code_span_holds_any_command(value):
    value = value.strip(" ") or "x"  # a code span drops one space at each edge
    tokens = inline_tokens("Connect: " + md_code(value))
    assert [t.type for t in tokens] == ["text", "code_inline"]
    assert tokens[1].content == value


@given(st.lists(st.text(max_size=30) | st.sampled_from(PAYLOADS), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_no_csv_cell_is_a_formula(cells):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(c) for c in cells])
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert len(row) == len(cells)
    for written, original in zip(row, cells):
        assert not written.lstrip(" ").startswith(CSV_FORMULA_STARTERS), written
        assert written in (original, "'" + original)


@pytest.mark.parametrize("starter", CSV_FORMULA_STARTERS)
def test_every_formula_starter_is_neutralised(starter):
    for rng in map(random.Random, range(20)):
        value = starter + hostile.payload("csv_formula", rng)
        assert csv_cell(value) == "'" + value
        assert csv_cell("  " + value) == "'  " + value


@pytest.mark.parametrize("name", ["../../etc/passwd", ".hidden", "a/b\\c", "..", "", "vm\u202e gnp.exe", "web-prod-01"])
def test_file_names_from_data_stay_in_their_folder(name):
    safe = safe_filename(name)
    assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".") and safe.isascii()
    if name == "web-prod-01":
        assert safe == name


# --- the real outputs on the hostile estate ---------------------------------------------------


def _cell_boundaries(line: str) -> int:
    """The unescaped ``|`` in a table line (a backslash escapes the next character)."""
    count, escaped = 0, False
    for ch in line:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            count += 1
    return count


def markdown_problems(text: str) -> list[str]:
    """What in a Markdown document came from data as structure: raw HTML, a link or image,
    a table row with more or fewer cell boundaries than its header (GFM drops extra cells
    silently, so the source is counted)."""
    out = []
    for t in MD.parse(text):
        if t.type in ("html_block", "html_inline"):
            out.append(f"raw HTML at line {t.map}: {t.content[:60]!r}")
        for child in t.children or []:
            if child.type in ("html_inline", "link_open", "image", "autolink"):
                out.append(f"{child.type} at line {t.map}: {child.content[:60]!r} {child.attrs}")
    header = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = _cell_boundaries(line)
        elif _cell_boundaries(line) != header:
            out.append(f"line {number}: a table row with {_cell_boundaries(line)} cell boundaries under a header of {header}")
    return out


def test_markdown_problems_finds_what_raw_text_would_do():
    raw = "| a | b |\n|---|---|\n| x | evil | extra |\n\n<script>alert(1)</script>\n\nsee [x](javascript:alert(1)) <img src=x onerror=alert(1)>\n"
    found = markdown_problems(raw)
    assert any("HTML" in f for f in found) and any("link_open" in f for f in found) and any("table row" in f for f in found)


def _cli(emu, home: Path, *argv: str) -> str:
    env = cli_env(home, emu)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())", *argv, *cli_connection(emu)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
        text=True,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_report_and_checklist_markdown_show_hostile_text_as_text(hostile_emulator, tmp_path):
    report = _cli(hostile_emulator, tmp_path, "report", "--no-probe", "--vm", "api-dev-01", "--vm", "files-shared-01", "--vm", "web-prod-01")
    checklist = _cli(hostile_emulator, tmp_path, "--format", "md", "check")
    timeline = _cli(hostile_emulator, tmp_path, "--format", "md", "timeline", "--vm", "jump-prod-01", "--since", "30d")
    for name, text in (("report", report), ("check --format md", checklist), ("timeline --format md", timeline)):
        assert "MARKUP" in text, f"{name} shows none of the hostile estate's text"
        assert markdown_problems(text) == [], name
    # The estate's HTML and link payloads are there, as text.
    shown = shown_text([c for t in MD.parse(report) for c in t.children or []])
    assert "<script>alert(1)</script>" in shown or "<img src=x onerror=alert(1)>" in shown or "<iframe src=//evil.test>" in shown


async def test_console_exports_are_escaped(hostile_emulator):
    app = make_app(hostile_emulator)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_loaded(pilot)
        before = set(app.export_dir().glob("inventory-*.csv"))
        app.screen.export_csv()
        await pilot.pause()
        (csv_path,) = set(app.export_dir().glob("inventory-*.csv")) - before
    rows = list(csv.reader(io.StringIO(csv_path.read_text(), newline="")))
    assert len(rows) > 2 and all(len(r) == len(rows[0]) for r in rows)
    cells = [c for r in rows[1:] for c in r]
    assert any("␛" in c or "<U+" in c for c in cells), "the export shows none of the hostile estate's text"
    assert not [c for c in cells if c.lstrip(" ").startswith(CSV_FORMULA_STARTERS)]
    assert any(c.startswith("'") for c in cells), "no hostile cell began with a formula starter: the estate changed?"


def test_a_cli_table_row_stays_one_line_whatever_its_prose_holds():
    from tui.textfmt import table

    summary = safe_text(hostile.hostile_text(random.Random(3), "summary"))
    assert "\n" in summary and "\t" not in table(("VM", "SUMMARY"), [("vm-1", summary), ("vm-2", "x\ty")])
    assert len(table(("VM", "SUMMARY"), [("vm-1", summary), ("vm-2", "x\ty")], width=1 << 20).splitlines()) == 3


@given(st.text(max_size=30), st.text(min_size=1, max_size=30), st.integers(1, 65535))
@settings(max_examples=300, deadline=None)
def test_a_connect_line_is_ssh_and_one_destination_whatever_the_names(user, host, port):
    import shlex

    from backend.probe import ssh_command

    words = shlex.split(ssh_command(host, port, user or None))
    who = f"{user}@{host}" if user else host
    assert words[0] == "ssh" and words[-1] == who
    assert words[1:-1] in ([], ["-p", str(port)], ["--"], ["-p", str(port), "--"])
    assert (words[-2] == "--") == who.startswith("-")


@pytest.mark.parametrize("host", ["127.10.1.19", "vm.westeurope.cloudapp.azure.com", "a b", "x;calc", "x' & calc & '", "$(calc)"])
def test_an_mstsc_line_is_one_argument(host):
    from backend.probe import mstsc_command

    line = mstsc_command(host, 3390)
    assert line.startswith("mstsc ")
    argument = line.removeprefix("mstsc ")
    if host[0].isalnum() and all(c.isalnum() or c in ".-" for c in host):
        assert argument == f"/v:{host}:3390"
    else:  # one single-quoted PowerShell word: ' doubled inside, nothing else special
        assert argument.startswith("'") and argument.endswith("'") and "'" not in argument[1:-1].replace("''", "")
