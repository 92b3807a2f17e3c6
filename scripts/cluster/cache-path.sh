#!/usr/bin/env bash
# Prints the toolchain cache directory of this recipe and exits 0 when it is complete (its
# COMPLETE marker exists), 1 when not. .ci/run uses it to decide whether to run the cluster checks.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
echo "$CACHE_DIR"
[[ -f "$CACHE_MARKER" ]]
