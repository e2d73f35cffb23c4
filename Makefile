# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: install demo test test-fast clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install  ## offline demo of the whole pipeline (data + tiny model made locally)
	$(BIN)/python -m training_dynamics.demo --output_dir $(DEMO_DIR)

test: install  ## the test suite
	$(BIN)/python -m pytest -q tests

test-fast: install  ## the unit tests only: no training, no notebook, no browser (under a minute)
	$(BIN)/python -m pytest -q -m "not slow" tests

clean:
	rm -rf $(DEMO_DIR) dy_log/*/ .pytest_cache
