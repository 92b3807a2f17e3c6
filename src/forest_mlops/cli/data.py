"""`forest-mlops data download|synthetic`: get the dataset the data API serves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path("data/covertype.csv.gz")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="download the UCI Covertype data or generate synthetic rows (course CSV layout)",
        description="Write a dataset in the course CSV layout for `forest-mlops api-data`.",
    )
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    download = commands.add_parser(
        "download",
        help="fetch the full UCI Covertype data (581,012 rows) and convert it",
        description=(
            "Download covtype.data.gz through scikit-learn's fetch_covtype (checksummed and "
            "cached), convert it to the course layout and write the CSV. Needs internet."
        ),
    )
    download.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="CSV to write, gzip when it ends in .gz (default: %(default)s)",
    )
    download.add_argument(
        "--cache-dir",
        type=Path,
        help="scikit-learn data home for the download cache (default: ~/scikit_learn_data)",
    )
    download.set_defaults(handler=handle_download)

    synthetic = commands.add_parser(
        "synthetic",
        help="write seeded synthetic rows shaped like the Covertype data",
        description=(
            "Generate covertype-shaped rows (same schema and codes, learnable structure) and "
            "write them with a <file>.synthetic.json marker beside the CSV: anything trained "
            "on them is labelled synthetic."
        ),
    )
    synthetic.add_argument("--output", type=Path, required=True, help="CSV (.csv or .csv.gz)")
    synthetic.add_argument("--rows", type=int, default=581_012, help="default: %(default)s")
    synthetic.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    synthetic.set_defaults(handler=handle_synthetic)


def handle_download(args: argparse.Namespace) -> int:
    from forest_mlops.uci_download import DownloadError, download

    try:
        rows = download(args.output, cache_dir=args.cache_dir)
    except DownloadError as exc:
        sys.stderr.write(f"forest-mlops data download: {exc}\n")
        return 1
    sys.stdout.write(f"wrote {rows} rows to {args.output}\n")
    return 0


def handle_synthetic(args: argparse.Namespace) -> int:
    from forest_mlops import synthetic
    from forest_mlops.dataset import synthetic_sidecar

    if args.rows < 1:
        sys.stderr.write("forest-mlops data synthetic: --rows must be at least 1\n")
        return 2
    path = synthetic.write_csv(args.output, n_rows=args.rows, seed=args.seed)
    marker = synthetic_sidecar(path)
    sys.stdout.write(f"wrote {args.rows} synthetic rows to {path} (marker: {marker})\n")
    return 0
