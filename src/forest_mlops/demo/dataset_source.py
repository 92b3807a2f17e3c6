"""Which dataset the demo serves: given, cached, downloaded, or (loudly) synthetic.

Order: an explicit --dataset path; else the UCI data already converted in the work directory;
else the UCI data converted from scikit-learn's cache or downloaded (forest_mlops.uci_download);
else, when that fails (no network), rows from the synthetic generator, marked synthetic by
their sidecar file so that training tags its MLflow runs as synthetic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from forest_mlops import dataset
from forest_mlops.demo.config import SYNTHETIC_ROWS, SYNTHETIC_SEED
from forest_mlops.demo.workdir import WorkDir

log = logging.getLogger(__name__)

Origin = Literal["given", "uci-cached", "uci-downloaded", "synthetic"]


@dataclass(frozen=True)
class DatasetChoice:
    path: Path
    origin: Origin
    synthetic: bool
    # Why the UCI data could not be used (only set for the synthetic fallback).
    fallback_reason: str | None = None

    def describe(self) -> str:
        what = {
            "given": "the file given with --dataset",
            "uci-cached": "the UCI Covertype data (cached)",
            "uci-downloaded": "the UCI Covertype data (downloaded now)",
            "synthetic": "SYNTHETIC rows (forest_mlops.synthetic)",
        }[self.origin]
        note = " — marked synthetic" if self.synthetic and self.origin == "given" else ""
        return f"{what}: {self.path}{note}"


class DatasetUnavailable(RuntimeError):
    pass


def _uci(workdir: WorkDir) -> DatasetChoice:
    """The UCI data in the course layout: from scikit-learn's cache, else downloaded."""
    from forest_mlops import uci_download

    try:
        features, target = uci_download.fetch(download_if_missing=False)
        origin: Origin = "uci-cached"
    except uci_download.DownloadError:
        try:
            features, target = uci_download.fetch()
        except uci_download.DownloadError as exc:
            raise DatasetUnavailable(str(exc)) from exc
        origin = "uci-downloaded"
    dataset.write_lines(workdir.uci_csv, uci_download.covtype_to_lines(features, target))
    return DatasetChoice(path=workdir.uci_csv, origin=origin, synthetic=False)


def _synthetic(workdir: WorkDir, reason: str) -> DatasetChoice:
    path = workdir.synthetic_csv
    if not (path.exists() and dataset.is_synthetic(path)):
        from forest_mlops import synthetic

        synthetic.write_csv(path, n_rows=SYNTHETIC_ROWS, seed=SYNTHETIC_SEED)
    return DatasetChoice(path=path, origin="synthetic", synthetic=True, fallback_reason=reason)


def choose_dataset(workdir: WorkDir, explicit: Path | None) -> DatasetChoice:
    if explicit is not None:
        path = explicit.expanduser().resolve()
        if not path.is_file():
            raise DatasetUnavailable(f"--dataset {explicit}: no such file")
        return DatasetChoice(path=path, origin="given", synthetic=dataset.is_synthetic(path))
    if workdir.uci_csv.is_file():
        return DatasetChoice(path=workdir.uci_csv, origin="uci-cached", synthetic=False)
    try:
        return _uci(workdir)
    except DatasetUnavailable as exc:
        log.info("UCI data unavailable: %s", exc)
        return _synthetic(workdir, str(exc))
