#!/usr/bin/env bash
# Builds kube-state-metrics from its Go module (the offline stand-in image needs a binary, and
# registry.k8s.io is not reachable from every machine this project builds on) into a
# machine-wide cache, once per version:
#   /var/cache/forest-mlops/kube-state-metrics-<version>/kube-state-metrics   (override the root with FOREST_CACHE)
# scripts/images/standins.sh copies it into the stand-in image
# forest-mlops-standin/kube-state-metrics:<version without the v>.
# About 14 minutes on 2 cores shared with other builds the first time (module downloads
# included; client-go and the Kubernetes API types are large; measured 2026-12-05), 0.1 s when
# cached. Prints the binary's path on success.
set -euo pipefail
VERSION=${KUBE_STATE_METRICS_VERSION:-v2.20.0}
MOD=k8s.io/kube-state-metrics/v2
CACHE=${FOREST_CACHE:-/var/cache/forest-mlops}/kube-state-metrics-$VERSION
BIN=$CACHE/kube-state-metrics

main() {
  # Its version is a subcommand (no --version flag); a binary that does not report $VERSION
  # (an older build of this script's, without the ldflags below) is built again.
  if [[ -x $BIN ]] && "$BIN" version 2>/dev/null | grep -q "version $VERSION "; then
    echo "$BIN"
    return
  fi
  mkdir -p "$CACHE"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # go install mod@version refuses modules with replace directives; v2.20.0's go.mod has none.
  # The release's version string is set by upstream's Makefile with -ldflags (prometheus/common's
  # version package); without it `kube-state-metrics version` and its build_info metric report
  # an empty version. Revision, branch and build date stay unset: there is no git checkout.
  GOBIN=$work CGO_ENABLED=0 nice -n 15 go install -trimpath \
    -ldflags "-X github.com/prometheus/common/version.Version=$VERSION" "$MOD@$VERSION" >&2
  mv "$work/kube-state-metrics" "$BIN"
  echo "$BIN"
}

main
