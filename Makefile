# Two commands on a fresh machine: `make run` (demo on SQLite) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TUKI_ENV ?= demo

.PHONY: run test install install-test lint typecheck migrate demo bench bench-render screenshots clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test,dev]'

run: install
	$(BIN)/tuki migrate
	$(BIN)/tuki demo
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C stops)."
	$(BIN)/tuki serve

test: install-test
	TUKI_ENV=test $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests

typecheck: install-test
	$(BIN)/mypy app

migrate: install
	$(BIN)/tuki migrate

demo: install
	$(BIN)/tuki migrate
	$(BIN)/tuki demo

# PostgreSQL scenarios of benchmarks/README.md (needs wrk; TUKI_BENCH_DATABASE_URL).
bench: install-test
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# QUALITY.md 4.3 B render micro-benchmark (pytest-benchmark, SQLite in a temp dir; not in make test).
bench-render: install-test
	TUKI_ENV=test $(BIN)/python -m pytest benchmarks/test_render.py -p no:cacheprovider --benchmark-only $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var

# Refresh docs/screenshots (the README's pictures) from the demo clinic in Chromium.
screenshots: install-test
	TUKI_ENV=test TUKI_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/e2e/test_screenshots.py -q
