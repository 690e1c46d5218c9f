# cxmon: `make demo` and `make test` work on a machine with only Python 3.11, pip, gcc and apt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest-xdist processes for unit, integration and test (0: one process). The integration tests
# mostly wait on subprocesses, and a 2-core CI machine runs the unit tests on both cores.
TEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

# The engine's per-event modules (monitor/build.py) are compiled with mypyc, in place beside
# their sources, and built again when the engine's sources change. CXMON_COMPILE=0 runs them as
# Python source instead (and removes an earlier build).
CXMON_COMPILE ?= 1
ENGINE := $(VENV)/.engine-$(if $(filter 0,$(CXMON_COMPILE)),python,compiled)
ENGINE_SOURCES := setup.py $(wildcard monitor/*.py monitor/engine/*.py monitor/engine/kinds/*.py \
                  monitor/events/*.py monitor/rules/*.py monitor/authoring/*.py)
BUILT := find monitor -name '*.so' -delete; rm -rf build cxmon_engine__mypyc*.so

.PHONY: demo test lint unit integration bench install clean k8s-configmaps

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CXMON_COMPILE=0 $(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

$(VENV)/.engine-compiled: $(STAMP) $(ENGINE_SOURCES)
	@rm -f $(VENV)/.engine-python; $(BUILT)
	@echo "compiling the engine with mypyc (about a minute; CXMON_COMPILE=0 skips it)"
	@CXMON_COMPILE=1 $(PY) setup.py build_ext --inplace > $(VENV)/engine-build.log 2>&1 || { \
	  tail -n 30 $(VENV)/engine-build.log; $(BUILT); \
	  echo "the engine did not compile (log: $(VENV)/engine-build.log); CXMON_COMPILE=0 runs it as Python"; \
	  exit 1; }
	@touch $@

$(VENV)/.engine-python: $(STAMP)
	@rm -f $(VENV)/.engine-compiled; $(BUILT)
	@touch $@

install: $(ENGINE)

demo: $(ENGINE)
	$(PY) -m cli.main demo

lint: $(STAMP)
	$(VENV)/bin/ruff check monitor streams cli tests deploy dashboards setup.py
	$(VENV)/bin/ruff format --check monitor streams cli tests deploy dashboards setup.py
	$(VENV)/bin/mypy monitor streams cli tests setup.py
	$(VENV)/bin/lint-imports

unit: $(ENGINE)
	$(PYTEST) tests/unit

integration: $(ENGINE)
	$(PYTEST) tests/integration

test: lint $(ENGINE)
	$(PYTEST)

# About 28 minutes on a quiet 2-core machine (each bench has its own timeout marker): state
# ~15 (a million-state recovery), peer ~4, worker ~3, latency ~3, replay ~2, engine ~1.5,
# mapping ~0.5. Each writes its section of BENCHMARKS.md.
bench: $(ENGINE)
	$(VENV)/bin/pytest -q tests/bench -p no:cacheprovider

# Regenerate deploy/k8s's rules and alerting ConfigMaps after editing rules/ or alerting.yaml.
k8s-configmaps: $(ENGINE)
	$(PY) deploy/k8s/configmaps.py

clean:
	rm -rf $(VENV) .cxmon .pytest_cache .mypy_cache .ruff_cache
	$(BUILT)
