#!/usr/bin/env bash
# `make e2e`: the whole platform on the kind cluster of `make cluster`, deployed by skaffold
# (profile offline where no registry answers), then checked from the Kubernetes, Airflow,
# MLflow and S3 APIs by tests/e2e (pytest). Writes bench/results/e2e-kind.json and leaves the
# platform running. Needs: `make cluster` (the cluster and its kind/kubectl), Docker.
#   FOREST_E2E_PROFILE   skaffold profile (default: offline; empty for the published images,
#                        as .github/workflows/e2e.yml runs it with internet)
#   FOREST_DATASET_FILE  api-data's dataset (default ../shared/data/covertype_dev.csv.gz, else
#                        a seeded synthetic file made here)
#   SKAFFOLD / KIND / KUBECTL   use these binaries instead of the cached ones
#   FOREST_E2E_CLUSTER   the kind cluster's name (default forest-mlops; context kind-<name>)
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)

# shellcheck source=scripts/e2e/prepare.sh
source scripts/e2e/prepare.sh
# The loop starts from an empty namespace: a release left by an earlier run (its DAG runs, its
# collected batches) would be upgraded instead of installed and the checks would see its past.
# Only a namespace an earlier make e2e created (and labelled) is deleted: namespaces.sh stops,
# naming it, rather than delete any other (it may be a user's platform). The kind cluster and
# the images loaded into its nodes are kept. With pytest arguments (some phases only, e.g. -k)
# the platform of the earlier run is what they check: it is kept.
if [[ $# -gt 0 ]]; then
  say "pytest arguments given: namespaces forest-mlops and forest-mlops-wait kept as they are"
else
  bash scripts/e2e/namespaces.sh "$KUBECTL" "$context" forest-mlops forest-mlops-wait
fi
# Project images of earlier runs stay in the nodes' containerd: the kubelet collects images only
# under disk pressure, reckoned against a disk far larger than this machine's quota, and a few
# runs with new tags filled it. With the namespaces gone no pod uses them: they are removed (the
# registry keeps their layers, so the next pull of an unchanged layer costs nothing but a copy
# over the kind network). Not `crictl rmi --prune`: it also removes local-path's helper image,
# which no running container holds.
if [[ $# -eq 0 ]]; then
  for node in $(kind get nodes --name "$cluster"); do
    # skaffold's --default-repo turns forest-mlops/airflow into <registry>/forest-mlops_airflow
    # (it flattens the path; the old match on forest-mlops/ found nothing, and the workers
    # had kept 21 project images, 14 GB between them).
    old=$("$docker_bin" exec "$node" crictl images -o json |
      jq -r '.images[].repoTags[]? | select(startswith("'"$REGISTRY"'/forest-mlops_") or
        startswith("'"$REGISTRY"'/forest-mlops/"))')
    removed=0
    for image in $old; do
      # An image a still-running container uses stays (crictl refuses it).
      "$docker_bin" exec "$node" crictl rmi "$image" >/dev/null 2>&1 && removed=$((removed + 1))
    done
    [[ -z $old ]] || say "node $node: $removed of $(wc -w <<<"$old") project image(s) of earlier runs removed"
  done
  # The registry likewise keeps only the newest images (and what runs): its disk stays flat.
  bash scripts/cluster/registry-gc.sh >&2
fi
export FOREST_E2E=1 FOREST_E2E_PROFILE=$profile FOREST_E2E_CONTEXT=$context
export FOREST_E2E_PREPARE_SECONDS=$(($(date +%s) - started))
say "prepared in ${FOREST_E2E_PREPARE_SECONDS} s; skaffold $("$SKAFFOLD" version), profile '${profile}'"
status=0
.venv/bin/pytest tests/e2e -s -p no:cacheprovider -o addopts="-ra" --timeout 3600 "$@" || status=$?
rm -rf "$tools"
exit "$status"
