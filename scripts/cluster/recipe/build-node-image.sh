#!/usr/bin/env bash
# Builds the kind node image from node-image/ (Dockerfile, our files), the node binaries in
# BIN_DIR and the image archives in IMAGES_DIR, then saves it to OUT_TAR so that any Docker
# engine can `docker load` it. Usage: build-node-image.sh BIN_DIR IMAGES_DIR WORK_DIR OUT_TAR
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
bin=$1 images=$2 work=$3 out=$4
ctx="$work/node-image-context"
rm -rf "$ctx"
mkdir -p "$ctx/bin/cni" "$ctx/images"
cp -r "$CLUSTER_DIR/recipe/node-image/Dockerfile" "$CLUSTER_DIR/recipe/node-image/files" "$ctx/"
cp "$bin"/{kubeadm,kubelet,kubectl,crictl} "$ctx/bin/"
cp "$bin"/cni/* "$ctx/bin/cni/"
# Hard links: the archives are large and on the same file system.
ln "$images"/*.tar "$ctx/images/" 2>/dev/null || cp "$images"/*.tar "$ctx/images/"
run_logged "$work/node-image-build.log" "$DOCKER" build --network host \
  --build-arg "K8S_VERSION=$K8S_VERSION" -t "$NODE_IMAGE_NAME" "$ctx"
"$DOCKER" save -o "$out.part" "$NODE_IMAGE_NAME"
mv "$out.part" "$out"
rm -rf "$ctx"
say "  $NODE_IMAGE_NAME built and saved ($(du -m "$out" | cut -f1) MB)"
