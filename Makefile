# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= PASSIVE
export MKL_NUM_THREADS ?= 1
export KILN_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test test-slow fuzz bench browser clean

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/cpu.txt -e ".[dev,hf,ray,deploy]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kiln quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The fuzz suite with many more examples (tests/fuzz; KILN_FUZZ_EXAMPLES per test, counts in benchmarks/results/fuzz.json).
fuzz: $(STAMP)
	KILN_FUZZ=fuzz KILN_FUZZ_REPORT=benchmarks/results/fuzz.json $(BIN)/python -m pytest tests/fuzz -q

# Every benchmark at its default size (long: an hour or more on 2 cores); each prints a table and
# writes JSON under benchmarks/results/. Run one alone with `.venv/bin/python benchmarks/NAME.py --help`.
bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/lm.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/tune.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/compress.py --work runs/bench-compress
	$(BIN)/python benchmarks/export.py --work runs/bench-compress
	$(BIN)/python benchmarks/explain.py --work runs/bench-compress
	$(BIN)/python benchmarks/audio.py --parts extract,epoch,train,loso
	$(BIN)/python benchmarks/hf_frozen.py
	$(BIN)/python benchmarks/soak.py
	$(BIN)/python benchmarks/text.py --tasks sst2,sms --sizes 2400,6700,all --seeds 0,1,2

# Debian chromium + chromedriver for tests/serve/test_dashboard_browser.py (apt-get; a no-op when
# they are there or apt-get cannot be used, and the test then skips). .ci/run calls it.
browser:
	bash scripts/install-browser.sh

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
