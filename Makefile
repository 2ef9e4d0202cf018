# cangyun: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system demo test bench lint format clean

install: system $(STAMP)

# Machine packages (mosquitto, ZBar, CJK fonts, Chromium): installed as root, else the exact
# apt-get command is printed and make stops.
system:
	@bash devtools/system-deps.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cangyun needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/cangyun demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/sync_throughput.py
	$(BIN)/python bench/ingest_cost.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/metering.py
	$(BIN)/python bench/gate.py
	$(BIN)/python bench/pda_latency.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
