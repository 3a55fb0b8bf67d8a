# Trailmark: `make run` serves the app with demo data; `make test` runs the whole suite.
# Both start embedded PostgreSQL + pgvector and Redis unless DATABASE_URL / CELERY_BROKER_URL are set.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench clean

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m config.embedded run

test: $(STAMP).test
	HF_HUB_OFFLINE=1 $(PY) -m config.embedded exec --throwaway -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP).test
	$(VENV)/bin/ruff check .
	TRAILMARK_STATE_DIR=$$(mktemp -d) $(VENV)/bin/mypy

bench: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.local HF_HUB_OFFLINE=1 \
		$(PY) -m config.embedded exec --throwaway -- $(PY) bench/ingest.py

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
