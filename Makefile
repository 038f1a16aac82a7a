PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PREFECT_VENV := .venv-prefect
AIRFLOW_VENV := .venv-airflow

.PHONY: up test lint docs format clean

# tripwire-client (the engine depends on it) is installed from the repository first, so pip
# takes it from here and does not look for it on an index.
$(BIN)/tripwire: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./clients/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# A real Prefect client and server for the compatibility tests, in its own environment.
# FastAPI 0.155 dropped Body(min_items=), which Prefect 3.8's server still uses: pinned.
# On the Makefile, so an existing venv gets a changed pin.
$(PREFECT_VENV)/bin/prefect: Makefile
	$(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/pip install --quiet 'prefect>=3.8,<3.9' 'fastapi==0.154.0'
	touch $@

# A real Airflow 3 with tripwire-client (editable, so it follows the source) for the
# listener tests. Airflow's constraint files are not reachable from CI: only the minor is pinned.
$(AIRFLOW_VENV)/bin/airflow: Makefile clients/python/pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet 'apache-airflow>=3.3,<3.4' -e ./clients/python
	touch $@

up: $(BIN)/tripwire
	$(BIN)/tripwire up --automations examples

lint: $(BIN)/tripwire
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.10 -p tripwire_client  # Airflow environments run 3.10 too
	$(BIN)/mypy docs/gen
	$(BIN)/lint-imports  # the layers, as contracts in pyproject.toml

# The docs site; --strict turns a broken link or a missing page into a failure. MkDocs is
# pinned below 2 (pyproject.toml), which is what the plugins' start-up notices warn about.
docs: $(BIN)/tripwire
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --quiet

test: $(BIN)/tripwire $(PREFECT_VENV)/bin/prefect $(AIRFLOW_VENV)/bin/airflow lint docs
	$(BIN)/pytest

format: $(BIN)/tripwire
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (bench/, not part of the engine). `make bench-sla ARGS="--keys 1000"` passes
# options on; `python -m bench.sla --help` lists them.
.PHONY: bench bench-ingest bench-triggers bench-worker bench-actions bench-sla bench-scale bench-ui \
	bench-alerts bench-compare-prefect bench-store bench-memory

bench: bench-ingest

bench-ingest: $(BIN)/tripwire
	$(BIN)/python -m bench.ingest $(ARGS)

bench-triggers: $(BIN)/tripwire
	$(BIN)/python -m bench.triggers $(ARGS)

bench-worker: $(BIN)/tripwire
	$(BIN)/python -m bench.worker $(ARGS)

bench-actions: $(BIN)/tripwire
	$(BIN)/python -m bench.actions $(ARGS)

bench-sla: $(BIN)/tripwire
	$(BIN)/python -m bench.sla $(ARGS)

bench-scale: $(BIN)/tripwire
	$(BIN)/python -m bench.scale $(ARGS)

# SQLite by default; `make bench-memory ARGS="--postgres postgresql://postgres@HOST/DB"` runs it
# on a PostgreSQL database created and dropped for the run (about a minute either way).
bench-memory: $(BIN)/tripwire
	$(BIN)/python -m bench.memory $(ARGS)

# 20 minutes of event time on a moved clock (4 minutes on SQLite), then the worker's CPU
# with alerts on and off (8 more): `make bench-alerts ARGS="--database-url postgresql://..."`.
bench-alerts: $(BIN)/tripwire
	$(BIN)/python -m bench.alerts $(ARGS)

# tripwire and a Prefect server side by side (needs .venv-prefect); about 25 minutes at the
# default sizes: `make bench-compare-prefect ARGS="--sizes 100x2000 --rounds 1"` is quicker.
bench-compare-prefect: $(BIN)/tripwire
	$(BIN)/python -m bench.compare_prefect $(ARGS)

# Seeding 1,000,000 events takes minutes: `make bench-ui ARGS="--reuse .tripwire/bench-ui.db"`
# seeds that file once and reuses it.
bench-ui: $(BIN)/tripwire
	$(BIN)/python -m bench.ui $(ARGS)

# PostgreSQL only; 10,000,000 events seed in about half an hour and take about 45 GB:
# `make bench-store ARGS="--events 1000000"` is quicker.
bench-store: $(BIN)/tripwire
	$(BIN)/python -m bench.store $(ARGS)

clean:
	rm -rf $(VENV) $(PREFECT_VENV) $(AIRFLOW_VENV) .tripwire site
