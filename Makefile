# The README's commands. `make demo` and `make test` work from a fresh clone: they create the
# virtual environment, install vqkit with the versions pinned in requirements/lock.txt, install
# the Debian data packages the tests read (as root, or through sudo; a warning names any whose
# version differs from requirements/debian-lock.txt), and run. `make lock` rewrites both lock
# files from the working environment (after a deliberate upgrade); `make quick-results`
# regenerates results/quick/ (the committed quick runs `vqkit reproduce NAME --verify` checks)
# and must run from a clean tree.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATA_STAMP := $(VENV)/.data-stamp
EXTRAS ?= all
# Torch/OpenMP threads of the demo and the tests. 1, as every vqkit --threads defaults to: on a
# busy shared machine 2 threads stalled `make demo` for 65 minutes (1 thread: 112 s, same
# numbers). `make demo THREADS=2` on an idle machine.
THREADS ?= 1

LOCK := requirements/lock.txt
DEBIAN_LOCK := requirements/debian-lock.txt

.PHONY: setup data demo test test-slow lint bench report lock quick-results clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

$(DATA_STAMP): debian-packages.txt $(DEBIAN_LOCK)
	bash scripts/install-debian-packages.sh debian-packages.txt $(DEBIAN_LOCK)
	touch $(DATA_STAMP)

data: $(DATA_STAMP)

demo: setup
	$(VENV)/bin/vqkit demo --threads $(THREADS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts

test: setup data lint
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest

test-slow: setup data
	OMP_NUM_THREADS=$(THREADS) $(PY) -m pytest -m slow

bench: setup
	$(PY) benchmarks/layer_speed.py

report: setup
	$(VENV)/bin/vqkit report

lock: setup data
	$(PY) scripts/lock.py

quick-results: setup data
	OMP_NUM_THREADS=1 $(PY) scripts/quick_results.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
