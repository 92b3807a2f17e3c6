#!/usr/bin/env bash
# Builds every other Go program of the toolchain from the Go module proxy, each at its pinned
# version (versions.sh): kind, etcd, CoreDNS, kube-router, the CNI plugins, crictl, the
# local-path provisioner, and our own pause. Usage: build-go-tools.sh OUT_DIR LOG_DIR
# A program already in OUT_DIR is not rebuilt (a failed toolchain build resumes where it stopped).
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
out=$1 logs=$2
mkdir -p "$out" "$logs"
export CGO_ENABLED=0

# go_install NAME PACKAGE@VERSION [LDFLAGS]: `go install` of a module without replace directives.
go_install() {
  local name=$1 pkg=$2 ldflags="-s -w ${3:-}" built
  if [[ -x "$out/$name" ]]; then
    say "  $name: already built"
    return
  fi
  say "  $name: go install $pkg"
  GOBIN="$out/.gobin" run_logged "$logs/$name.log" go install -trimpath -v -ldflags "$ldflags" "$pkg"
  built="$out/.gobin/$(basename "${pkg%@*}")"
  mv "$built" "$out/$name"
}

# wrapped NAME MODULE_DIR PACKAGE [LDFLAGS]: a build from one of our wrapper modules (go.sum
# committed, -mod=readonly).
wrapped() {
  local name=$1 dir=$2 pkg=$3 ldflags="-s -w ${4:-}"
  if [[ -x "$out/$name" ]]; then
    say "  $name: already built"
    return
  fi
  say "  $name: go build $pkg (module $dir)"
  (cd "$CLUSTER_DIR/recipe/modules/$dir" &&
    run_logged "$logs/$name.log" go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$out/$name" "$pkg")
}

go_install kind "sigs.k8s.io/kind@$KIND_VERSION"
wrapped pause pause .
wrapped etcd etcd go.etcd.io/etcd/server/v3
go_install coredns "github.com/coredns/coredns@$COREDNS_VERSION" \
  "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
go_install kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" \
  "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION" \
  "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
go_install local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" \
  "-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION"
# The CNI plugins the node's network needs: kube-router's bridge set-up plus port mappings.
mkdir -p "$out/cni"
for p in main/bridge main/loopback ipam/host-local meta/portmap; do
  name=$(basename "$p")
  [[ -x "$out/cni/$name" ]] && continue
  say "  cni/$name: go install"
  GOBIN="$out/.gobin" run_logged "$logs/cni-$name.log" go install -trimpath -v \
    -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"
  mv "$out/.gobin/$name" "$out/cni/$name"
done
rmdir "$out/.gobin" 2>/dev/null || true
