# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both build the virtual environment at .venv through `make install`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install test-unit test-infra demo test test-pg15 soak mutants lint format typecheck docs synth deploy bench clean db-stop

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z0-9_-]+):.*## (.*)/  \1\t\2/' | expand -t 14

install: $(STAMP)  ## the virtual environment at .venv (rebuilt when pyproject.toml changes)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install  ## the main job: embedded Postgres, migrate, seed, simulate 8 days of schedules
	$(BIN)/jobctl demo

test: install  ## the whole suite against a real (embedded) Postgres
	$(BIN)/python -m pytest

test-unit: install  ## the unit tests: no database, no CDK, seconds
	$(BIN)/python -m pytest -q tests/unit

test-infra: install  ## the CDK app's tests (synthesised templates, bundling, stack config)
	$(BIN)/python -m pytest -q tests/infrastructure

test-pg15: install  ## the whole suite on Postgres 15 with pg_cron, then the jobs through pgbouncer (Debian packages; root)
	scripts/test-pg15

soak: install  ## the long chaos soak (several fault seeds)
	$(BIN)/python -m pytest tests/reliability --soak

mutants: install  ## the mutation suite: break what matters on purpose (tests/mutants/mutants.toml), fail if a test misses it
	$(BIN)/python -m tests.mutants

lint: install  ## ruff, and cfn-lint on the synthesized template
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m cdk.cfn_lint

format: install  ## ruff format and ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install  ## mypy over shared, functions, jobctl and cdk
	$(BIN)/mypy shared functions jobctl cdk

docs: install  ## regenerate the docs made from the registry (the README jobs table, the docs/jobs/ index)
	$(BIN)/python -m jobctl.readme

synth: install  ## cdk synth, offline (bundles with pip, no Docker); settings: CDK_ARGS="-c key=value ..."
	npm ci --no-audit --no-fund --loglevel=error && npx cdk synth --quiet $(CDK_ARGS)

deploy: install  ## cdk deploy (needs AWS credentials)
	npm ci --no-audit --no-fund --loglevel=error && npx cdk deploy --all $(CDK_ARGS)

bench: install  ## performance at 1,000,000 users (see README: Performance)
	$(BIN)/jobctl bench

db-stop: install  ## stop the embedded Postgres
	$(BIN)/jobctl db stop

clean:  ## remove the venv, cdk.out and the tools' caches
	rm -rf $(VENV) cdk.out .build .pytest_cache .ruff_cache .mypy_cache
