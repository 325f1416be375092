# The two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHELL := bash
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup system venv kube demo test test-cluster lint bench down

setup: system venv kube

system:
	bash .ci/system-packages

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Pebble, the Kubernetes binaries, temporal-server (~3 min cold) and acmeflow's cert-manager-controllers program
# (deploy/cert-manager-controllers; ~4 min cold, keyed by version and source hash), built from the
# Go module proxy once, cached in ~/.cache/acmeflow; Temporal's time-skipping test server (for
# tests/workflows) from Maven Central, cached there too.
kube: venv
	$(BIN)/python -m acmeflow.devstack.go_builds
	$(BIN)/python -m acmeflow.devstack.time_skipping_server

demo: setup
	bash deploy/demo.sh

# Then the cluster subset: orders, Kubernetes, Certificates and the runbook against a Temporal
# cluster (four temporal-server processes over PostgreSQL) instead of the dev server.
CLUSTER_TESTS := tests/cluster tests/orders/test_issuance.py tests/bridge/test_orders_in_kubernetes.py \
	tests/bridge/test_certificates.py tests/operations/test_runbook.py

test: setup
	$(BIN)/pytest -q -ra
	ACMEFLOW_TEST_TEMPORAL=cluster $(BIN)/pytest -q -ra -p no:cacheprovider $(CLUSTER_TESTS)

test-cluster: setup
	ACMEFLOW_TEST_TEMPORAL=cluster $(BIN)/pytest -q -ra -p no:cacheprovider $(CLUSTER_TESTS)

# mypy and import-linter read the installed layout (build/lint/acmeflow, see .ci/package-tree);
# their paths are mapped back to the folders you edit.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/python .ci/package-tree
	set -o pipefail; $(BIN)/mypy | sed -E 's#^build/lint/acmeflow/(workflows|activities|worker|k8s_bridge)/#\1/#; s#^build/lint/##'
	cd build/lint && ../../$(BIN)/lint-imports ../../.importlinter

down: venv
	$(BIN)/acmeflow dev down
