#!/usr/bin/env bash
# Makes a Service IP that no endpoint took (the Service has none yet) unreachable from pods on
# every node of the kind cluster NAME (default: the cluster of make cluster). Idempotent.
#
# Why: kube-proxy's REJECT rule for such a Service should refuse the packet, but kube-router's
# FORWARD rules accept pod traffic before that rule is reached, so the packet leaves the node
# for the Docker network and this machine's intercepting proxy answers "HTTP 404" with an
# empty body: a client that connected too early (MLflow's, the Airflow task SDK's) keeps that
# keep-alive connection and gets 404s for ever. A routing rule on each node (its pods' traffic
# arrives on kube-bridge; kube-proxy has already DNAT'ed every Service IP that has an endpoint)
# answers "no route to host" instead. Routing rules do not outlive a node's restart (a restart
# of the Docker engine restarts the nodes), so `make cluster` and `make e2e` both run this.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
name=${1:-$CLUSTER_NAME}
service_subnet=$("$KUBECTL" --context "kind-$name" -n kube-system get configmap \
  kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | sed -n 's/^ *serviceSubnet: *//p')
[[ -n "$service_subnet" ]] || die "no serviceSubnet in kubeadm-config of kind-$name"
for node in $(PATH="$(dirname "$DOCKER"):$PATH" "$KIND" get nodes --name "$name"); do
  # A node where no pod has run yet has no kube-bridge: ip then shows the rule as
  # "iif kube-bridge [detached]", and the rule still applies once the bridge appears.
  if "$DOCKER" exec "$node" ip rule show pref 100 |
    grep -Eq "to $service_subnet iif kube-bridge( \[detached\])? unreachable"; then
    say "node $node: Service IPs without endpoints already unreachable from pods"
  else
    "$DOCKER" exec "$node" ip rule add pref 100 iif kube-bridge to "$service_subnet" unreachable
    say "node $node: Service IPs without endpoints made unreachable from pods ($service_subnet)"
  fi
done
