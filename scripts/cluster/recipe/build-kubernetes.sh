#!/usr/bin/env bash
# Builds the Kubernetes binaries of the node and the host (kubeadm, kubelet, kubectl, the
# control-plane components, kube-proxy) from k8s.io/kubernetes on the Go module proxy, through
# the wrapper module in modules/kubernetes. Usage: build-kubernetes.sh OUT_DIR LOG
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
out=$1 log=$2
mkdir -p "$out"

# kubeadm refuses a binary without a release version; the other fields are what `kubectl
# version` and /version report. There is no git tree here: the build date is the module's
# release time on the proxy, so the same recipe gives the same binaries.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-02-10T12:53:36Z"
done

cmds=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done

cd "$CLUSTER_DIR/recipe/modules/kubernetes"
# Static binaries, as upstream builds them (CGO_ENABLED=0); -mod=readonly: go.sum is committed.
CGO_ENABLED=0 run_logged "$log" go build -mod=readonly -trimpath -v -ldflags "$ldflags" \
  -o "$out/" "${pkgs[@]}"
"$out/kubeadm" version -o short
