#!/usr/bin/env bash
# `make docker-engine`: the one step that installs, starts or reconfigures a Docker engine on
# this machine (run as root; CI runs it in .ci/run). Build and test targets never call it: they
# only check that an engine answers (scripts/require-engine.sh) and stop, naming this target,
# when none does. It says what it did:
#   - an engine that already answers is used as it is;
#   - otherwise Debian's docker.io is installed (when dockerd is missing) and dockerd started in
#     the background, logging to /var/log/forest-mlops-dockerd.log.
# Sandboxes whose capability bounding set lacks CAP_SYS_RESOURCE cannot run privileged
# containers (every kind node is one): runc fails with "unable to apply caps". There the engine's
# default runtime becomes a small shim (installed outside the work tree) that drops that one
# capability from the container and exec specs, then runs runc unchanged.
#
# `--client` prints the docker client builds use (scripts/require-engine.sh --client, read-only;
# kept here for the scripts that ask this script).
set -euo pipefail

SHIM_DIR=/usr/local/lib/forest-mlops
SHIM="$SHIM_DIR/runc-drop-sys-resource"
LOG=/var/log/forest-mlops-dockerd.log

REQUIRE="$(dirname "$0")/require-engine.sh"

if [[ "${1:-}" == "--client" ]]; then
  exec bash "$REQUIRE" --client
fi

say() { echo "docker-engine: $*" >&2; }

if answer=$(bash "$REQUIRE" 2>&1); then
  say "$answer: nothing to do"
  exit 0
fi

if [[ ! -x /usr/sbin/dockerd ]]; then
  say "no engine: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io jq >/dev/null
fi
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }

# Bit 24 of the bounding set is CAP_SYS_RESOURCE.
capbnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
if (((0x$capbnd >> 24 & 1) == 0)); then
  say "CAP_SYS_RESOURCE is outside this sandbox's bounding set: default runtime = $SHIM"
  mkdir -p "$SHIM_DIR"
  cat >"$SHIM" <<'SH'
#!/bin/sh
# runc with CAP_SYS_RESOURCE removed from the spec it is given (create/run: --bundle DIR's
# config.json; exec: the --process FILE), because this sandbox cannot grant it.
strip() {
  [ -f "$1" ] || return 0
  tmp="$1.shim.$$"
  jq "$2 |= (if . == null then . else with_entries(.value |= (if type == \"array\" then map(select(. != \"CAP_SYS_RESOURCE\")) else . end)) end)" "$1" >"$tmp" && mv "$tmp" "$1"
}
prev=""
for arg in "$@"; do
  case "$prev" in
    --bundle|-b) strip "$arg/config.json" '.process.capabilities' ;;
    --process|-p) strip "$arg" '.capabilities' ;;
  esac
  case "$arg" in
    --bundle=*) strip "${arg#--bundle=}/config.json" '.process.capabilities' ;;
    --process=*) strip "${arg#--process=}" '.capabilities' ;;
  esac
  prev="$arg"
done
exec /usr/bin/runc "$@"
SH
  chmod 755 "$SHIM"
  mkdir -p /etc/docker
  want=$(jq -n --arg shim "$SHIM" '{runtimes: {shim: {path: $shim}}, "default-runtime": "shim"}')
  if [[ -f /etc/docker/daemon.json ]]; then
    jq -s '.[0] * .[1]' /etc/docker/daemon.json <(echo "$want") >/etc/docker/daemon.json.new
    mv /etc/docker/daemon.json.new /etc/docker/daemon.json
  else
    echo "$want" >/etc/docker/daemon.json
  fi
fi

if pgrep -x dockerd >/dev/null; then
  say "dockerd runs but does not answer: reloading its configuration"
  pkill -HUP -x dockerd
else
  say "starting dockerd (log: $LOG)"
  # containerd comes with docker.io; dockerd starts its own when none runs.
  nohup /usr/sbin/dockerd >>"$LOG" 2>&1 &
fi
for _ in $(seq 60); do
  /usr/bin/docker info >/dev/null 2>&1 && break
  sleep 1
done
if ! /usr/bin/docker info >/dev/null 2>&1; then
  say "dockerd did not answer within 60 s; last log lines:"
  tail -20 "$LOG" >&2
  exit 1
fi
say "engine answers ($(/usr/bin/docker version --format '{{.Server.Version}}'))"
