"""Writing a file so that a crash leaves the old content or the new one, never a mix.

The one helper for every file the platform replaces in place: the data API's group state
(a lost or torn state file would restart every group at batch 0) and the dataset and synthetic
files (a half-written CSV would fail the data API's start).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` through a temporary file in the same folder and a rename.

    The data is fsync'd before the rename and the folder after it: without the first, a power
    loss can leave the new name pointing at empty blocks; without the second, the rename itself
    may be lost. `mode` replaces mkstemp's 0600, which would hide the file from other users.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
