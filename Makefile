# Two commands for a new user: `make demo` (set up + run on the built-in tiny dataset) and
# `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch: on machines without an NVIDIA GPU pick the CPU build. Where the CPU wheel is not on the
# default index, set TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu).
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup setup-synth demo test clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(HAS_GPU),1)
	$(PIP) install -q "torch==$(TORCH_VERSION)"
else
	$(PIP) install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
endif
	$(PIP) install -q -e ".[dev]"
	# LPIPS linear-layer weights ship inside the lpips wheel; the package itself needs torchvision,
	# so it is installed without dependencies and only its weight file is read.
	$(PIP) install -q --no-deps "lpips==0.1.4"
	# The reference CPBD implementation, for the agreement test only (it no longer imports as is).
	$(PIP) install -q --no-deps "cpbd==1.0.7"
	touch $@

# Synthetic data generation (Blender as a module, 374 MB, and the headless MakeHuman core).
setup-synth: setup
	$(PIP) install -q -e ".[synth]"
	$(PIP) install -q --no-deps "makehuman-mcp==0.1.3"

demo: setup
	$(VENV)/bin/nha-bench run --methods headmodel,nha --dataset tiny --preset tiny \
		--runs-dir runs/demo --results runs/demo/results.jsonl
	$(VENV)/bin/nha-bench table --results runs/demo/results.jsonl --out runs/demo/tables

test: setup
	$(PY) -m pytest -q

clean-demo:
	rm -rf runs/demo
