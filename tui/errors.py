"""The error every command and the console raise for the operator, in a module of its
own: the CLI entry point (``tui.cli``), the commands, the runtime and the App all import
it, and it imports nothing, so none of them has to import the entry point."""

from __future__ import annotations


class CliError(Exception):
    """Bad input or an operator-facing failure: printed as one line, exit code 2 unless given."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
