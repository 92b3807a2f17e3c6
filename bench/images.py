"""Build times and sizes of the images: `python -m bench.images` → bench/results/images.json.

Runs `make images` (scripts/images/build.sh) on this machine's Docker engine:
  cold  FOREST_IMAGES_NO_CACHE=1 (a new COLD_BUILD_ID build arg): every step of the four
        project images runs once, as in a first build (all wheels installed again, the
        dataset baked again, the services' shared `base` stage once for the three); the
        stand-in bases are reused when their recipe is unchanged (their own first-build times
        are printed by the script; the figures record whether any was built);
  warm  nothing changed: what a rebuild after `make images` costs (a normal `make images` runs
        first, untimed in the figures, so the warm build finds the normal build's cache).
Then the size of each project image and each stand-in (`docker image inspect`, uncompressed),
each project image's base (the Python or Airflow image it is built FROM, official or stand-in)
and its size above that base, against the goals of issue 20; and the layers the three service
images share: the `base` stage their three Dockerfiles hold line for line (images/mlflow's is
built here), again from the cache (no step runs) and tagged for a moment, whose layers must be
the first layers of all three.
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
SERVICES = ("mlflow", "api-data", "inference")
# Issue 20's goals, uncompressed MB: an absolute size, or ("base", MB) for at most MB above base.
GOALS: dict[str, int | tuple[str, int]] = {
    "api-data": 350,
    "inference": 500,
    "mlflow": 900,
    "airflow": ("base", 300),
}
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
    bases = dict(re.findall(r"\b(PYTHON_IMAGE|AIRFLOW_IMAGE)=(\S+)", log))
    return {
        "seconds": round(seconds, 1),
        "bases": bases,
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


def layers(client: str, name: str) -> list[str]:
    out = subprocess.run(
        [client, "image", "inspect", "--format", "{{json .RootFS.Layers}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return list(json.loads(out))


def shared_base(client: str, python_image: str, tag: str) -> dict[str, Any]:
    """The `base` stage of the service images (python base, user, venv, shared dependencies):
    its size, and whether its layers are the first layers of each service image."""
    name = "forest-mlops-bench/services-base:measure"
    build = ["build", "--network", "host", "--quiet", "-f", "images/mlflow/Dockerfile"]
    target = ["--target", "base", "--build-arg", f"PYTHON_IMAGE={python_image}", "-t", name]
    subprocess.run(
        [client, *build, *target, "."],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        base_layers = layers(client, name)
        size = size_mb(client, name)
    finally:
        subprocess.run([client, "rmi", name], capture_output=True, check=False)
    prefix_of = [
        service
        for service in SERVICES
        if layers(client, f"forest-mlops/{service}:{tag}")[: len(base_layers)] == base_layers
    ]
    return {"size_mb": size, "layers": len(base_layers), "first_layers_of": prefix_of}


def per_image(
    client: str, sizes: dict[str, float | None], bases: dict[str, str], tag: str
) -> dict[str, Any]:
    """Each project image: size, base image and its size, MB above the base, goal and verdict."""
    found = {}
    for name in PROJECT:
        size = sizes[f"forest-mlops/{name}:{tag}"]
        base = bases.get("AIRFLOW_IMAGE" if name == "airflow" else "PYTHON_IMAGE", "")
        base_mb = size_mb(client, base) if base else None
        goal = GOALS[name]
        limit = goal if isinstance(goal, int) else (base_mb or 0) + goal[1]
        found[name] = {
            "size_mb": size,
            "base": base,
            "base_mb": base_mb,
            "above_base_mb": None if size is None or base_mb is None else size - base_mb,
            "goal": goal if isinstance(goal, int) else f"base + {goal[1]}",
            "goal_mb": limit,
            "goal_met": size is not None and size <= limit,
        }
    return found


def main() -> int:
    client = docker()
    # A normal `make images` first, so the warm build below finds its cache whatever state the
    # machine is in: the cold build's new COLD_BUILD_ID leaves the normal cache keys alone, and
    # the warm images (measured below) are what `make images` gives.
    prepare = build(no_cache=False)
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
        "prepare_seconds": prepare["seconds"],
        "cold": cold,
        "warm": warm,
        "sizes_mb": sizes,
        "standin_sizes_mb": standin_sizes,
        "images": per_image(client, sizes, warm["bases"], tag),
        "services_shared_base": shared_base(client, warm["bases"]["PYTHON_IMAGE"], tag),
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\ncold (no build cache) {cold['seconds']:.0f} s, warm {warm['seconds']:.0f} s")
    for name, mb in {**sizes, **standin_sizes}.items():
        print(f"{name:50} {mb} MB")
    for name, found in result["images"].items():
        print(f"{name}: {found['above_base_mb']} MB above {found['base']}; goal {found['goal']}")
    print(f"shared by the service images: {result['services_shared_base']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
