#!/usr/bin/env bash
# `make cluster`: the kind cluster of kind-config.yaml (1 control plane, 2 workers) on this
# machine, with nothing pulled from a container registry.
#   1. a Docker engine that answers (scripts/require-engine.sh; `make docker-engine` starts one);
#   2. the offline toolchain: from the cache when complete, else built (recipe/build-toolchain.sh);
#   3. the node image and the test image loaded into the engine when it lacks them;
#   4. `kind create cluster --config kind-config.yaml --image <our node image>`, unless the
#      cluster already exists;
#   5. the local registry on localhost:5001 that the nodes pull from (registry.sh).
# The kube context is kind-forest-mlops, in $KUBECONFIG or ~/.kube/config as kind writes it.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
start=$(date +%s)

phase "docker engine" bash "$REPO_DIR/scripts/require-engine.sh"
phase "toolchain" "$CLUSTER_DIR/recipe/build-toolchain.sh"

# load_image NAME ARCHIVE: `docker load` the archive unless the engine already holds that very
# image under NAME (same image ID: an image of an older recipe under the same name is replaced).
load_image() {
  local name=$1 archive=$2 want have
  # docker save's manifest.json names the image's config file after the image ID.
  want=sha256:$(tar -xOf "$archive" manifest.json | grep -o '"Config":"[^"]*"' | head -n 1 |
    sed 's|^"Config":"||; s|"$||; s|^blobs/sha256/||; s|\.json$||')
  have=$("$DOCKER" image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
  if [[ "$have" == "$want" ]]; then
    say "image $name: already in the engine"
  else
    phase "docker load $name" "$DOCKER" load -q -i "$archive"
  fi
}
load_image "$NODE_IMAGE_NAME" "$NODE_IMAGE_TAR"
load_image "$TEST_IMAGE_NAME" "$TEST_IMAGE_TAR"

# api_answers: every node Ready within a minute. A cluster whose containers died with the engine
# (a machine restart, a stopped session) is still listed by kind but never answers again.
api_answers() {
  "$KUBECTL" --context "kind-$CLUSTER_NAME" --request-timeout=10s wait node --all \
    --for=condition=Ready --timeout=60s >/dev/null 2>&1
}
# addresses_kept: every node's InternalIP is still its container's address. After an engine
# restart the containers come back Ready on other addresses, but the API server's Service
# endpoint and the node objects keep the old ones: pods time out on 10.96.0.1 and logs cannot
# be read (seen 2026-12-06: kube-state-metrics exited, skaffold's status check failed).
addresses_kept() {
  local node ip
  while read -r node ip; do
    [[ "$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
      "$node" 2>/dev/null)" == "$ip" ]] || return 1
  done < <("$KUBECTL" --context "kind-$CLUSTER_NAME" get nodes --no-headers \
    -o custom-columns='N:.metadata.name,IP:.status.addresses[?(@.type=="InternalIP")].address')
}
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  if ! api_answers; then
    say "cluster $CLUSTER_NAME exists but does not answer: deleting it to create it anew"
    PATH="$(dirname "$DOCKER"):$PATH" "$KIND" delete cluster --name "$CLUSTER_NAME"
  elif ! addresses_kept; then
    say "cluster $CLUSTER_NAME answers, but its nodes came back on other addresses after an" \
      "engine restart: deleting it to create it anew"
    PATH="$(dirname "$DOCKER"):$PATH" "$KIND" delete cluster --name "$CLUSTER_NAME"
  else
    say "cluster $CLUSTER_NAME already exists and answers (make cluster-down deletes it)"
  fi
fi
if ! "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  # kind calls `docker`: Debian's client, the one that matches the engine.
  PATH="$(dirname "$DOCKER"):$PATH" phase "kind create cluster" "$KIND" create cluster \
    --config "$REPO_DIR/kind-config.yaml" --image "$NODE_IMAGE_NAME" --wait 5m
fi

# Service IPs without endpoints refused, not answered by this machine's proxy (the script says
# why); a node restart drops the rule, so this runs on an existing cluster too.
bash "$CLUSTER_DIR/service-routes.sh" "$CLUSTER_NAME"
phase "local registry" bash "$CLUSTER_DIR/registry.sh"
"$KUBECTL" --context "kind-$CLUSTER_NAME" get nodes -o wide
say "ready in $(($(date +%s) - start)) s: kube context kind-$CLUSTER_NAME, registry $REGISTRY (kubeconfig ${KUBECONFIG:-$HOME/.kube/config}); kubectl: $KUBECTL"
