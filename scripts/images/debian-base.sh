#!/usr/bin/env bash
# Builds a Debian bookworm minbase image with debootstrap, for the stand-in bases
# (scripts/images/standins.sh). Usage: debian-base.sh IMAGE_NAME [RECIPE]
# RECIPE becomes the image's forest-mlops.recipe label (the stand-in cache key).
# debootstrap is installed from Debian when missing. The mirror is Debian's own
# (DEBIAN_MIRROR overrides it).
set -euo pipefail
name=${1:?usage: debian-base.sh IMAGE_NAME [RECIPE]}
recipe=${2:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
docker_bin=$(bash "$(dirname "$0")/../docker-engine.sh" --client)

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "debian-base: installing debootstrap from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/forest-mlops-debian.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# The official debian images keep no apt lists or caches: the same here (smaller image).
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
# The same sources layout as debian:bookworm-slim, so `apt-get update` in a build finds the
# security and updates suites too.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
tar -C "$root" --numeric-owner -c . \
  | "$docker_bin" import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL forest-mlops.recipe=$recipe" - "$name" >/dev/null
echo "debian-base: imported $name" >&2
