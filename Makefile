# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DIR ?= demo_output
# Without an NVIDIA GPU, torch's CPU build (a few hundred MB) is installed first: PyPI's Linux torch brings
# several GB of CUDA libraries. `make install TORCH_INDEX=` keeps pip's default index; another index works
# too (e.g. https://download.pytorch.org/whl/cu126).
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)

.PHONY: install demo test test-fast notebook clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/pip install -q --timeout 10 --retries 1 --index-url $(TORCH_INDEX) \
		"$$(grep -E '^torch\b' requirements.txt)" || echo "note: no torch from $(TORCH_INDEX); pip's default index is used")
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install  ## offline demo of the whole pipeline (data + tiny models made locally)
	$(BIN)/training-dynamics demo --output_dir $(DEMO_DIR)

test: install  ## the whole test suite
	$(BIN)/python -m pytest -q tests

test-fast: install  ## the edit-test loop: everything but the slow tests (under a minute)
	$(BIN)/python -m pytest -q -m "not slow" tests

notebook: install  ## re-execute plot_demo.ipynb in place (its outputs are committed)
	TD_DEMO_DIR=$(DEMO_DIR) $(BIN)/python -c "import nbformat; from nbclient import NotebookClient; \
	nb = nbformat.read('plot_demo.ipynb', 4); NotebookClient(nb, timeout=900, kernel_name='python3').execute(); \
	nbformat.write(nb, 'plot_demo.ipynb')"

clean:
	rm -rf $(DEMO_DIR) dy_log/*/ .pytest_cache
