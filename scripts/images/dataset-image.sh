#!/usr/bin/env bash
# Wraps a dataset file (course layout, gzipped CSV) in an image FROM scratch whose only file is
# /covertype.csv.gz, for `images/api-data/Dockerfile --build-arg DATASET_SOURCE=file
# --build-arg DATASET_IMAGE=<name>`. The image name carries the file's digest, so an unchanged
# file is never rebuilt. Prints the image name.  Usage: dataset-image.sh FILE
set -euo pipefail
file=${1:?usage: dataset-image.sh FILE}
docker_bin=$(bash "$(dirname "$0")/../docker-engine.sh" --client)
digest=$(sha256sum "$file" | cut -c1-12)
name="forest-mlops-dataset/covertype:$digest"
if "$docker_bin" image inspect "$name" >/dev/null 2>&1; then
  echo "dataset image $name: reused" >&2
else
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$file" "$ctx/covertype.csv.gz"
  printf 'FROM scratch\nCOPY covertype.csv.gz /covertype.csv.gz\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=1 "$docker_bin" build --quiet -t "$name" "$ctx" >/dev/null
  echo "dataset image $name: built from $file" >&2
fi
echo "$name"
