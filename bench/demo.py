"""`make demo` timed: setup from a fresh clone, a first demo run and a rerun, phase by phase.

1. setup: `git clone` of this checkout's HEAD into a temporary directory and
   `uv sync --frozen --all-extras` into a fresh .venv there, with uv's cache as it is on this
   machine (warm: the packages are not downloaded again). What a truly cold cache also
   downloads is summed from uv.lock by bench/figures.py (`download_bytes`), the one place the
   docs take that size from; its time depends on the network.
2. fresh clone: `forest-mlops demo` with its defaults (MIN_UPDATE_TIME 5 s, 3 requests per
   window, quick profile) from the clone's new venv, in a fresh work directory. This run also
   pays Python's first imports of the new venv (bytecode compilation). The dataset is
   whatever a user gets (the UCI download, else synthetic rows), unless --dataset is given.
3. already set up: the same in another fresh work directory, with the venv warmed.
4. rerun: the same command in that work directory again (the group is already collected;
   the training DAG runs again and the champion is kept or replaced).

Wall time per phase comes from the demo's own summary.json; CPU time (user+sys of all the
demo's processes) and the machine's load average are reported beside it, because on a shared
2-core machine the wall time depends on what else runs.

`python -m bench.demo [--dataset PATH] [--skip-setup]` prints the table and writes
bench/results/demo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "demo.json"
VENV_BIN = Path(sys.executable).parent
PHASES = ("dataset", "services", "airflow_start", "collect", "train", "results", "inference")
# The targets docs/DEMO.md states. The fresh-clone one is for a cold uv cache; this bench has a
# warm one, so it holds the measured time to it and leaves the download (at the network's speed;
# its size is in the docs) as the margin.
TARGET_FRESH_SECONDS = 600.0
TARGET_SET_UP_SECONDS = 240.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    argv: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> dict[str, float]:
    cpu_before = _children_cpu()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{argv[:3]} failed ({result.returncode}); see {log}:\n{log.read_text()[-3000:]}"
        )
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(_children_cpu() - cpu_before, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def measure_setup(scratch: Path) -> dict[str, Any]:
    """A fresh clone of HEAD and `uv sync` into its own new .venv (warm uv cache)."""
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    clone = scratch / "clone"
    started = time.monotonic()
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(clone)], check=True
    )
    clone_seconds = time.monotonic() - started
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    sync = _timed(
        [uv, "sync", "--frozen", "--all-extras"], cwd=clone, log=scratch / "uv-sync.log", env=env
    )
    return {"git_clone_seconds": round(clone_seconds, 1), "uv_sync": sync}


def run_demo(bin_dir: Path, workdir: Path, dataset: Path | None, log: Path) -> dict[str, Any]:
    argv = [str(bin_dir / "forest-mlops"), "demo", "--workdir", str(workdir)]
    if dataset is not None:
        argv += ["--dataset", str(dataset)]
    workdir.parent.mkdir(parents=True, exist_ok=True)
    process = _timed(argv, cwd=workdir.parent, log=log)
    summary = json.loads((workdir / "summary.json").read_text())
    return {
        **process,
        "phases": {phase: summary["timings"].get(phase) for phase in PHASES},
        "demo_total_seconds": summary["total_seconds"],
        "dataset": summary["dataset"]["description"],
        "rows_collected": summary["collection"]["stored_rows"],
        "winner": summary["training"]["winner"],
        "decision": summary["training"]["promotion"].get("decision"),
    }


def _row(label: str, value: Any) -> str:
    return f"  {label:<44} {value}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.demo")
    parser.add_argument("--dataset", type=Path, help="default: what the demo picks itself")
    parser.add_argument("--skip-setup", action="store_true", help="do not time clone + uv sync")
    args = parser.parse_args(argv if argv is not None else [])
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        scratch = Path(tmp)
        setup = None if args.skip_setup else measure_setup(scratch)
        if setup is not None:
            runs["fresh clone (new venv)"] = run_demo(
                scratch / "clone" / ".venv" / "bin", scratch / "work-1", args.dataset,
                scratch / "demo-1.log",
            )  # fmt: skip
        runs["already set up"] = run_demo(
            VENV_BIN, scratch / "work-2", args.dataset, scratch / "demo-2.log"
        )
        runs["rerun (data already collected)"] = run_demo(
            VENV_BIN, scratch / "work-2", args.dataset, scratch / "demo-3.log"
        )

    print("forest-mlops demo, timed (2-core machine; load average = other work running)")
    if setup is not None:
        sync = setup["uv_sync"]
        print(_row("setup: git clone", f"{setup['git_clone_seconds']:.1f} s"))
        print(
            _row(
                "setup: uv sync --frozen --all-extras (warm)",
                f"{sync['wall_seconds']:.1f} s wall, {sync['cpu_seconds']:.1f} s CPU",
            )
        )
    for label, run in runs.items():
        print(f"\n{label}: {run['dataset']}")
        for phase, seconds in run["phases"].items():
            if seconds is not None:
                print(_row(phase, f"{seconds:.1f} s"))
        print(
            _row(
                "total",
                f"{run['wall_seconds']:.1f} s wall, {run['cpu_seconds']:.1f} s CPU "
                f"(load {run['load_before']} -> {run['load_after']})",
            )
        )
        print(
            _row(
                "rows collected, winner, decision",
                f"{run['rows_collected']:,}, {run['winner']}, {run['decision']}",
            )
        )
    if setup is not None:
        fresh = (
            setup["git_clone_seconds"]
            + setup["uv_sync"]["wall_seconds"]
            + runs["fresh clone (new venv)"]["wall_seconds"]
        )
        print("\n" + _row("fresh clone to summary (warm uv cache)", f"{fresh:.1f} s"))
    set_up = runs["already set up"]["wall_seconds"]
    met = set_up <= TARGET_SET_UP_SECONDS and (setup is None or fresh <= TARGET_FRESH_SECONDS)
    print(_row("targets met", f"{met} (set up <= {TARGET_SET_UP_SECONDS:.0f} s, fresh clone <= "
               f"{TARGET_FRESH_SECONDS:.0f} s)"))  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "setup": setup,
                "runs": runs,
                "targets": {
                    "fresh_clone_seconds": TARGET_FRESH_SECONDS,
                    "already_set_up_seconds": TARGET_SET_UP_SECONDS,
                },
                "targets_met": met,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
