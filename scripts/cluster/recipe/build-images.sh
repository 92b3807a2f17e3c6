#!/usr/bin/env bash
# Builds the images that run in the cluster, from the binaries in BIN_DIR, and saves each into
# IMAGES_DIR as an archive for the node image:
#   - the kubeadm images (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
#     etcd, CoreDNS) under the names kubeadm v1.34.4 asks for: each is built from the upstream
#     source at exactly the version that name stands for;
#   - ours, under forest-mlops-local/: pause, kube-router, local-path-provisioner, busybox.
# Usage: build-images.sh BIN_DIR IMAGES_DIR WORK_DIR
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
bin=$1 images=$2 work=$3
mkdir -p "$images" "$work"
debian="$LOCAL_REPO/debian:$DEBIAN_SUITE"
net_base="$LOCAL_REPO/debian-net:$DEBIAN_SUITE"

# build_image NAME BASE ENTRYPOINT_JSON BINARY...: an image of BASE plus the binaries in
# /usr/local/bin, then `docker save` into IMAGES_DIR.
build_image() {
  local name=$1 base=$2 entrypoint=$3 ctx archive
  shift 3
  archive="$images/$(tr '/:' '__' <<<"$name").tar"
  if [[ -f "$archive" ]]; then
    say "  $name: already saved"
    return
  fi
  ctx=$(mktemp -d "$work/ctx.XXXXXX")
  cp "$@" "$ctx/"
  {
    echo "FROM $base"
    echo "LABEL org.opencontainers.image.description=\"forest-mlops offline build: $name\""
    echo "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for b in "$@"; do echo "COPY $(basename "$b") /usr/local/bin/"; done
    [[ -n "$entrypoint" ]] && echo "ENTRYPOINT $entrypoint"
  } >"$ctx/Dockerfile"
  "$DOCKER" build -q -t "$name" "$ctx" >/dev/null
  "$DOCKER" save -o "$archive.part" "$name"
  mv "$archive.part" "$archive"
  # The image lives on in the archive (and in the node image): the engine keeps no image under
  # a registry.k8s.io name, which would stand in for the real one on a machine that can pull.
  "$DOCKER" rmi "$name" >/dev/null
  rm -rf "$ctx"
  say "  $name: built and saved ($(du -m "$archive" | cut -f1) MB)"
}

# The iptables/ipset base of kube-proxy and kube-router, on the legacy iptables back end like
# the node itself (scripts/cluster/recipe/node-image/files/usr/local/bin/entrypoint).
if ! "$DOCKER" image inspect "$net_base" >/dev/null 2>&1; then
  ctx=$(mktemp -d "$work/ctx.XXXXXX")
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian
RUN apt-get update \\
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
     iptables ipset iproute2 conntrack kmod \\
  && apt-get clean && rm -rf /var/lib/apt/lists/* \\
  && update-alternatives --set iptables /usr/sbin/iptables-legacy \\
  && update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy
DOCKERFILE
  run_logged "$work/debian-net.log" "$DOCKER" build --network host -t "$net_base" "$ctx"
  rm -rf "$ctx"
  say "  $net_base built"
fi

k8s=registry.k8s.io
build_image "$k8s/kube-apiserver:$K8S_VERSION" scratch "" "$bin/kube-apiserver"
build_image "$k8s/kube-controller-manager:$K8S_VERSION" scratch "" "$bin/kube-controller-manager"
build_image "$k8s/kube-scheduler:$K8S_VERSION" scratch "" "$bin/kube-scheduler"
build_image "$k8s/kube-proxy:$K8S_VERSION" "$net_base" "" "$bin/kube-proxy"
build_image "$k8s/etcd:${ETCD_VERSION#v}-0" scratch "" "$bin/etcd"
# CoreDNS's Deployment (kubeadm) passes only arguments: the image's entrypoint is the server.
build_image "$k8s/coredns/coredns:$COREDNS_VERSION" scratch '["/usr/local/bin/coredns"]' "$bin/coredns"
build_image "$LOCAL_REPO/pause:$PAUSE_TAG" scratch '["/usr/local/bin/pause"]' "$bin/pause"
build_image "$LOCAL_REPO/kube-router:$KUBE_ROUTER_VERSION" "$net_base" '["/usr/local/bin/kube-router"]' \
  "$bin/kube-router"
build_image "$LOCAL_REPO/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION" scratch "" \
  "$bin/local-path-provisioner"

# busybox: Debian's busybox-static, its applets as symlinks, imported as an image.
busybox="$LOCAL_REPO/busybox:$BUSYBOX_TAG"
archive="$images/$(tr '/:' '__' <<<"$busybox").tar"
if [[ ! -f "$archive" ]]; then
  root=$(mktemp -d "$work/busybox.XXXXXX")
  # As root into our own directory (apt's _apt sandbox user cannot write there).
  # (A fresh machine may have no package lists yet: fetch them once when the download fails.)
  (cd "$root" && { apt-get download -qq -o APT::Sandbox::User=root busybox-static ||
    { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root busybox-static; }; })
  version=$(dpkg-deb -f "$root"/busybox-static_*.deb Version)
  [[ "$version" == "1:$BUSYBOX_TAG-"* ]] || die "busybox-static is $version, the recipe expects $BUSYBOX_TAG"
  dpkg-deb -x "$root"/busybox-static_*.deb "$root/fs"
  mkdir -p "$root/fs/tmp" "$root/fs/etc"
  "$root/fs/bin/busybox" --list | while read -r applet; do
    [[ -e "$root/fs/bin/$applet" ]] || ln -s busybox "$root/fs/bin/$applet"
  done
  echo "root:x:0:0:root:/root:/bin/sh" >"$root/fs/etc/passwd"
  echo "root:x:0:" >"$root/fs/etc/group"
  tar -C "$root/fs" -c . | "$DOCKER" import -c 'CMD ["/bin/sh"]' - "$busybox" >/dev/null
  "$DOCKER" save -o "$archive.part" "$busybox"
  mv "$archive.part" "$archive"
  rm -rf "$root"
  say "  $busybox: imported from Debian's busybox-static and saved"
fi
