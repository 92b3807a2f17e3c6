#!/usr/bin/env bash
# `make bench-dev-loop`: bench/dev_loop.py (how fast an edit reaches the cluster) on the kind
# cluster of `make cluster`, prepared as `make e2e` prepares its run (scripts/e2e/prepare.sh).
# It deletes and recreates the cluster (its first figure is `skaffold run` on a fresh cluster)
# and leaves the platform deployed by `skaffold dev -p offline,dev` running. Arguments go to
# bench/dev_loop.py (--cycles N, --keep-cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/e2e/prepare.sh
source scripts/e2e/prepare.sh
export FOREST_E2E_PROFILE=$profile FOREST_E2E_CONTEXT=$context
status=0
.venv/bin/python -m bench.dev_loop "$@" || status=$?
rm -rf "$tools"
exit "$status"
