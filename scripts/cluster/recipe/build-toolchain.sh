#!/usr/bin/env bash
# Builds the offline kind toolchain into the cache directory (lib.sh: CACHE_DIR, named by the
# Kubernetes version and a hash of this recipe), or says that the cache already has it.
#   bin/       kind, kubectl, kubeadm, kubelet, the control plane, etcd, CoreDNS, kube-router,
#              the CNI plugins, crictl, local-path-provisioner, pause
#   images/    the test image (busybox) as a `docker save` archive (the other cluster images'
#              archives are dropped once they are in the node image)
#   kind-node-image.tar   the node image (`docker load` it into any engine)
#   COMPLETE   the single completeness marker, written last
# A build that stopped half-way resumes: finished pieces are kept until COMPLETE exists.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  say "another toolchain build holds $CACHE_ROOT/.build.lock: waiting for it"
  flock 9
fi

if [[ -f "$CACHE_MARKER" ]]; then
  say "toolchain cache HIT: $CACHE_DIR ($(du -sh "$CACHE_DIR" | cut -f1), built $(cat "$CACHE_MARKER"))"
  exit 0
fi
say "toolchain cache MISS: building $CACHE_DIR (Kubernetes $K8S_VERSION; cold build, about an hour on 2 cores)"
logs="$CACHE_DIR/logs" work="$CACHE_DIR/work"
mkdir -p "$BIN_DIR" "$CACHE_DIR/images" "$logs" "$work"
start=$(date +%s)

k8s_done() {
  local c
  for c in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    [[ -x "$BIN_DIR/$c" ]] || return 1
  done
}
if k8s_done; then
  say "[go: kubernetes] already built"
else
  phase "go: kubernetes $K8S_VERSION" "$CLUSTER_DIR/recipe/build-kubernetes.sh" "$BIN_DIR" "$logs/kubernetes.log"
fi
phase "go: kind, etcd, CoreDNS, kube-router, CNI plugins, crictl, local-path, pause" \
  "$CLUSTER_DIR/recipe/build-go-tools.sh" "$BIN_DIR" "$logs"
# The project's one Debian base (scripts/images/debian-base.sh), under the name the recipe uses.
phase "debian $DEBIAN_SUITE base (debootstrap)" bash "$REPO_DIR/scripts/images/debian-base.sh" "$LOCAL_REPO/debian:$DEBIAN_SUITE"
phase "cluster images" "$CLUSTER_DIR/recipe/build-images.sh" "$BIN_DIR" "$CACHE_DIR/images" "$work"
phase "node image" "$CLUSTER_DIR/recipe/build-node-image.sh" "$BIN_DIR" "$CACHE_DIR/images" "$work" "$NODE_IMAGE_TAR"

# The node image holds every cluster image: keep only the test image's archive (make cluster
# loads it into the engine for `kind load docker-image`).
find "$CACHE_DIR/images" -name '*.tar' ! -name "$(basename "$TEST_IMAGE_TAR")" -delete
rm -rf "$work"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - start)) s" >"$CACHE_MARKER"
say "toolchain complete: $CACHE_DIR ($(du -sh "$CACHE_DIR" | cut -f1)) in $(($(date +%s) - start)) s"
