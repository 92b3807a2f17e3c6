# shellcheck shell=bash
# Sourced by scripts/e2e/run.sh (`make e2e`) and scripts/e2e/dev-loop.sh (bench/dev_loop.py):
# everything skaffold needs to deploy to the kind cluster of `make cluster`, checked and set up.
#   - kind, kubectl (the cluster's toolchain unless KIND/KUBECTL are given), skaffold (built from
#     its module, cached), helm and Debian's docker client on PATH;
#   - the cluster answers, and so does its registry; SKAFFOLD_DEFAULT_REPO is that registry;
#   - a kubeconfig of our own whose current context is the cluster (the user's is left alone);
#   - profile offline: the stand-in bases and api-data's dataset image for skaffold's build args,
#     and the database and S3 stand-ins pushed to the registry.
# Sets: repo, profile, cluster, context, docker_bin, SKAFFOLD, tools (a temp dir: remove it),
# and the variables of scripts/cluster/lib.sh.
repo=$PWD
profile=${FOREST_E2E_PROFILE-offline}

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
# The nodes restart with the Docker engine and lose this routing rule (make cluster adds it).
bash scripts/cluster/service-routes.sh "$cluster"

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
