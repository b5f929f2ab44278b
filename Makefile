# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv, installs torch (CPU) + ganforge, trains the default MLP GAN on MNIST
#   make test   the same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.ganforge-installed

.PHONY: demo test test-fast lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.py pyproject.toml $(wildcard csrc/*.cpp csrc/*.h csrc/*.inc csrc/cuda/*)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet setuptools wheel ninja
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test,lint]"
	touch $(STAMP)

install: $(STAMP)

# runs/demo is the demo's own folder: each `make demo` starts it afresh.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/ganforge run --recipe mnist --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the edit loop: everything but the tests marked slow (subprocesses, torchrun, long runs)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check ganforge && $(BIN)/mypy ganforge

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only

clean:
	rm -rf build *.egg-info ganforge/_C*.so
