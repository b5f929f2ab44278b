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
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test,lint,tune]"
	touch $(STAMP)

install: $(STAMP)

# runs/demo is the demo's own folder: each `make demo` starts it afresh.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/ganforge run --recipe mnist --out runs/demo

# Two test processes (pytest-xdist), each taking whole test files, so a file's tests still share its
# module fixtures (a PostgreSQL cluster, trained runs). Most of the suite's time is subprocesses
# starting and training, which two processes overlap: 31 -> 15-18 minutes on 2 cores (AVX2).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)

# the edit loop: everything but the tests marked slow (subprocesses, torchrun, long runs)
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check ganforge tests benchmarks scripts tools && $(BIN)/mypy ganforge

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only

clean:
	rm -rf build *.egg-info ganforge/_C*.so

# plugins/ganforge-fidelity's tests, in .venv-fidelity (torch 2.14.1 + torchvision 0.29.1 +
# torch-fidelity 0.4.0; tools/fidelity_venv.sh says why a second venv). ganforge is installed
# there as a copy, so a change to it reinstalls. bin/pytest, not `python -m pytest`: the
# checkout's ganforge (whose _C is .venv's) must not shadow the installed one.
FIDELITY_VENV  ?= .venv-fidelity
FIDELITY_STAMP := $(FIDELITY_VENV)/.fidelity-installed
.PHONY: test-fidelity

$(FIDELITY_STAMP): tools/fidelity_venv.sh setup.py pyproject.toml $(wildcard plugins/ganforge-fidelity/*.py plugins/ganforge-fidelity/*.toml) \
		$(shell find ganforge -name '*.py' -o -name '*.toml' -o -name '*.json' -o -name '*.safetensors')
	PYTHON=$(PYTHON) VENV=$(FIDELITY_VENV) tools/fidelity_venv.sh

test-fidelity: $(FIDELITY_STAMP)
	GANFORGE_FIDELITY_REQUIRED=1 $(FIDELITY_VENV)/bin/pytest -q -p no:cacheprovider plugins/ganforge-fidelity/tests
