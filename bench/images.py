"""Build times and sizes of the images: `python -m bench.images` → bench/results/images.json.

Runs `make images` (scripts/images/build.sh) twice on this machine's Docker engine:
  cold  FOREST_IMAGES_NO_CACHE=1 (`docker build --no-cache`): every step of the four project
        images runs (all wheels installed again, the dataset baked again; the services' shared
        dependency stages once per target, so this is more than a first build, which builds
        them once); the stand-in bases are reused when their recipe is unchanged (their own
        first-build times are printed by the script; the figures record whether any was built);
  warm  nothing changed: what a rebuild after `make images` costs.
Then the size of each project image and each stand-in (`docker image inspect`, uncompressed).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT = REPO_ROOT / "bench" / "results" / "images.json"
PROJECT = ("airflow", "mlflow", "api-data", "inference")
STANDINS = (
    "forest-mlops-standin/debian:bookworm-minbase",
    "forest-mlops-standin/python:3.11-bookworm",
    "forest-mlops-standin/airflow:3.3.2-python3.11",
    "forest-mlops-standin/mariadb:10.11-bookworm",
    "forest-mlops-standin/postgres:15-bookworm",
    "forest-mlops-standin/s3:moto-5.2.5",
)
LINE = re.compile(
    r"images: forest-mlops/(?P<name>[\w-]+):\S+ = \S+ in (?P<s>\d+) s"
    r" \((?P<cached>\d+) of (?P<steps>\d+) steps cached\)"
)


def docker() -> str:
    out = subprocess.run(
        ["bash", "scripts/docker-engine.sh", "--client"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def build(no_cache: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("FOREST_IMAGES_NO_CACHE", None)
    if no_cache:
        env["FOREST_IMAGES_NO_CACHE"] = "1"
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "scripts/images/build.sh"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    print(log, end="", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"make images exited {proc.returncode}")
    images = {
        m["name"]: {
            "seconds": int(m["s"]),
            "steps_cached": int(m["cached"]),
            "steps": int(m["steps"]),
        }
        for m in LINE.finditer(log)
    }
    return {
        "seconds": round(seconds, 1),
        "images": images,
        "standins_built": len(re.findall(r": built in \d+ s|imported", log)),
        "standins_reused": len(re.findall(r": reused", log)),
        "dataset": (re.search(r"api-data dataset: (.*)", log) or [None, None])[1],
    }


def size_mb(client: str, name: str) -> float | None:
    proc = subprocess.run(
        [client, "image", "inspect", "--format", "{{.Size}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return round(int(proc.stdout) / 1e6) if proc.returncode == 0 else None


def main() -> int:
    client = docker()
    cold = build(no_cache=True)
    warm = build(no_cache=False)
    tag = os.environ.get("FOREST_IMAGE_TAG", "dev")
    sizes = {f"forest-mlops/{n}:{tag}": size_mb(client, f"forest-mlops/{n}:{tag}") for n in PROJECT}
    standin_sizes = {n: size_mb(client, n) for n in STANDINS}
    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "engine": subprocess.run(
            [client, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "cold": cold,
        "warm": warm,
        "sizes_mb": sizes,
        "standin_sizes_mb": standin_sizes,
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\ncold (no build cache) {cold['seconds']:.0f} s, warm {warm['seconds']:.0f} s")
    for name, mb in {**sizes, **standin_sizes}.items():
        print(f"{name:50} {mb} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
