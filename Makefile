# Trailmark: `make run` serves the app with demo data; `make test` runs the whole suite.
# Both start embedded PostgreSQL + pgvector and Redis unless DATABASE_URL / CELERY_BROKER_URL are set.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test install lint bench bench-deps clean manage

run: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local HF_HUB_OFFLINE=1 $(PY) -m config.embedded run

test: $(STAMP).test $(CHROMIUM)
	HF_HUB_OFFLINE=1 TRAILMARK_CHROMIUM=$(CHROMIUM) $(PY) -m config.embedded exec --throwaway -- $(PY) -m pytest $(PYTEST_ARGS)

# manage.py against the services of a running `make run` (or its data, started for the
# command), e.g. make manage ARGS="ledger verify"
manage: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local HF_HUB_OFFLINE=1 $(PY) -m config.embedded exec -- $(PY) manage.py $(ARGS)

# The browser tests drive Debian's Chromium; installed here when missing (root or sudo).
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

lint: $(STAMP).test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	TRAILMARK_STATE_DIR=$$(mktemp -d) $(VENV)/bin/mypy

bench: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local HF_HUB_OFFLINE=1 \
		$(PY) -m config.embedded exec --throwaway -- $(PY) bench/ingest.py

# The peers of the benches (Kronfluence without torchvision: see pyproject.toml), and the
# Debian packages whose English text bench/spans.py indexes.
bench-deps: $(STAMP)
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3.11-doc linux-doc-6.1 perl-doc dict-gcide
	$(PY) -m pip install --quiet -e '.[bench]' --config-settings editable_mode=compat
	$(PY) -m pip install --quiet --no-deps 'kronfluence==1.0.1'

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

$(STAMP).test: pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache
