# Targets for a fresh machine: each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Both commands exit 1 because they find problems, which the demo expects; exit code 2
# (an input error) still fails it.
demo: $(STAMP)
	$(BIN)/lbguard check examples/incident/haproxy-bad.cfg \
		--traffic examples/incident/traffic.yaml || [ $$? -eq 1 ]
	$(BIN)/lbguard logs examples/incident/haproxy.log \
		--regions examples/incident/regions.csv || [ $$? -eq 1 ]

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/check_large_config.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
