PYTHON ?= python
export PYTHON

.PHONY: install test test-all demo demo-full bench lint gpu-check wheelhouse

# One command from a fresh machine to a working stack; fast when it is already there.
# INSTALL_ARGS='--wheelhouse DIR' installs offline; '--keep-torch' keeps a site-provided torch.
install:
	bash tools/install.sh $(INSTALL_ARGS)

# Every wheel of the stack plus the mmcv-full source, for offline installs:
#   make wheelhouse DIR=wheels [WHEELHOUSE_ARGS='--python-version 3.12']
wheelhouse:
	@test -n "$(DIR)" || { echo "usage: make wheelhouse DIR=folder"; exit 2; }
	bash tools/make_wheelhouse.sh $(DIR) $(WHEELHOUSE_ARGS)

# GPU self-test of this machine (a reduced CPU mode where torch sees no GPU).
gpu-check: install
	$(PYTHON) tools/gpu_check.py --out work_dirs/gpu_check

test: install
	$(PYTHON) -m pytest -q

# The default suite plus the slow end-to-end tests.
test-all: install
	$(PYTHON) -m pytest -q -m ""

# Experiment 0 on CPU: synthetic data, source-only vs UDA vs UDA+BLV, the analysis table.
# make demo: seed 0 of every experiment-0 row; make demo-full: seeds 0, 1, 2 (paired intervals).
demo: install
	bash tools/demo.sh

demo-full: install
	DEMO_SEEDS=0,1,2 bash tools/demo.sh

bench: install
	$(PYTHON) tools/benchmark_blv.py
	$(PYTHON) tools/benchmark_models.py
	$(PYTHON) tools/benchmark_train.py

lint:
	$(PYTHON) -m ruff check .
