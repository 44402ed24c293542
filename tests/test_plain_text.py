"""Data is never markup: every way the console could parse a string as Rich or Textual
markup is closed in the source of tui/ and widgets/ (see widgets/plain.py).

A new ``Static("")`` without ``markup=False`` would parse every later ``update(str)``; a
new ``table.add_row(vm.name)`` would parse the VM's text; this test names the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("tui/**/*.py"), *ROOT.glob("widgets/**/*.py")])

# Widgets whose str content is parsed as markup unless markup=False.
MARKUP_WIDGETS = {"Static", "Label", "OptionList", "RichLog", "Log", "Markdown", "Digits", "Pretty"}
# Calls that parse a str as markup (or ANSI) whatever the widget.
PARSERS = {"from_markup", "render_str", "from_ansi", "from_text", "render_markup"}
# Attributes a str is parsed as markup in.
MARKUP_ATTRIBUTES = {"border_title", "border_subtitle", "tooltip", "title", "sub_title"}
# Constructors whose first argument is parsed as markup when it is a str.
LABELLED = {"Button", "Option", "Tab", "TabPane", "Checkbox", "RadioButton", "Switch", "Collapsible"}
SAFE_WRAPPERS = {"plain", "plain_content", "Text", "Content"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_literal_or_plain(node: ast.expr) -> bool:
    """A literal of ours (no data in it) or a value wrapped as plain text."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        return _name(node.func) in SAFE_WRAPPERS
    if isinstance(node, ast.IfExp):
        return _is_literal_or_plain(node.body) and _is_literal_or_plain(node.orelse)
    return False


def _markup_off(call: ast.Call) -> bool:
    return any(k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is False for k in call.keywords)


def problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT)
    out: list[str] = []
    # The calls made inside a Static subclass (a screen in the same file may call its own super().__init__).
    in_static = {
        id(call)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(_name(b) in MARKUP_WIDGETS for b in node.bases)
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in MARKUP_WIDGETS and not _markup_off(node):
                out.append(f"{where}:{node.lineno}: {name}(...) without markup=False parses str content as markup")
            if name in PARSERS and path.name != "plain.py":
                out.append(f"{where}:{node.lineno}: {name}() parses a str as markup; build Text/Content from plain strings")
            if name == "add_row" and path.name != "plain.py":
                out.append(f"{where}:{node.lineno}: Table.add_row parses str cells as markup; use widgets.plain.add_plain_row")
            if name in LABELLED and node.args and not _is_literal_or_plain(node.args[0]):
                parent_off = name == "Option"  # checked below: every OptionList has markup=False
                if not parent_off:
                    out.append(f"{where}:{node.lineno}: {name}(label) parses a str label as markup; wrap it with plain_content()")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "__init__" and id(node) in in_static:
                # super().__init__ of a Static subclass must turn markup off.
                inner = node.func.value
                if isinstance(inner, ast.Call) and _name(inner.func) == "super" and not _markup_off(node):
                    out.append(f"{where}:{node.lineno}: a Static subclass calls super().__init__ without markup=False")
            if name == "notify" and any(k.arg == "markup" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
                out.append(f"{where}:{node.lineno}: notify(markup=...) other than False")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in MARKUP_ATTRIBUTES and not _is_literal_or_plain(node.value):
                    out.append(f"{where}:{node.lineno}: .{target.attr} = str parses markup; assign plain_content(...)")
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_data_reaches_a_markup_parser(path):
    assert problems(path) == []


def test_the_guard_finds_each_way_in(tmp_path):
    """The checker itself: each way data could be parsed as markup is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from textual.widgets import Static, Button, OptionList\n"
        "class Rows(Static):\n"
        "    def __init__(self):\n"
        "        super().__init__('')\n"
        "def compose(vm, table, app, widget):\n"
        "    yield Static(vm.name)\n"
        "    yield OptionList()\n"
        "    yield Button(vm.name)\n"
        "    table.add_row(vm.name)\n"
        "    Text.from_markup(vm.name)\n"
        "    widget.border_title = vm.name\n"
        "    app.notify(vm.name, markup=True)\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = problems(bad)
    finally:
        ROOT = saved
    assert sorted(int(line.split(":")[1]) for line in found) == [4, 6, 7, 8, 9, 10, 11, 12], found
