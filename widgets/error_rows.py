"""Errors as rows above the status line: each failed subscription or load,
in one sentence with what to do next. Hidden when there is nothing wrong."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static


class ErrorRows(Static):
    DEFAULT_CSS = """
    ErrorRows { height: auto; max-height: 6; color: $text-error; background: $error 15%; padding: 0 1; display: none; }
    ErrorRows.-has-errors { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.errors: tuple[str, ...] = ()

    def show_errors(self, errors: Sequence[str]) -> None:
        errors = tuple(errors)
        if errors == self.errors:
            return
        self.errors = errors
        text = Text()
        for n, line in enumerate(errors):
            if n:
                text.append("\n")
            text.append("✖ ERROR ", style="bold")
            text.append(line)
        self.update(text)
        self.set_class(bool(errors), "-has-errors")
