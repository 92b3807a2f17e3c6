#!/usr/bin/env bash
# The kind cluster's local registry, as kind documents it ("Local Registry"):
#   1. a registry container, forest-mlops-registry, on the `kind` Docker network, published on
#      127.0.0.1:5001; its blobs live in the volume forest-mlops-registry, so they outlive the
#      container and the cluster (a fresh cluster pulls what the last one had pushed);
#   2. each node's containerd told that localhost:5001 is that container (a hosts file under
#      /etc/containerd/certs.d, read at every pull; kind-config.yaml sets config_path);
#   3. the ConfigMap kube-public/local-registry-hosting (KEP-1755) announcing it to tools.
# The image is the official registry's where it can be had, else Debian's docker-registry
# (scripts/images/standins.sh registry). Idempotent: `make cluster` runs it every time.
# Needs: the cluster of kind-config.yaml (made by `make cluster`, or by your own
# `kind create cluster --config kind-config.yaml`: then kind and kubectl come from PATH), Docker.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[[ -x $KIND ]] || KIND=$(command -v kind) || die "registry: no kind (make cluster builds one)"
[[ -x $KUBECTL ]] || KUBECTL=$(command -v kubectl) || die "registry: no kubectl"

registry_image() {
  bash "$REPO_DIR/scripts/images/standins.sh" registry | sed -n 's/^REGISTRY_IMAGE=//p'
}

# ensure_container IMAGE: the registry container runs IMAGE on the kind network.
ensure_container() {
  local image=$1 running_image
  running_image=$("$DOCKER" inspect -f '{{.Image}}' "$REGISTRY_CONTAINER" 2>/dev/null || true)
  if [[ -n $running_image && $running_image != "$("$DOCKER" image inspect -f '{{.Id}}' "$image")" ]]; then
    say "registry: $REGISTRY_CONTAINER runs another image: replacing it (its blobs stay in volume $REGISTRY_VOLUME)"
    "$DOCKER" rm -f "$REGISTRY_CONTAINER" >/dev/null
    running_image=""
  fi
  if [[ -z $running_image ]]; then
    # Deletes are enabled so that old tags can be removed and garbage-collected
    # (registry-gc.sh): the registry's disk use stays flat across runs.
    "$DOCKER" run --detach --restart=always --name "$REGISTRY_CONTAINER" \
      --network kind -p "127.0.0.1:$REGISTRY_PORT:5000" \
      -v "$REGISTRY_VOLUME:/var/lib/registry" \
      -e REGISTRY_STORAGE_DELETE_ENABLED=true "$image" >/dev/null
    say "registry: $REGISTRY_CONTAINER started from $image on 127.0.0.1:$REGISTRY_PORT"
  elif [[ $("$DOCKER" inspect -f '{{.State.Running}}' "$REGISTRY_CONTAINER") != true ]]; then
    "$DOCKER" start "$REGISTRY_CONTAINER" >/dev/null
    say "registry: $REGISTRY_CONTAINER started again"
  else
    say "registry: $REGISTRY_CONTAINER already runs ($image)"
  fi
  # A cluster made anew after this container started may come with a new kind network.
  if ! "$DOCKER" network inspect kind -f '{{range .Containers}}{{.Name}} {{end}}' | grep -qw "$REGISTRY_CONTAINER"; then
    "$DOCKER" network connect kind "$REGISTRY_CONTAINER"
    say "registry: $REGISTRY_CONTAINER connected to the kind network"
  fi
}

wait_answers() {
  local _
  for _ in $(seq 30); do
    curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return 0
    sleep 1
  done
  "$DOCKER" logs --tail 20 "$REGISTRY_CONTAINER" >&2
  die "registry: no answer on http://$REGISTRY/v2/ within 30 s"
}

# point_nodes: every node's containerd resolves localhost:5001 to the registry container (by its
# name on the kind network). containerd reads hosts files at each pull: no restart.
point_nodes() {
  local node dir="/etc/containerd/certs.d/$REGISTRY"
  for node in $(PATH="$(dirname "$DOCKER"):$PATH" "$KIND" get nodes --name "$CLUSTER_NAME"); do
    "$DOCKER" exec -i "$node" sh -c "mkdir -p '$dir' && cat >'$dir/hosts.toml'" <<TOML
[host."http://$REGISTRY_CONTAINER:5000"]
  capabilities = ["pull", "resolve"]
TOML
  done
  say "registry: nodes pull $REGISTRY/* from $REGISTRY_CONTAINER:5000"
}

announce() {
  "$KUBECTL" --context "kind-$CLUSTER_NAME" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "$REGISTRY"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
  say "registry: announced in kube-public/local-registry-hosting"
}

main() {
  local image
  image=$(registry_image)
  [[ -n $image ]] || die "registry: no registry image"
  ensure_container "$image"
  wait_answers
  point_nodes
  announce
}

main "$@"
