# chatbank: two commands do all set-up on a fresh machine.
#   make up    create the virtualenv, install, run the whole system on its embedded default
#   make test  create the virtualenv with test extras, run ruff, mypy --strict and pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: up test lint typecheck pytest system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $@

up: $(STAMP)
	$(BIN)/chatbank up

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy bank_mock consent bot localchat chatbank ops tests bench

# the browser tests drive Debian's Chromium headless, with Noto for real Arabic glyphs in the
# screenshots; the load-balancer tests and the cluster benchmarks run Debian's HAProxy. Install
# them when we can (root + apt-get)
system-deps:
	@{ test -x /usr/bin/chromium && dpkg -s fonts-noto-core >/dev/null 2>&1 \
	  && test -x /usr/sbin/haproxy; } \
	  || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && apt-get install -y -qq chromium fonts-noto-core haproxy >/dev/null; } \
	  || echo "make: Chromium, Noto or HAProxy is not installed; some tests may be skipped"

pytest: $(TEST_STAMP) system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
