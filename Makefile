# Every target builds and uses ./.venv; nothing is assumed installed but python3.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint fmt demo bench chaos meltano meltano-env floors clean

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
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format zsync tests examples
	$(BIN)/ruff check --fix zsync tests examples

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# zsync installed with its declared dependency floors (and releases that once broke it), each
# running the demo; CI runs it before make test.
floors:
	bash .ci/floors

bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

# Every chaos suite, the full (slow) versions and the samples `make test` also runs; ends
# with the summary tests/chaos/conftest.py prints (kills, faults by kind, duplicates, losses).
chaos: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/chaos

# Real Meltano (PyPI) with the example project's plugins installed (tap-jsonl from PyPI,
# target-zentrik from this checkout), cached in .cache/meltano and made again when the
# example project or zsync's dependencies change. tests/meltano calls this target itself.
MELTANO_VERSION := 4.4.1
MELTANO_CACHE := .cache/meltano
MELTANO_STAMP := $(MELTANO_CACHE)/.installed

meltano-env: $(MELTANO_STAMP)

$(MELTANO_STAMP): $(STAMP) examples/meltano/meltano.yml
	rm -rf $(MELTANO_CACHE)
	$(PY) -m venv $(MELTANO_CACHE)/venv
	$(MELTANO_CACHE)/venv/bin/pip install --quiet 'meltano==$(MELTANO_VERSION)'
	MELTANO_SYS_DIR_ROOT=$(abspath $(MELTANO_CACHE))/sys MELTANO_SEND_ANONYMOUS_USAGE_STATS=false \
		$(MELTANO_CACHE)/venv/bin/meltano --cwd examples/meltano install
	touch $@

# meltano run tap-jsonl target-zentrik end to end against the emulator.
meltano: $(MELTANO_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/meltano

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .cache
