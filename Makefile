# ircore: `make run` starts a local install, `make test` runs the whole suite.
# GNU make on Debian (or any Unix with Python 3.11+). See README.md.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall only when the dependencies change. `make run` installs only what it runs
# (about half the time of the test extra, which adds pytest, playwright, ...).
RUN_STAMP := $(VENV)/.ircore-installed-run
TEST_STAMP := $(VENV)/.ircore-installed-test
PIP := $(PY) -m pip install --disable-pip-version-check -q

# `make run`
PORT ?= 8000
# The built-in SMTP listener (Procfile `smtp`); change it too when running two installs.
SMTP_PORT ?= $(or $(INBOUND_SMTP_PORT),2525)
RUN_PUBLIC_URL := $(or $(PUBLIC_URL),http://localhost:$(PORT))
# IRCORE_DEMO=0 make run: only the admin user, no demo teams/services/integrations.
IRCORE_DEMO ?= 1

# `make test`: extra pytest arguments, e.g. `make test PYTEST_ARGS="-k dedup -x"`.
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: help install run test bench lint check-migrations

help:
	@echo "make run      install into $(VENV), migrate, load demo data, start web, worker, clock and"
	@echo "              the SMTP listener (Ctrl-C stops them all)"
	@echo "make test     run the whole test suite (SQLite, or DATABASE_URL=postgres://...)"
	@echo "make bench    benchmarks (bench/run.py)"
	@echo "make lint     ruff"
	@echo "make check-migrations   fail if a model change has no migration"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "ircore needs Python 3.11 or newer ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; exit 1; }
	$(PYTHON) -m venv $(VENV) \
	  || { echo "Could not create $(VENV); on Debian/Ubuntu: apt-get install python3-venv"; exit 1; }

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PIP) -e .
	@touch $@

# The test extra includes everything `make run` needs.
$(TEST_STAMP): pyproject.toml | $(PY)
	$(PIP) -e ".[test]"
	@touch $@ $(RUN_STAMP)

install: $(TEST_STAMP)

# One shell so the exports hold for every step. ircore_local_setup migrates, collects
# static files, loads the demo data and prints the banner; `exec` then makes honcho
# the foreground process, so Ctrl-C reaches it and it stops every process.
run: $(RUN_STAMP)
	@set -e; \
	export IRCORE_LOCAL_RUN=1 PUBLIC_URL="$(RUN_PUBLIC_URL)" PORT="$(PORT)" \
	       INBOUND_SMTP_PORT="$(SMTP_PORT)" PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	$(PY) manage.py ircore_local_setup $(if $(filter 0 no false,$(IRCORE_DEMO)),--no-demo); \
	exec honcho start -f Procfile

test: $(TEST_STAMP)
	@IRCORE_LOCAL_RUN=1 $(PY) manage.py collectstatic --noinput -v0
	IRCORE_LOCAL_RUN=1 $(VENV)/bin/pytest $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS)) $(PYTEST_ARGS)

# Every benchmark, one after the other; each prints its table (bench/run.py also writes
# bench/results/latest.md). Run one alone with e.g. `.venv/bin/python bench/metrics.py`.
BENCHES := run schedules metrics statuspage_bench escalation inbound
bench: $(TEST_STAMP)
	@set -e; for b in $(BENCHES); do echo "==> bench/$$b.py"; $(PY) bench/$$b.py; done

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

check-migrations: $(RUN_STAMP)
	IRCORE_LOCAL_RUN=1 $(PY) manage.py makemigrations --check --dry-run
