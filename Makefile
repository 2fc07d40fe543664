# Two entry points for a fresh machine: `make demo` and `make test` (both create .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow install model model-conv clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mintaccel demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow

# Retrains the shipped model: the command its meta.trained_with records (tests/model_export/test_qat.py
# checks they agree). Float training repeats bit for bit only on the machine, library versions and
# CPU kernels of meta.made_with; anywhere else the weights (and accuracy) may differ slightly.
model: $(STAMP)
	$(BIN)/mintaccel train --dataset digits --hidden 128 --weights uniform:2 --membrane 2 -T 8 \
		--reset hard --leak shift:1 --threshold 1.0 --epochs 30 --batch-size 64 --lr 0.005 --seed 0 \
		--threads 1 --float-baseline --export mintaccel/models/digits-w2m2.npz

# The shipped conv model, likewise (tests/model_export/test_qat_conv.py checks its meta and predictions).
model-conv: $(STAMP)
	$(BIN)/mintaccel train --dataset digits --arch c32k3p1,p2,c64k3p1,p2,f10 --weights uniform:2 --membrane 2 -T 16 \
		--reset soft --leak shift:1 --threshold 2.0 --epochs 30 --batch-size 64 --lr 0.005 --float-init-epochs 15 \
		--seed 0 --threads 1 --float-baseline --export mintaccel/models/digits-conv-w2m2.npz

clean:
	rm -rf $(VENV) build *.egg-info
