# Two commands do all set-up on a fresh machine (Python 3.11, no GPU):
#   make run    create .venv, install, fetch + verify MNIST, serve the app
#   make test   the same set-up plus test tools and Chromium, then the whole suite
#   make dev    like make run, but reloads when you save a file of the project (for whoever edits the code)
# Both are idempotent: stamps make the second run skip what is done.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
PYTEST_ARGS ?=
# HEADLESS=1: no browser window (how the tests and benchmarks serve the app; nothing else differs)
HEADLESS ?=

.PHONY: run dev test setup setup-dev data browser bench lint clean-cache screenshots

# The one launch of the app (mechmnistic/serve.py): its settings are .streamlit/config.toml's.
run: setup data
	$(PY) -m mechmnistic.serve --port $(PORT) $(if $(HEADLESS),--headless)

dev: setup data
	$(PY) -m mechmnistic.serve --port $(PORT) $(if $(HEADLESS),--headless) --dev

test: setup-dev data browser
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.runtime-installed
setup-dev: $(VENV)/.dev-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: $(VENV)/bin/python requirements.txt pyproject.toml
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Verifies the four files every time (about a second); fetches only when missing.
data: setup
	$(PY) -m mechmnistic fetch-data

# Browser tests drive Debian's Chromium (never `playwright install`: it downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The README's pictures, taken by the browser test that takes them on every run of the suite.
screenshots: setup-dev data browser
	MECHMNISTIC_SCREENSHOTS=docs/images $(PY) -m pytest tests/app/test_screenshots.py -q

bench: setup-dev data
	$(PY) -m bench

lint: setup-dev
	$(VENV)/bin/ruff check mechmnistic ui app.py app_pages tests bench harness

clean-cache:
	rm -rf cache
