# Two entry points for a fresh clone: `make demo` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/simlog run scenarios/split_brain.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow" || [ $$? -eq 5 ]

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/sim_speed.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
