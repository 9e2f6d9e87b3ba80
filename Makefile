# Every target builds and uses ./.venv; nothing is assumed installed but python3.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint fmt demo bench chaos clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check zsync tests examples
	$(BIN)/ruff format --check zsync tests examples
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format zsync tests examples
	$(BIN)/ruff check --fix zsync tests examples

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

# Every chaos suite, the full (slow) versions and the samples `make test` also runs; ends
# with the summary tests/chaos/conftest.py prints (kills, faults by kind, duplicates, losses).
chaos: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/chaos

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
