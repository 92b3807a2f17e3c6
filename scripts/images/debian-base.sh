#!/usr/bin/env bash
# The one Debian base of the project: a bookworm minbase root filesystem made with debootstrap and
# imported into Docker (no image can be pulled on the machines this project is built on). The
# stand-in bases (scripts/images/standins.sh) and the kind node image (scripts/cluster/recipe/)
# both start from it. Usage: debian-base.sh IMAGE_NAME
#
# "Already built?" is the project's one rule: an image carries the label forest-mlops.recipe,
# a digest of everything it is made from (here: this script and the mirror); an image under
# IMAGE_NAME with the same label is reused, anything else is rebuilt. debootstrap is installed
# from Debian when missing; DEBIAN_MIRROR overrides Debian's own mirror.
set -euo pipefail
name=${1:?usage: debian-base.sh IMAGE_NAME}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
docker_bin=$(bash "$here/../docker-engine.sh" --client)
# shellcheck source=recipe.sh
source "$here/recipe.sh"

key=$(recipe_digest "$here/debian-base.sh" "$mirror")
if [[ "$(recipe_of "$name")" == "$key" ]]; then
  echo "debian-base: $name reused (recipe $key)" >&2
  exit 0
fi
echo "debian-base: building $name with debootstrap (recipe $key)" >&2

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "debian-base: installing debootstrap from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/forest-mlops-debian.XXXXXX)
trap 'rm -rf "$root" "$root.log"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; exit 1; }
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
    --change "LABEL forest-mlops.recipe=$key" - "$name" >/dev/null
echo "debian-base: imported $name" >&2
