# make demo / make test set everything up themselves: a .venv with the pinned CPU torch and dlx.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
DLX := $(VENV)/bin/dlx
STAMP := $(VENV)/.dlx-installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,track,parquet]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(DLX) train

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers; a file's tests share one (SLURM, module fixtures)

lint: $(STAMP)
	$(VENV)/bin/ruff check dlx tests

bench: $(STAMP)
	$(DLX) bench

clean:
	rm -rf $(VENV) build dist *.egg-info
