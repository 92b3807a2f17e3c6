#!/usr/bin/env bash
# The read-only half of the Docker engine: changes nothing on the machine.
#   bash scripts/require-engine.sh            exit 0 when an engine answers (its version on
#                                             stderr), else a message naming
#                                             `make docker-engine` on stderr and exit 1
#   bash scripts/require-engine.sh --client   print the docker client builds use
# Build and test targets (make images, make cluster, make cluster-check, make e2e) run the check
# first, so that a missing engine stops them with one clear sentence instead of a cryptic docker
# error later.
# Installing, starting or reconfiguring an engine is `make docker-engine`'s job alone
# (scripts/docker-engine.sh): a machine-level change is never a side effect of a build.
# The client honours DOCKER_HOST like any docker client.
set -euo pipefail

# Builds need BuildKit: Debian's /usr/bin/docker (20.10) has it built in, while a newer client
# without the buildx plugin (this machine's /usr/local/bin/docker) refuses `docker build`.
client() {
  if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker; fi
}

main() {
  if [[ "${1:-}" == "--client" ]]; then
    client
    return
  fi
  local docker_bin error answer
  docker_bin=$(client) || docker_bin=""
  # `docker version` rather than `docker info`: on failure it names the reason on stderr
  # ("Cannot connect to the Docker daemon at unix:///... Is the docker daemon running?"), where
  # Debian's 20.10 `docker info` says only "errors pretty printing info".
  if [[ -z "$docker_bin" ]]; then
    error="no docker client (neither /usr/bin/docker nor docker on PATH)"
  elif answer=$(timeout 30 "$docker_bin" version --format '{{.Server.Version}}' 2>&1); then
    echo "docker engine answers ($answer)" >&2
    return 0
  else
    error="$docker_bin version: $(grep -m 1 . <<<"$answer" || echo "no answer within 30 s")"
  fi
  {
    echo "no Docker engine answers ($error)."
    echo "Builds and tests do not install or start one: run \`make docker-engine\` (as root; it"
    echo "installs Debian's docker.io when dockerd is missing, starts dockerd and, where the"
    echo "sandbox lacks CAP_SYS_RESOURCE, registers a runc shim in /etc/docker/daemon.json), or"
    echo "point DOCKER_HOST at an engine that answers."
  } >&2
  return 1
}

main "$@"
