# Both entry points make their own virtualenv (.venv) so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2

.PHONY: demo test venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/overmerge demo

test: venv
	$(PY) -m pytest -n $(JOBS) -q

bench: venv
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
