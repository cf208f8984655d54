"""Where the kiosk's log goes while the Textual screen is drawn.

A handler that writes to the terminal (what `logging.basicConfig` installs) would draw its
lines over the screen: a card-reader warning from a worker thread lands in the middle of
the PIN pad. While the screen runs, records go to a log file instead, or, without one, to
Textual's own log (shown by the `textual console` devtools), never to the terminal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textual.app import App
from textual.logging import TextualHandler

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def open_log_file(path: Path) -> logging.Handler:
    """A handler appending to `path`, created 0600 in a folder created 0700 (a log names
    transaction ids and kiosk events, nothing personal, but it is nobody else's business).
    Raises OSError when the file cannot be opened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # an older file keeps its mode otherwise
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


class AppLogHandler(TextualHandler):
    """Textual's handler, bound to one app: Textual's own looks the app up in a context
    variable that worker threads (the card watcher, the effects) do not have, and then
    prints to stderr, over the screen."""

    def __init__(self, app: App[Any]) -> None:
        super().__init__(stderr=False, stdout=False)
        self._app = app

    def emit(self, record: logging.LogRecord) -> None:
        self._app.log.logging(self.format(record))


@contextmanager
def logging_beside_the_screen(app: App[Any], log_file: Path | None) -> Iterator[None]:
    """While inside, the root logger writes only to `log_file` (or to `app`'s Textual log
    when None); its previous handlers come back on leaving. Raises OSError for a log file
    that cannot be opened (before anything is drawn)."""
    handler = open_log_file(log_file) if log_file is not None else AppLogHandler(app)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved
        handler.close()
