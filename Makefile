# The two commands of the README: `make run` and `make test`. Each creates .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check bench browser clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (durable-rules does not import on 3.13)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gunicorn --config gunicorn.conf.py "service:create_app()"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/flask --app service rulesets check
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --failure-threshold warning Dockerfile

check: $(STAMP)
	$(BIN)/flask --app service rulesets check

browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

# `make bench` runs every benchmark; `make bench BENCH="engine workers"` only those. wrk (Debian package,
# bench only) adds C-client figures where it is installed: apt-get update && apt-get install -y wrk.
BENCH ?=
bench: $(STAMP)
	@command -v wrk >/dev/null || echo "note: wrk is not installed; the wrk figures will be skipped (apt-get install -y wrk)"
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-results
