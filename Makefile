# Every target installs into a local virtual environment from the lock file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format bench bench-large lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

# First run: the sandbox, 200 users connected, two workers refreshing for a minute.
demo: install
	$(BIN)/linkvault demo

# Unit, integration (SQLite and PostgreSQL) and end-to-end tests.
test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy bench

# Repository, bulk import and encryption at 100,000 connections, beside the raw
# drivers; writes bench/results/*.json. See BENCHMARKS.md.
bench: install
	$(BIN)/python -m bench.run --size 100000 --backends sqlite,postgres

# The same at 100,000 and 1,000,000 connections, to check the scans stay flat.
bench-large: install
	$(BIN)/python -m bench.run --sizes 100000,1000000 --backends sqlite,postgres \
		--out bench/results/bench-scaling.json

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Re-pin every dependency after changing pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet --editable '.[dev]'
	$(BIN)/python -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
