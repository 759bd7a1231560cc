PYTHON ?= python
export PYTHON

.PHONY: install test test-all demo bench lint

# One command from a fresh machine to a working stack; fast when it is already there.
install:
	bash tools/install.sh

test: install
	$(PYTHON) -m pytest -q

# The default suite plus the slow end-to-end tests.
test-all: install
	$(PYTHON) -m pytest -q -m ""

# Experiment 0 on CPU: synthetic data, source-only vs UDA vs UDA+BLV, the analysis table.
# DEMO_SEEDS=0,1,2 make demo runs three seeds.
demo: install
	bash tools/demo.sh

bench: install
	$(PYTHON) tools/benchmark_blv.py
	$(PYTHON) tools/benchmark_models.py
	$(PYTHON) tools/benchmark_train.py

lint:
	$(PYTHON) -m ruff check .
