# netemu — developer entry points. `make run` and `make test` are all a fresh
# Debian machine needs (as root): each installs what it needs first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := iproute2 ethtool golang-go tshark tcpdump chromium
SCENARIO ?= scenarios/close_wait.yaml
PYTEST_ARGS ?=

.PHONY: install debs test run bench soak lint typecheck clean

install: $(STAMP) debs
	@# `sudo netemu …` from any shell, as the README's usage line reads.
	@if [ "$$(id -u)" = 0 ] && [ -w /usr/local/bin ]; then \
		ln -sf "$(CURDIR)/$(BIN)/netemu" /usr/local/bin/netemu; fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Debian packages the lab and the tests need; a no-op when all are present.
debs:
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "make: missing Debian packages:$$missing (run as root to install)"; exit 0; fi; \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: install
	$(BIN)/ruff check netemu tests
	$(BIN)/ruff format --check netemu tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 -m "not timing" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q -m timing $(PYTEST_ARGS)

run: install
	$(BIN)/netemu run $(SCENARIO)

bench: install
	$(BIN)/netemu bench all

# Long runs kept out of `make test`: 10 MiB each way through harsh impairments, and
# the codec fuzz (400k frames) and hostile segments (380k, every TCP state) at full size.
soak: install
	NETEMU_SOAK=1 $(BIN)/python -m pytest -q tests/realwire/test_impaired.py \
		tests/scenario/test_signal_trials.py tests/wire/test_fuzz.py \
		tests/tcp/test_hostile_segments.py

lint: install
	$(BIN)/ruff check netemu tests
	$(BIN)/ruff format --check netemu tests

# mypy with the settings in pyproject.toml: all of netemu/, netemu/tcp and netemu/wire strictly.
typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis runs build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
