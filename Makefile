# The single entry point for people and CI.  `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help deps venv cluster cluster-down cluster-status lint fmt unit integration test demo bench clean

help:
	@echo "make demo          start the local control plane and git server, and run the demo"
	@echo "make test          install everything, start services, lint, type-check, run all tests"
	@echo "make cluster       start the local control plane (kubeconfig: .dev/kubeconfig)"
	@echo "make cluster-down  stop everything 'make cluster' started and delete its data"
	@echo "make lint          ruff + mypy --strict"
	@echo "make unit          unit tests only (no services)"
	@echo "make bench         run the benchmarks under bench/"

deps:
	@bash devcluster/install-deps.sh
	@$(MAKE) --no-print-directory venv

venv: $(STAMP)

$(STAMP): requirements.lock requirements-bootstrap.lock requirements-tools.lock pyproject.toml devcluster/install-tools.sh
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found %s)" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-bootstrap.lock
	@$(VENV)/bin/uv pip install -q --python $(PY) --require-hashes -r requirements.lock
	@$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	@VENV=$(VENV) bash devcluster/install-tools.sh
	@# Compiled once here: with PYTHONDONTWRITEBYTECODE set, every `tether` start would
	@# otherwise compile its imports again (5.2 s -> 1.4 s for `tether --version`).
	@$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null
	@touch $(STAMP)

cluster: deps
	@$(PY) -m devcluster.cluster up

cluster-down:
	@if [ -x $(PY) ]; then \
	  $(PY) -m devcluster.demo stop-controller; \
	  $(PY) -m devcluster.gitserver down >/dev/null; \
	  $(PY) -m devcluster.cluster down; \
	else echo "no cluster (no .venv)"; fi

cluster-status: venv
	@$(PY) -m devcluster.cluster status

lint: venv
	$(VENV)/bin/ruff check src tests devcluster bench
	$(VENV)/bin/ruff format --check src tests devcluster bench
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format src tests devcluster bench
	$(VENV)/bin/ruff check --fix src tests devcluster bench

unit: venv
	$(VENV)/bin/pytest -m unit -q

test: deps
	@bash devcluster/run-tests.sh

demo: deps
	@$(PY) -m devcluster.demo

bench: cluster
	@missed=""; \
	for b in client sync cli schema monorepo rollback api_list ui_list metrics_scrape request_cost scale; do \
		echo "== bench/$$b.py"; $(PY) bench/$$b.py || missed="$$missed $$b"; \
	done; \
	if [ -n "$$missed" ]; then echo "targets missed or failed:$$missed"; exit 1; fi

clean: cluster-down
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
