# shellcheck shell=bash
# The project's one "already built?" rule for images made here (stand-ins, the Debian base):
# an image carries the label forest-mlops.recipe, a digest of everything it is made from; an
# image whose label equals the digest of its inputs now is reused, anything else is rebuilt.
# Source it after setting docker_bin.
# shellcheck disable=SC2154  # docker_bin is set by the script that sources this one

# recipe_of IMAGE: the image's recipe label, empty when the image is missing.
recipe_of() { "$docker_bin" image inspect --format '{{ index .Config.Labels "forest-mlops.recipe" }}' "$1" 2>/dev/null || true; }

# recipe_digest ITEM...: sha256 of files (their contents) and strings (themselves), in order.
recipe_digest() { { for item in "$@"; do if [[ -f "$item" ]]; then sha256sum <"$item"; else echo "$item"; fi; done; } | sha256sum | cut -c1-16; }
