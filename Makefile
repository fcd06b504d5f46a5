# The release train's commands. `make help` lists them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export RELEASE_TRAIN_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
# parallel test workers; the e2e tests share one Airflow home per worker
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install up test test-clock test-fast simulate mutants lint format check-config bench constraints clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the pinned dependencies with the dev tools (once; again when pins change)

# the product (include/) and, beside it, make up's local stack and the simulator (dev/, in no image)
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml dev/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . -e dev
	touch $(STAMP)

up: install ## run the pipeline locally: simulator + Airflow UI on http://localhost:8080 (Ctrl-C stops)
	$(PY) -m devstack

test: install ## run the whole test suite (starts/installs PostgreSQL, Redis, chromium when missing)
	scripts/ensure-test-services postgres redis chromium
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

# a moment inside the year-end freeze, a minute before a new year: the runs tick across it
CLOCK_TODAY ?= 2026-12-31T23:59:00+01:00
# every test that runs in-process (a code path reading the real clock instead of the one a
# test pinned shows here), and the end-to-end runs the calendar drives
test-clock: install ## the in-process and calendar-driven tests again, as if today were $(CLOCK_TODAY)
	scripts/ensure-test-services postgres redis
	RELEASE_TRAIN_TEST_TODAY=$(CLOCK_TODAY) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup \
		tests/unit tests/plugins tests/dags tests/simulation tests/simulator \
		tests/e2e/test_oem_delivery.py tests/e2e/test_production_release.py \
		tests/e2e/test_general_release_notes.py

test-fast: install ## unit and DAG tests only, no end-to-end runs (needs only PostgreSQL)
	scripts/ensure-test-services postgres
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not e2e"

# more generated years than the suite's 20 per database (docs/simulated-year.md)
YEARS ?= 200
simulate: install ## the simulated year, YEARS generated years per database (make simulate YEARS=500)
	scripts/ensure-test-services postgres
	RELEASE_TRAIN_SIM_YEARS=$(YEARS) $(PY) -m pytest -n $(TEST_WORKERS) tests/simulation

# the rule modules (MODULES: some of them, as scripts/mutants names them) against tests/unit,
# tests/plugins and tests/dags; see docs/mutation-testing.md
mutants: install ## mutation testing of the rule modules with mutmut (slow: outside CI)
	scripts/ensure-test-services postgres
	scripts/mutants $(MODULES)

lint: install ## ruff: style, imports and Airflow 3 rules
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-config: install ## validate config/calendar.yaml and config/oems.yaml (non-zero on errors)
	$(VENV)/bin/release-train check-config

bench: install ## print the performance figures (see README)
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

constraints: ## rebuild constraints.txt from a fresh install of requirements-dev.txt (which includes requirements.txt)
	rm -rf /tmp/release-train-constraints-venv
	$(PYTHON) -m venv /tmp/release-train-constraints-venv
	/tmp/release-train-constraints-venv/bin/pip install --quiet -r requirements-dev.txt
	/tmp/release-train-constraints-venv/bin/pip freeze --all --exclude-editable | grep -vE '^(pip|setuptools|wheel)==' > constraints.txt

clean: ## remove the local Airflow home (.airflow) and caches, keep .venv
	rm -rf .airflow .pytest_cache .ruff_cache .hypothesis
