#!/usr/bin/env bash
# A Debian root filesystem (debootstrap, minbase) imported into Docker as the base of the node
# image and of our component images: no image can be pulled here.
# Usage: build-debian-base.sh WORK_DIR LOG   -> image $LOCAL_REPO/debian:$DEBIAN_SUITE
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
work=$1 log=$2
image="$LOCAL_REPO/debian:$DEBIAN_SUITE"
if "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
  say "  $image: already in the engine"
  exit 0
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
rootfs="$work/debian-rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"
run_logged "$log" debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR"
# An image, not a machine: no apt caches, no package lists (each image's build refreshes them).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$DOCKER" import - "$image" >/dev/null
rm -rf "$rootfs"
say "  $image imported"
