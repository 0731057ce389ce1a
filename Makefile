# The two commands a new user runs: `make demo` and `make test`.
# Each does its own set-up: a .venv in the project root with the CPU build of torch,
# the package (editable) and BART where the system allows (Debian's `bart` via apt-get).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: demo test setup bart clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"

$(VENV)/.installed: setup.cfg setup.py | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,bart]"
	touch $@

bart:
	@command -v bart >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq bart >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bart >/dev/null 2>&1)) \
	      || echo "note: could not install BART; BART baselines will be skipped"; \
	  else echo "note: BART not found (install Debian's 'bart'); BART baselines will be skipped"; fi; }

setup: $(VENV)/.installed bart

demo: setup
	$(BIN)/mrirecon-vdm demo

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) results
