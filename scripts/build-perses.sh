#!/usr/bin/env bash
# Builds Perses (the dashboards UI, issue 22) and the two plugins the project's dashboards use
# into a machine-wide cache, once per version, for machines without Docker Hub or the CUE
# registry (the offline stand-in image and the tests run it from there):
#   /var/cache/forest-mlops/perses-<version>/perses       the server, its React UI embedded
#   /var/cache/forest-mlops/perses-<version>/plugins/     one folder per plugin module
#   /var/cache/forest-mlops/perses-<version>/cue-cache/   CUE module cache (CUE_CACHE_DIR)
#   /var/cache/forest-mlops/perses-<version>/plugins-archive/<plugin>.tar.gz, cue-cache.tar
#       the same, packed reproducibly (the image's build context takes files, not folders; Perses
#       unpacks plugin archives into its plugin path at start, as the official image does)
# (override the root with FOREST_CACHE). scripts/images/standins.sh copies the folder into the
# stand-in image forest-mlops-standin/perses:<version without the v>.
# What it does: the server's Go module from the Go proxy; `npm ci` + turbo build of its ui/
# (package-lock.json pins every package); upstream's compress_assets.sh generates the embed
# file; go build. The plugins' browser bundles are the npm tarballs, their CUE schemas come
# from the plugins' Go modules (the server refuses a datasource/panel/query plugin without
# schemas/ and cue.mod/). The schemas import github.com/perses/perses/cue, which the server
# would fetch from registry.cue.works: the dependency is pinned to this server's own version and
# that module's cue/ folder is put into the CUE cache, so no registry is asked.
# Measured 2026-12-05 on 2 cores shared with a make e2e, npm and Go download caches warm: about
# 18 minutes with a cold Go build cache (UI 7-8 min, go build about 9.5 min), 521 s with a warm
# one (npm ci 77 s, UI 6 min 47 s, go build 19 s, plugins 18 s); 0.01 s when cached. Prints the
# cache folder.
set -euo pipefail
VERSION=${PERSES_VERSION:-v0.52.0}
# Frontend (npm) and schema (Go module) versions of each plugin. timeserieschart's Go module
# has no v0.10.2 on the proxy: the 0.10.1 schemas go with the 0.10.2 bundle (a patch release;
# the panel spec the dashboards use, `{}` plus optional fields, is the same in both).
PROM_NPM=0.53.4 PROM_MOD=v0.53.4
TS_NPM=0.10.2 TS_MOD=v0.10.1
CACHE=${FOREST_CACHE:-/var/cache/forest-mlops}/perses-$VERSION
STAMP="perses $VERSION prometheus-plugin $PROM_NPM/$PROM_MOD timeseries-chart-plugin $TS_NPM/$TS_MOD"

say() { echo "build-perses: $(date -u +%T) $*" >&2; }

# plugin <folder> <npm package@version> <go module@version>
plugin() {
  local dest=$1 pkg=$2 mod=$3 dir
  mkdir -p "$work/npm"
  (cd "$work/npm" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$work/out/plugins/$dest"
  tar -xzf "$work/npm"/*.tgz -C "$work/out/plugins/$dest" --strip-components=1
  rm "$work/npm"/*.tgz
  dir=$(go mod download -json "$mod" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir/schemas" "$dir/cue.mod" "$work/out/plugins/$dest/"
  chmod -R u+w "$work/out/plugins/$dest"
  # The schemas ask for a pre-release of the server's CUE module; pin it to the cached one.
  # (The dependency's block spans lines: from its name to the closing brace, set v.)
  sed -i -E '\|"github.com/perses/perses/cue(@v0)?": *\{|,/\}/ s|(v: *")[^"]*"|\1'"$VERSION"'"|' \
    "$work/out/plugins/$dest/cue.mod/module.cue"
  grep -q "v: *\"$VERSION\"" "$work/out/plugins/$dest/cue.mod/module.cue" \
    || { say "cannot pin the CUE dependency in $dest/cue.mod/module.cue"; exit 1; }
}

# Reproducible tar: same bytes for the same files, so the stand-in's recipe key stays put.
pack() { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - .; }

archives() {
  [[ -f $CACHE/cue-cache.tar ]] && return
  local tmp
  tmp=$(mktemp -d "$CACHE/.archives.XXXXXX")
  mkdir "$tmp/plugins-archive"
  for dir in "$CACHE"/plugins/*/; do
    pack "$dir" | gzip -n >"$tmp/plugins-archive/$(basename "$dir").tar.gz"
  done
  pack "$CACHE/cue-cache" >"$tmp/cue-cache.tar"
  chmod -R a+rX "$tmp"
  rm -rf "$CACHE/plugins-archive"
  mv "$tmp/plugins-archive" "$CACHE/plugins-archive"
  mv "$tmp/cue-cache.tar" "$CACHE/cue-cache.tar"
  rmdir "$tmp"
}

main() {
  if [[ -f $CACHE/BUILT && $(cat "$CACHE/BUILT") == "$STAMP" ]]; then
    archives
    echo "$CACHE"
    return
  fi
  start=$SECONDS
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  say "downloading github.com/perses/perses@$VERSION from the Go proxy"
  src=$(go mod download -json "github.com/perses/perses@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$src" "$work/perses" && chmod -R u+w "$work/perses"
  cd "$work/perses/ui"
  say "npm ci of the UI (about 1300 packages; no install scripts)"
  nice -n 19 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  say "building the UI (turbo, one task at a time: about 2 minutes)"
  nice -n 19 npx turbo run build --concurrency=1 --no-daemon >&2
  cd "$work/perses"
  say "embedding the UI and building the server (about 3 minutes)"
  bash scripts/compress_assets.sh >/dev/null
  GOWORK=off CGO_ENABLED=0 nice -n 19 go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION#v}" \
    -o "$work/out/perses" ./cmd/perses >&2
  say "plugins: npm bundles + Go-module schemas"
  plugin prometheus "@perses-dev/prometheus-plugin@$PROM_NPM" "github.com/perses/plugins/prometheus@$PROM_MOD"
  plugin timeserieschart "@perses-dev/timeseries-chart-plugin@$TS_NPM" "github.com/perses/plugins/timeserieschart@$TS_MOD"
  # CUE's module cache layout (<CUE_CACHE_DIR>/mod/extract/<module>@<version>/).
  mkdir -p "$work/out/cue-cache/mod/extract/github.com/perses/perses"
  cp -r "$work/perses/cue" "$work/out/cue-cache/mod/extract/github.com/perses/perses/cue@$VERSION"
  cp "$work/perses/LICENSE" "$work/out/LICENSE"
  echo "$STAMP" >"$work/out/BUILT"
  chmod -R a+rX "$work/out"
  mkdir -p "$(dirname "$CACHE")"
  rm -rf "$CACHE"
  mv "$work/out" "$CACHE"
  archives
  say "done in $((SECONDS - start)) s"
  echo "$CACHE"
}

main
