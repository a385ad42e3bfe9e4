# Two commands: `make run` and `make test`. Both set everything up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
SYSSTAMP := $(VENV)/.stamp-sysdeps
export GRADIO_ANALYTICS_ENABLED := False
export PYTHONDONTWRITEBYTECODE := 1
# No pip cache: the CUDA torch wheels alone would keep several GB twice on a CI disk.
export PIP_NO_CACHE_DIR := 1

.PHONY: run test lint typecheck pytest sysdeps venv tools baseline clean

run: venv
	$(VENV)/bin/inspection serve --demo

test: sysdeps venv tools lint typecheck pytest

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt tools/pip-install
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"' \
	  || { echo "ERROR: Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	tools/pip-install $(PY) --upgrade pip
	# torch first, pinned, with pip: it comes from local disk (uv/poetry would download ~3 GB).
	tools/pip-install $(PY) torch==2.14.1 torchvision==0.29.1
	# constraints.txt: the versions the suite last passed with, so a new release upstream never changes a build.
	tools/pip-install $(PY) -e '.[dev]' -c constraints.txt
	touch $@

# The users' own tools, each in an environment of its own (their pins clash with ours): the export tests
# start a real Label Studio server and load exports with real FiftyOne (its bundled mongod).
TOOLS := .venv-tools
tools: $(TOOLS)/.stamp-labelstudio $(TOOLS)/.stamp-fiftyone

# tools/NAME.lock pins every package of that environment (`pip freeze` of one that passed).
$(TOOLS)/.stamp-%: tools/%.txt tools/%.lock tools/pip-install
	test -x $(TOOLS)/$*/bin/python || $(PYTHON) -m venv $(TOOLS)/$*
	tools/pip-install $(TOOLS)/$*/bin/python --upgrade pip
	tools/pip-install $(TOOLS)/$*/bin/python -r tools/$*.txt -c tools/$*.lock
	touch $@

# System packages: Chromium for the browser tests, PostgreSQL 15 for the multi-station store tests,
# Prometheus for `promtool check metrics` on /metrics.
sysdeps: $(SYSSTAMP)

$(SYSSTAMP):
	@if command -v chromium >/dev/null && command -v pg_virtualenv >/dev/null && command -v promtool >/dev/null && test -x /usr/lib/postgresql/15/bin/initdb; then \
	  echo "system packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql-15 postgresql-common prometheus >/dev/null; \
	else \
	  echo "ERROR: need Debian packages 'chromium', 'postgresql-15' and 'prometheus' (for promtool) (run as root on Debian, or install them: sudo apt-get install chromium postgresql-15 prometheus)"; exit 1; \
	fi
	@mkdir -p $(VENV) && touch $@

lint: venv
	$(VENV)/bin/ruff check inspection ui tests scripts

typecheck: venv
	$(VENV)/bin/mypy inspection ui scripts

# pg_virtualenv starts a throwaway PostgreSQL 15 cluster (PG* variables set) for the duration of the suite;
# -t keeps its configuration in a temporary folder, so a left-over or concurrent cluster never clashes.
pytest: venv sysdeps tools
	pg_virtualenv -t -v 15 $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

baseline: venv
	$(PY) scripts/train_baseline.py

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
