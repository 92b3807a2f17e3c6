#!/usr/bin/env bash
# Builds skaffold from its Go module (the released binaries' download site is not reachable from
# every machine this project builds on) into a machine-wide cache, once per version:
#   /var/cache/forest-mlops/skaffold-<version>/skaffold   (override the root with FOREST_CACHE)
# skaffold's go.mod carries replace and exclude directives, which `go install mod@version`
# refuses, so the build happens in a throwaway wrapper module that copies them verbatim.
# v2.19.0: the first release with Helm 4.1.4 support (skaffold PR 10047, the plugin version of
# its Helm 4 post-renderer must be semver; v2.18 fails against Helm 4.1.4).
# Prints the binary's path on success.
set -euo pipefail
VERSION=${SKAFFOLD_VERSION:-v2.19.0}
MOD=github.com/GoogleContainerTools/skaffold/v2
CACHE=${FOREST_CACHE:-/var/cache/forest-mlops}/skaffold-$VERSION
BIN=$CACHE/skaffold
if [[ -x $BIN ]] && "$BIN" version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The checksum database (reached through the module proxy here) answers 404 for skaffold's own
# module: skip the lookup for that one module only; every dependency is still verified.
export GONOSUMDB=$MOD
# The served go.mod of that release: its replace/exclude lines and its go version.
gomod=$(go mod download -json "$MOD@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
{
  echo "module forest-mlops.local/skaffold-build"
  grep -E '^go ' "$gomod"
  echo "require $MOD $VERSION"
  # Single-line and block forms of replace/exclude, copied as they are.
  awk '/^(replace|exclude) \($/ {blk=1} blk {print} blk && /^\)$/ {blk=0; next} !blk && /^(replace|exclude) [^(]/ {print}' "$gomod"
} >go.mod
# Resolve the whole build list of the main package the same way skaffold's own go.sum does.
GOFLAGS=-mod=mod go get "$MOD/cmd/skaffold@$VERSION" >&2
commit=$(go mod download -json "$MOD@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin",{}).get("Hash",""))')
pkg=$MOD/pkg/skaffold/version
CGO_ENABLED=0 nice -n 15 go build -trimpath -o "$BIN.tmp" \
  -ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.gitCommit=$commit -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$MOD/cmd/skaffold" >&2
mv "$BIN.tmp" "$BIN"
echo "$BIN"
