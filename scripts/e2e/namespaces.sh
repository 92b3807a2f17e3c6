#!/usr/bin/env bash
# make e2e's namespaces, emptied for a first install: each one an earlier `make e2e` created
# (label forest-mlops.dev/created-by=make-e2e) is deleted; one without that label may be a
# user's running platform, so nothing is deleted and the run stops (exit 3), naming it. Then
# the first namespace is created anew with the label (the others are created, labelled, by the
# test that uses them: tests/e2e/conftest.py, create_e2e_namespace). Each also enforces Pod
# Security `restricted` (every pod of the platform meets it: tests/security/test_pod_security.py).
# Usage: namespaces.sh KUBECTL CONTEXT NAMESPACE...   Needs: jq.
set -o errexit -o nounset -o pipefail

readonly LABEL_KEY=forest-mlops.dev/created-by LABEL_VALUE=make-e2e

say() { echo "e2e: $*" >&2; }

# Prints the namespace's creator label ("" without one); nothing when there is no namespace.
# An API error stops the script (errexit), rather than passing for "absent".
creator() {
  local json
  # `|| return`: errexit does not reach into a command substitution.
  json=$("$kubectl" --context "$context" get namespace "$1" --ignore-not-found -o json) || return
  [[ -n $json ]] && jq -r --arg key "$LABEL_KEY" '"[" + (.metadata.labels[$key] // "") + "]"' <<<"$json"
  return 0
}

refuse_foreign() {
  local namespace owner
  for namespace in "$@"; do
    owner=$(creator "$namespace")
    if [[ -n $owner && $owner != "[$LABEL_VALUE]" ]]; then
      say "namespace $namespace exists but make e2e did not create it (no label" \
        "$LABEL_KEY=$LABEL_VALUE): it may hold a platform of yours, so make e2e deletes" \
        "nothing and stops. If it can go: kubectl --context $context delete namespace" \
        "$namespace; if it is an earlier make e2e's: kubectl --context $context label" \
        "namespace $namespace $LABEL_KEY=$LABEL_VALUE"
      exit 3
    fi
  done
}

delete_own() {
  local namespace owner
  for namespace in "$@"; do
    owner=$(creator "$namespace")
    if [[ $owner == "[$LABEL_VALUE]" ]]; then
      say "deleting namespace $namespace left by an earlier make e2e (release, PVCs, Secrets)"
      "$kubectl" --context "$context" delete namespace "$namespace" --wait=true --timeout=10m >&2
    fi
  done
}

create_own() {
  # `create`, not `apply`: it fails on a namespace that exists, so it never marks one it
  # did not make.
  "$kubectl" --context "$context" create -f - >&2 <<JSON
{"apiVersion": "v1", "kind": "Namespace",
 "metadata": {"name": "$1", "labels": {"$LABEL_KEY": "$LABEL_VALUE",
   "pod-security.kubernetes.io/enforce": "restricted",
   "pod-security.kubernetes.io/warn": "restricted",
   "pod-security.kubernetes.io/audit": "restricted"}}}
JSON
}

main() {
  kubectl=$1 context=$2
  shift 2
  refuse_foreign "$@" # all checked before any is deleted
  delete_own "$@"
  create_own "$1"
}

main "$@"
