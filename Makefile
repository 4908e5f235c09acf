# Two commands a newcomer needs: `make demo` and `make test`. Both bootstrap the virtual environment.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo_out
DEMO_ARGS ?=

.PHONY: venv demo demo-quick test bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/actbert demo --out $(DEMO_OUT) $(DEMO_ARGS)

demo-quick: $(STAMP)
	$(VENV)/bin/actbert demo --quick --out $(DEMO_OUT)-quick

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/actbert bench train-step --preset tiny --batch 8
	$(VENV)/bin/actbert bench train-step --preset base --batch 8

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-quick
