"""forest_mlops.files.write_atomically: the one way the platform replaces a file in place."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from forest_mlops import files


def test_replaces_the_content_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    files.write_atomically(path, b"old")
    files.write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    files.write_atomically(path, b"old")
    with pytest.raises(TypeError):
        files.write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_data_and_the_rename_reach_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "state.json"
    files.write_atomically(path, b"data")
    # The temporary file before the rename, then the folder that holds the new name.
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(".state.json.") and synced[1] == str(tmp_path)
