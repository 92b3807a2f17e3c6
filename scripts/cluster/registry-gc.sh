#!/usr/bin/env bash
# Keeps the cluster's registry (registry.sh) from growing with every build: in each repository,
# the newest KEEP (default 2) images and every image a pod of the cluster runs stay; the other
# tags' manifests are deleted, then the registry's own garbage collector removes the blobs no
# manifest references any more. Run it when nothing pushes (make e2e runs it before skaffold):
# distribution's collector assumes no upload is under way.
# Usage: registry-gc.sh [KEEP]
set -o errexit -o nounset -o pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
keep=${1:-2}
api="http://$REGISTRY/v2"
accept="application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json"

# in_use: image references of every pod's containers in the cluster, one a line.
in_use() {
  "$KUBECTL" --context "kind-$CLUSTER_NAME" get pods --all-namespaces \
    -o jsonpath='{range .items[*]}{range .spec.containers[*]}{.image}{"\n"}{end}{range .spec.initContainers[*]}{.image}{"\n"}{end}{end}'
}

# digest_and_created REPO TAG: "<manifest digest> <image creation time>".
digest_and_created() {
  local repo=$1 tag=$2 digest config
  digest=$(curl -fsSI -H "Accept: $accept" "$api/$repo/manifests/$tag" |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
  config=$(curl -fsS -H "Accept: $accept" "$api/$repo/manifests/$tag" | jq -r .config.digest)
  echo "$digest $(curl -fsSL "$api/$repo/blobs/$config" | jq -r '.created // "0"')"
}

main() {
  local used repo tag digest kept deleted=0 before after
  before=$("$DOCKER" exec "$REGISTRY_CONTAINER" du -sm /var/lib/registry | cut -f1)
  used=$(in_use)
  for repo in $(curl -fsS "$api/_catalog?n=1000" | jq -r '.repositories[]'); do
    # Newest first; a digest stays when any of its tags is among the newest or in use.
    kept=""
    while read -r tag digest _; do
      if [[ $(wc -w <<<"$kept") -lt $keep ]] || grep -qx "$REGISTRY/$repo:$tag" <<<"$used"; then
        kept="$kept $digest"
      fi
    done < <(for tag in $(curl -fsS "$api/$repo/tags/list" | jq -r '.tags // [] | .[]'); do
      echo "$tag $(digest_and_created "$repo" "$tag")"
    done | sort -k3 -r)
    for digest in $(for tag in $(curl -fsS "$api/$repo/tags/list" | jq -r '.tags // [] | .[]'); do
      digest_and_created "$repo" "$tag" | cut -d' ' -f1
    done | sort -u); do
      if ! grep -qw "$digest" <<<"$kept"; then
        curl -fsS -X DELETE "$api/$repo/manifests/$digest" >/dev/null
        deleted=$((deleted + 1))
      fi
    done
  done
  "$DOCKER" exec "$REGISTRY_CONTAINER" registry garbage-collect --delete-untagged \
    /etc/docker/registry/config.yml >/dev/null
  after=$("$DOCKER" exec "$REGISTRY_CONTAINER" du -sm /var/lib/registry | cut -f1)
  say "registry: $deleted old image(s) deleted; ${before} MB -> ${after} MB"
}

main "$@"
