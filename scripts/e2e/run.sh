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
repo=$PWD
profile=${FOREST_E2E_PROFILE-offline}
started=$(date +%s)

# The cluster toolchain (kind, kubectl) of `make cluster`, unless given, and its registry.
given_kind=${KIND:-} given_kubectl=${KUBECTL:-}
# shellcheck source=scripts/cluster/lib.sh
source scripts/cluster/lib.sh
say() { echo "e2e: $*" >&2; }
KIND=${given_kind:-$KIND}
KUBECTL=${given_kubectl:-$KUBECTL}
[[ -x $KIND && -x $KUBECTL ]] || { say "no kind/kubectl: run make cluster first"; exit 2; }
cluster=${FOREST_E2E_CLUSTER:-forest-mlops}
context=kind-$cluster
"$KUBECTL" --context "$context" get nodes >/dev/null || { say "cluster $context does not answer: make cluster"; exit 2; }

curl -fsS "http://$REGISTRY/v2/" >/dev/null || { say "the cluster's registry $REGISTRY does not answer: make cluster"; exit 2; }

# skaffold calls docker (BuildKit), helm and kubectl from PATH; it pushes to the registry.
docker_bin=$(bash scripts/docker-engine.sh --client)
SKAFFOLD=${SKAFFOLD:-$(bash scripts/build-skaffold.sh)}
tools=$(mktemp -d /tmp/forest-e2e-bin.XXXXXX)
ln -s "$KIND" "$tools/kind"
ln -s "$KUBECTL" "$tools/kubectl"
ln -s "$SKAFFOLD" "$tools/skaffold"
ln -s "$(command -v helm || echo "$repo/.tools/bin/helm")" "$tools/helm"
ln -s "$docker_bin" "$tools/docker"
export PATH="$tools:$PATH" DOCKER_BUILDKIT=1 SKAFFOLD_DEFAULT_REPO=$REGISTRY
# The README's commands use the current context: make it this cluster's, in a kubeconfig of
# our own so the user's is left alone.
export KUBECONFIG_ORIG=${KUBECONFIG:-$HOME/.kube/config}
kubeconfig=$tools/kubeconfig
"$KUBECTL" config view --raw --minify --flatten --context "$context" >"$kubeconfig"
export KUBECONFIG=$kubeconfig
# skaffold v2 asks before sending anonymous metrics and checks for updates: neither here.
"$SKAFFOLD" config set --global collect-metrics false >/dev/null
"$SKAFFOLD" config set --global update-check false >/dev/null

if [[ $profile == offline ]]; then
  bases=$(bash scripts/images/standins.sh bases)
  services=$(bash scripts/images/standins.sh services)
  FOREST_PYTHON_IMAGE=$(sed -n 's/^PYTHON_IMAGE=//p' <<<"$bases")
  FOREST_AIRFLOW_IMAGE=$(sed -n 's/^AIRFLOW_IMAGE=//p' <<<"$bases")
  dataset=${FOREST_DATASET_FILE:-../shared/data/covertype_dev.csv.gz}
  if [[ ! -f $dataset ]]; then
    dataset=$tools/covertype.csv.gz
    say "no dataset file: a seeded synthetic one (50000 rows)"
    .venv/bin/forest-mlops data synthetic --output "$dataset" --rows 50000 --seed 42 >&2
  fi
  FOREST_DATASET_IMAGE=$(bash scripts/images/dataset-image.sh "$dataset")
  export FOREST_PYTHON_IMAGE FOREST_AIRFLOW_IMAGE FOREST_DATASET_IMAGE
  export FOREST_E2E_DATASET=$dataset
  # The database and S3 stand-ins are no skaffold artifacts: pushed to the registry by hand
  # (values-offline.yaml names them there); an unchanged one moves no layer.
  while read -r image; do
    "$docker_bin" tag "$image" "$REGISTRY/$image"
    say "docker push $REGISTRY/$image"
    "$docker_bin" push -q "$REGISTRY/$image" >&2
  done < <(sed -n 's/^[A-Z0-9_]*_IMAGE=//p' <<<"$services")
fi
# The loop starts from an empty namespace: a release left by an earlier run (its DAG runs, its
# collected batches) would be upgraded instead of installed and the checks would see its past.
# The kind cluster and the images loaded into its nodes are kept. With pytest arguments (some
# phases only, e.g. -k) the platform of the earlier run is what they check: it is kept.
for namespace in forest-mlops forest-mlops-wait; do
  if [[ $# -gt 0 ]]; then
    say "pytest arguments given: namespace $namespace kept as it is"
  elif "$KUBECTL" --context "$context" get namespace "$namespace" >/dev/null 2>&1; then
    say "deleting namespace $namespace left by an earlier run (release, PVCs, Secrets)"
    "$KUBECTL" --context "$context" delete namespace "$namespace" --wait=true --timeout=10m >&2
  fi
done
# Project images of earlier runs stay in the nodes' containerd: the kubelet collects images only
# under disk pressure, reckoned against a disk far larger than this machine's quota, and a few
# runs with new tags filled it. With the namespaces gone no pod uses them: they are removed (the
# registry keeps their layers, so the next pull of an unchanged layer costs nothing but a copy
# over the kind network). Not `crictl rmi --prune`: it also removes local-path's helper image,
# which no running container holds.
if [[ $# -eq 0 ]]; then
  for node in $(kind get nodes --name "$cluster"); do
    old=$("$docker_bin" exec "$node" crictl images -o json |
      jq -r '.images[].repoTags[]? | select(startswith("'"$REGISTRY"'/forest-mlops/"))')
    if [[ -n $old ]]; then
      # shellcheck disable=SC2086  # one argument per image reference
      "$docker_bin" exec "$node" crictl rmi $old >/dev/null
      say "node $node: $(wc -w <<<"$old") project image(s) of earlier runs removed"
    fi
  done
fi
export FOREST_E2E=1 FOREST_E2E_PROFILE=$profile FOREST_E2E_CONTEXT=$context
export FOREST_E2E_PREPARE_SECONDS=$(($(date +%s) - started))
say "prepared in ${FOREST_E2E_PREPARE_SECONDS} s; skaffold $("$SKAFFOLD" version), profile '${profile}'"
status=0
.venv/bin/pytest tests/e2e -s -p no:cacheprovider -o addopts="-ra" --timeout 3600 "$@" || status=$?
rm -rf "$tools"
exit "$status"
