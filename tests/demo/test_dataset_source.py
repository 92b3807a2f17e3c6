"""Which dataset the demo serves, and that a work directory never mixes two datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from forest_mlops import synthetic
from forest_mlops.dataset import synthetic_sidecar
from forest_mlops.demo.dataset_source import DatasetUnavailable, choose_dataset
from forest_mlops.demo.workdir import WorkDir


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "given" / "covertype.csv.gz"
    path.parent.mkdir()
    synthetic.write_csv(path, n_rows=200, seed=1)
    # The generator marks its file synthetic with a sidecar; without it, it stands for a
    # real course file.
    synthetic_sidecar(path).unlink()
    return path


def test_given_dataset_is_used_recorded_and_reused(tmp_path: Path, small_csv: Path) -> None:
    workdir = WorkDir.create(tmp_path / "work")
    choice = choose_dataset(workdir, small_csv)
    assert (choice.path, choice.origin, choice.synthetic) == (small_csv, "given", False)
    # A later run without --dataset serves the same file, without trying to download.
    again = choose_dataset(workdir, None)
    assert (again.path, again.origin) == (small_csv, "given")


def test_a_synthetic_file_given_is_reported_synthetic(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv.gz"
    synthetic.write_csv(path, n_rows=100, seed=2)
    choice = choose_dataset(WorkDir.create(tmp_path / "work"), path)
    assert choice.synthetic and choice.origin == "given"


def test_another_dataset_in_a_used_work_directory_is_refused(
    tmp_path: Path, small_csv: Path
) -> None:
    workdir = WorkDir.create(tmp_path / "work")
    choose_dataset(workdir, small_csv)
    other = tmp_path / "other.csv.gz"
    synthetic.write_csv(other, n_rows=100, seed=3)
    with pytest.raises(DatasetUnavailable, match=r"holds data collected from .*another --workdir"):
        choose_dataset(workdir, other)


def test_missing_files_are_clear_errors(tmp_path: Path, small_csv: Path) -> None:
    workdir = WorkDir.create(tmp_path / "work")
    with pytest.raises(DatasetUnavailable, match="no such file"):
        choose_dataset(workdir, tmp_path / "nope.csv")
    choose_dataset(workdir, small_csv)
    small_csv.unlink()
    with pytest.raises(DatasetUnavailable, match="is gone"):
        choose_dataset(workdir, None)
