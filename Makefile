# Closeloop — the two commands are `make run` and `make test`; everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test check lint types bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## run: set up, migrate, seed the demo organization when the database is empty, serve on :8000 with a worker
run: install
	$(BIN)/closeloop migrate
	$(BIN)/closeloop demo --if-empty
	$(BIN)/closeloop serve --with-worker

## test: set up, check style and types, run the whole suite (SQLite, and PostgreSQL when configured)
test: install check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: lint types

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/lint-imports

types: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache artifacts
