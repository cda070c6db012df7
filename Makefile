# The two commands a newcomer needs: `make run` and `make test`; `make test-fast` is the
# inner loop (everything but the tests marked slow: processes, kills, browsers, the wheel).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/wicket --log-format text demo

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check --select F gateway portal tests bench
	bash scripts/install-browser.sh && $(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check --select F gateway portal tests bench
	$(BIN)/python -m pytest -m "not slow"

# The full benchmark run (long: see bench/README.md); bench/run --quick is the short one.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	bench/setup.sh
	bench/run

clean:
	rm -rf $(VENV) var .pytest_cache
