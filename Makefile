# Two commands for a fresh machine:  `make demo` (set up + main job)  and  `make test` (set up + tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

# torch: a CPU build from pip's local find-links when the machine has one (no multi-GB CUDA
# download; its small dependencies come from the index with the project's), else the CPU wheel
# index. Override, e.g. `make setup TORCH_INSTALL=torch` for the default CUDA build. The openvino and
# executorch extras (their exporters' tests run in `make test`) accept the torch installed first.
TORCH_INSTALL ?= --no-index --no-deps torch

# The CIFAR-10 archive beside the checkout, unless ANAS_ZOO_DATA already names one.
export ANAS_ZOO_DATA ?= $(abspath ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.xz)

.PHONY: setup demo test lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q $(TORCH_INSTALL) 2>/dev/null || $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q torch
	$(PIP) install -q -e ".[dev,openvino,executorch]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/anas-zoo demo

# One pytest-xdist worker per core (at most 4), each with one torch thread (tests/conftest.py); work stealing
# keeps both cores busy while a slow test runs.
test: setup
	$(PY) -m pytest -q -n auto --maxprocesses=4 --dist worksteal

lint: setup
	$(VENV)/bin/ruff check anas_zoo tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
