#!/bin/bash
# Imports every image archive of /kind/images into containerd's k8s.io namespace (where the
# kubelet's CRI finds images), unpacked for the overlayfs snapshotter.
set -euo pipefail
for _ in $(seq 60); do
  ctr version >/dev/null 2>&1 && break
  sleep 1
done
for archive in /kind/images/*.tar; do
  echo "importing $archive"
  ctr --namespace=k8s.io images import --snapshotter=overlayfs "$archive"
done
mkdir -p /var/lib/forest-mlops
touch /var/lib/forest-mlops/images-loaded
