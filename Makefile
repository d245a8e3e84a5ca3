# shopstream: `make local` runs the system, `make test` runs the tests.
# Both create .venv and install the pinned dependencies when they are missing or changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV ?= dev
REQUIREMENTS := requirements.txt requirements-dev.txt layers/dependencies/requirements.txt
DEPS_STAMP := $(VENV)/.deps-$(shell cat $(REQUIREMENTS) | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.installed-$(shell cat package.json package-lock.json | sha1sum | cut -c1-12)

export PYTHONPATH := $(CURDIR)/layers/shopstream/python:$(CURDIR)/functions:$(CURDIR)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: bench ops demo token help local test test-unit e2e lint simulate simulate-summary generate check-generated synth deploy diff destroy clean venv node

help:
	@echo "make local             run the whole system on this machine (Ctrl-C stops it)"
	@echo "make test              lint, types, then every test (unit, integration, infra, e2e)"
	@echo "make lint              ruff, mypy, and the workflows (actionlint, zizmor); part of make test"
	@echo "make e2e [ENV=dev]     the black-box suite: against a make local it starts, or ENV=<env> / API_URL=<url>"
	@echo "make simulate SEEDS=N  the seeded simulation over N seeds (SEED=S replays one, with its trace);"
	@echo "                       LEDGER=<file> keeps a line per seed there and carries on where it stopped"
	@echo "make simulate-summary LEDGER=<file>  what a ledger holds: seeds done and missing, violations"
	@echo "make generate          regenerate schemas/, docs/events.md, docs/openapi.json and docs/asyncapi.yaml"
	@echo "make synth ENV=dev     synthesize CloudFormation for an environment into cdk.out/"
	@echo "make deploy ENV=dev    cdk deploy every stack of an environment (needs AWS credentials)"

$(DEPS_STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.deps-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.installed-* && touch $@

venv: $(DEPS_STAMP)
node: $(NODE_STAMP)

local: venv node
	$(PY) -m local

test: venv node lint
	$(PY) -m pytest -n 2 --dist loadfile

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck -pyflakes= $(wildcard .github/workflows/*.y*ml)
	$(VENV)/bin/zizmor --offline --no-progress --quiet .github/workflows

test-unit: venv
	$(PY) -m pytest tests/unit

# The black-box suite (tests/blackbox) against a deployment: ENV=<env> (on the command line: ENV has a
# default for synth and deploy) or API_URL=<a running make local>; otherwise against a make local started for
# the run, with the other end-to-end tests (what make test runs too).
E2E_ENV := $(if $(filter command line,$(origin ENV)),$(ENV))
e2e: venv node
	SHOPSTREAM_E2E_ENV=$(E2E_ENV) SHOPSTREAM_E2E_API_URL=$(API_URL) \
		$(PY) -m pytest $(if $(or $(E2E_ENV),$(API_URL)),tests/blackbox,tests/e2e tests/blackbox)

simulate: venv
	$(PY) -m local.simulation $(if $(SEED),--seed $(SEED),--seeds $(or $(SEEDS),200) $(if $(FIRST),--first $(FIRST)) \
		$(if $(LEDGER),--ledger $(LEDGER))) $(if $(TRACE),--trace) $(if $(JOBS),--jobs $(JOBS))

simulate-summary: venv
	$(PY) -m local.simulation --summarise $(or $(LEDGER),$(error LEDGER=<file> names the ledger to summarise))

generate: venv
	$(PY) -m tools.generate

check-generated: venv
	$(PY) -m tools.generate --check

synth: venv node
	npx cdk synth --quiet -c env=$(ENV)

diff: venv node
	npx cdk diff -c env=$(ENV)

deploy: venv node
	npx cdk deploy --all -c env=$(ENV) --require-approval broadening

destroy: venv node
	npx cdk destroy --all -c env=$(ENV)

clean:
	rm -rf cdk.out .local .pytest_cache

demo: venv
	$(PY) -m local.demo

token: venv
	@$(PY) -m local.auth --user $(or $(USER_ID),$(USER)) $(if $(ADMIN),--admin)

ops: venv
	$(PY) -m tools.ops $(ARGS)

bench: venv
	$(PY) -m bench.run
