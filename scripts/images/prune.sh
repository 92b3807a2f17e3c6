#!/usr/bin/env bash
# Removes this engine's older builds of the four project images, keeping the newest of each
# repository: the content tags of `make images` (forest-mlops/<name>:<12 hex>) and what skaffold
# built and pushed (localhost:5001/forest-mlops_<name>:<64 hex>). Named tags (:dev, :wimg...)
# are left alone, and so is every layer the kept images or BuildKit's cache still use.
#
# Why: each code change makes a new image of up to 1.4 GB under a new tag and nothing removes
# the old ones (seen: 104 such tags, 12 GB, after a day of edits and e2e runs on this machine);
# the registry and the nodes have their own clean-up (scripts/cluster/registry-gc.sh).
#   scripts/images/prune.sh [REGISTRY]   (default: the cluster's, localhost:5001)
set -euo pipefail
docker_bin=$(bash "$(dirname "$0")/../docker-engine.sh" --client)
registry=${1:-localhost:5001}
removed=0
for name in airflow api-data inference mlflow; do
  for repo in "forest-mlops/$name" "$registry/forest-mlops_$name"; do
    # Newest first; everything after the first hex-tagged one goes.
    old=$("$docker_bin" images "$repo" --format '{{.CreatedAt}}|{{.Repository}}:{{.Tag}}' | sort -r |
      cut -d'|' -f2 | grep -E ':([0-9a-f]{12}|[0-9a-f]{64})$' | tail -n +2 || true)
    for image in $old; do
      "$docker_bin" rmi "$image" >/dev/null 2>&1 && removed=$((removed + 1))
    done
  done
done
echo "images: $removed older project image tag(s) removed from the engine" >&2
