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

demo: install
	@echo "make demo arrives with the experiments issue (#7): see README." && exit 1

bench: install
	$(PYTHON) tools/benchmark_blv.py

lint:
	$(PYTHON) -m ruff check .
