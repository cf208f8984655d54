"""The one durable file write: temporary file (0600), fsync, rename, fsync of the folder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, payload: bytes, *, replace: bool = True) -> None:
    """Write `payload` to `path`, mode 0600, so that a crash leaves the old or the new file, whole.

    With `replace=False` an existing `path` is never replaced (`link()` refuses the name
    atomically, so two writers racing for it cannot both win). Raises FileExistsError (only
    with `replace=False`) and OSError; a failure leaves no temporary file behind.
    """
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)
            os.unlink(tmp_name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_folder(folder)


def fsync_folder(folder: Path) -> None:
    """Make a rename, link or removal in `folder` durable. Raises OSError."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
