"""The data folder is private: the folder 0700, every file in it 0600.

It holds the registry (residents' names, addresses, My Numbers), the CA keys, the card
files and, while a transaction runs, its PDFs. Folders are made 0700 and files 0600 by the
code that creates them, whatever the umask (SQLite gives its WAL and shared-memory files
the database file's mode, so a database created 0600 keeps them 0600 too), and the service
refuses to start on a folder other users can enter or read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
ALLOW_OPEN_FLAG = "--allow-open-data-dir"


class OpenDataFolderError(Exception):
    """A data folder other users can enter or read."""


def make_private_folder(folder: Path) -> None:
    """Create `folder` (and missing parents) mode 0700; an existing folder is left as it is.
    Raises OSError."""
    if folder.is_dir():
        return
    folder.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, PRIVATE_FOLDER_MODE)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Create `path` empty and mode 0600 if it does not exist (before a library such as
    SQLite creates it with the umask's mode). Raises OSError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def check_private(folder: Path) -> None:
    """Raises OpenDataFolderError when other users may enter or read `folder`."""
    try:
        mode = stat.S_IMODE(folder.stat().st_mode)
    except FileNotFoundError:
        return  # nothing there to protect; the callers say what is missing
    if mode & 0o077:
        raise OpenDataFolderError(
            f"the data folder {folder} is open to other users (mode {mode:04o}); it holds residents' data "
            f"and keys: run `chmod 700 {folder}` ({ALLOW_OPEN_FLAG} overrides this, for tests only)"
        )
