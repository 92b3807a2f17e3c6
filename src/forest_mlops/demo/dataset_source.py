"""Which dataset the demo serves: given, cached, downloaded, or (loudly) synthetic.

Order: an explicit --dataset path; else the dataset an earlier run in this work directory
used; else the UCI data converted from scikit-learn's cache or downloaded
(forest_mlops.uci_download); else, when that fails (no network), rows from the synthetic
generator, marked synthetic by their sidecar file so that training tags its MLflow runs so.

The choice is recorded in the work directory (data/dataset.json): the collected rows and the
data API's state belong to that dataset, so a later run with another one is refused rather
than mixing two datasets in one training table.
"""

from __future__ import annotations

import json
import logging
import warnings
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

    with warnings.catch_warnings():
        # scikit-learn warns on each retry; the outcome is reported once, below.
        warnings.simplefilter("ignore", UserWarning)
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


def _recorded(workdir: WorkDir) -> DatasetChoice | None:
    if not workdir.dataset_record.exists():
        return None
    content = json.loads(workdir.dataset_record.read_text(encoding="utf-8"))
    return DatasetChoice(
        path=Path(content["path"]),
        origin=content["origin"],
        synthetic=bool(content["synthetic"]),
        fallback_reason=content.get("fallback_reason"),
    )


def _record(workdir: WorkDir, choice: DatasetChoice) -> DatasetChoice:
    record = {
        "path": str(choice.path),
        "origin": choice.origin,
        "synthetic": choice.synthetic,
        "fallback_reason": choice.fallback_reason,
    }
    workdir.dataset_record.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return choice


def choose_dataset(workdir: WorkDir, explicit: Path | None) -> DatasetChoice:
    recorded = _recorded(workdir)
    if explicit is not None:
        path = explicit.expanduser().resolve()
        if not path.is_file():
            raise DatasetUnavailable(f"--dataset {explicit}: no such file")
        if recorded is not None and recorded.path != path:
            raise DatasetUnavailable(
                f"the work directory {workdir.root} holds data collected from {recorded.path}; "
                f"to serve {path}, use another --workdir or delete this one"
            )
        return _record(
            workdir, DatasetChoice(path=path, origin="given", synthetic=dataset.is_synthetic(path))
        )
    if recorded is not None:
        if not recorded.path.is_file():
            raise DatasetUnavailable(
                f"the dataset of {workdir.root} is gone ({recorded.path}): pass it with "
                "--dataset, or delete the work directory to start over"
            )
        if recorded.origin == "uci-downloaded":  # downloaded then, cached now
            return DatasetChoice(path=recorded.path, origin="uci-cached", synthetic=False)
        return recorded
    try:
        return _record(workdir, _uci(workdir))
    except DatasetUnavailable as exc:
        log.info("UCI data unavailable: %s", exc)
        return _record(workdir, _synthetic(workdir, str(exc)))
