# Two commands a newcomer needs: `make demo` and `make test`. Both bootstrap the virtual environment.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo_out
DEMO_ARGS ?=

.PHONY: venv browser demo demo-quick test bench clean

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

# The browser tests of `actbert serve` drive Debian's chromium (Playwright only talks to it; nothing downloads a
# browser build). Installed with apt when missing; without root/apt the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "make: installing Debian's chromium for the browser tests (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium fonts-dejavu-core >/dev/null ) || \
	  echo "make: WARNING: could not install chromium; the browser tests will be skipped"; }

test: $(STAMP) browser
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/actbert bench train-step --preset tiny --batch 8
	$(VENV)/bin/actbert bench train-step --preset base --batch 8

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-quick
