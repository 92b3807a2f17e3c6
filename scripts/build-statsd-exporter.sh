#!/usr/bin/env bash
# Builds prometheus/statsd_exporter from its Go module (the release binaries' download site is not
# reachable from every machine this project builds on) into a machine-wide cache, once per
# version:
#   /var/cache/forest-mlops/statsd_exporter-<version>/statsd_exporter   (override the root with FOREST_CACHE)
# tests/observability/test_statsd_mapping.py runs it with the chart's Airflow mapping
# (charts/forest-mlops/files/prometheus/statsd-mapping.yaml, written in v0.29.0's format).
# About 3 minutes on 2 busy cores the first time (module downloads included), 0.1 s when cached. Prints the binary's path on success.
set -euo pipefail
VERSION=${STATSD_EXPORTER_VERSION:-v0.29.0}
MOD=github.com/prometheus/statsd_exporter
CACHE=${FOREST_CACHE:-/var/cache/forest-mlops}/statsd_exporter-$VERSION
BIN=$CACHE/statsd_exporter

main() {
  if [[ -x $BIN ]] && "$BIN" --version >/dev/null 2>&1; then
    echo "$BIN"
    return
  fi
  mkdir -p "$CACHE"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Its go.mod has no replace or exclude directives: a plain `go install mod@version` builds it.
  GOBIN=$work CGO_ENABLED=0 nice -n 15 go install -trimpath "$MOD@$VERSION" >&2
  mv "$work/statsd_exporter" "$BIN"
  echo "$BIN"
}

main
