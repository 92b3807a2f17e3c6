#!/usr/bin/env bash
# `make cluster-down`: deletes the kind cluster (the cached toolchain stays).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
kind=$KIND
[[ -x "$kind" ]] || kind=$(command -v kind || true)
[[ -n "$kind" ]] || die "no kind binary (neither $KIND nor kind on PATH)"
if "$kind" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  PATH="$(dirname "$DOCKER"):$PATH" phase "kind delete cluster" "$kind" delete cluster --name "$CLUSTER_NAME"
else
  say "no cluster $CLUSTER_NAME: nothing to delete"
fi
