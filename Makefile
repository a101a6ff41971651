# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= PASSIVE
export MKL_NUM_THREADS ?= 1
export KILN_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test test-slow bench browser clean

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/cpu.txt -e ".[dev,hf,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kiln quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/lm.py
	$(BIN)/python benchmarks/serve.py

# Debian chromium + chromedriver for tests/serve/test_dashboard_browser.py (apt-get; a no-op when
# they are there or apt-get cannot be used, and the test then skips). .ci/run calls it.
browser:
	bash scripts/install-browser.sh

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
