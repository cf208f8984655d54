"""The error a `mynacard` sub-command raises to end with one clear line. Its own module: the
command modules raise it and `cardreader.cli`, which imports them, catches it."""

from __future__ import annotations


class CliError(Exception):
    """One clear line for the user, and an exit code (2 unless given)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
