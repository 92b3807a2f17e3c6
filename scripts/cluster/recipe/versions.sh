# shellcheck shell=bash
# shellcheck disable=SC2034  # sourced: the variables are used by the scripts that source it
# Every version the offline cluster toolchain is built from, in one place. The cache directory's
# name carries the Kubernetes version and a hash of this file and the recipe (scripts/cluster/),
# so changing a pin here builds a new toolchain next to the old one.

# Kubernetes: 1.34 is the newest release whose kubelet runs on a cgroup v1 host without
# failCgroupV1: false (this machine's kernel has cgroup v1).
K8S_VERSION=v1.34.4
K8S_STAGING_VERSION=v0.34.4
# The versions kubeadm v1.34.4 asks for (cmd/kubeadm/app/constants: DefaultEtcdVersion,
# PauseVersion, CoreDNSVersion).
ETCD_VERSION=v3.6.5   # image tag 3.6.5-0, as kubeadm names it
COREDNS_VERSION=v1.12.1
KIND_VERSION=v0.33.0
CRI_TOOLS_VERSION=v1.34.0
CNI_PLUGINS_VERSION=v1.9.1
KUBE_ROUTER_VERSION=v2.1.0
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30

# Debian release of the node root filesystem (systemd 252: systemd 256+ refuses cgroup v1) and
# of the test image's busybox.
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian

# Image names inside the node. Images built from the same upstream source at the version kubeadm
# asks for carry kubeadm's names; everything else is ours and says so.
LOCAL_REPO=forest-mlops-local
# Debian's busybox-static (1:1.35.0-4+deb12u1 in bookworm) as a tiny image: the storage
# provisioner's helper pods and the cluster checks' test pods run it.
BUSYBOX_TAG=1.35.0
# Our own pause program's version (modules/pause).
PAUSE_TAG=1.0
