# Two commands matter: `make demo` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# pyenv machines keep 3.13 beside the default interpreter; Lambda runs python3.13.
export PYENV_VERSION ?= 3.11.7:3.13.0
export SAM_CLI_TELEMETRY := 0
PYTHON_FOR_VENV ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)
STAMP := $(VENV)/.installed
# checkov pins packages (boto3, packaging, networkx) the dev environment cannot take: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: help venv lint typecheck test unit integration template-lint security-scan build demo local bench model clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	# The layer's package is importable everywhere in the venv, as /opt/python is in Lambda.
	echo "$(CURDIR)/layers/common/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/cadence-layer.pth"
	# The `cadence` console script (cadence_cli/), editable; setuptools comes from requirements-dev.txt.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)  ## create the virtual environment (python3.13) with every dev dependency

lint: $(STAMP)  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict on the layer package (settings in pyproject.toml)
	cd layers/common/python && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml cadence

template-lint: $(STAMP)  ## cfn-lint and sam validate --lint on template.yaml
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template-file template.yaml --region us-east-1

# Unit tests spread over the cores (pytest-xdist). Integration tests run in a pytest of their own: a worker that
# had served a local stack (the process's in-process moto, its threads) must not go on to run unit tests' mock_aws,
# and pytest-xdist 3.8's --dist loadgroup, which could keep them apart, does not group under pytest 9.2.
PYTEST_WORKERS ?= auto

unit: $(STAMP)  ## unit tests (moto in-process, no network), on every core
	$(BIN)/pytest tests/unit -n $(PYTEST_WORKERS)

integration: $(STAMP)  ## integration tests against a local stack each test session starts itself
	$(BIN)/pytest tests/integration

$(CHECKOV_STAMP): requirements-checkov.txt constraints-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_FOR_VENV) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt -c constraints-checkov.txt
	touch $(CHECKOV_STAMP)

security-scan: $(STAMP) $(CHECKOV_STAMP)  ## checkov on template.yaml and its SAM translation; fails on a finding without a reason
	$(PY) -m infra.security_scan --checkov $(CHECKOV_VENV)/bin/checkov

test: lint typecheck template-lint security-scan unit integration  ## everything CI runs: lint, template and security checks, unit and integration tests

build: $(STAMP)  ## sam build (python3.13, arm64, no Docker)
	$(BIN)/sam build --template-file template.yaml

build/model/manifest.json: $(STAMP)
	$(PY) -m model_build demo-model --out build/model

build/intent-model/manifest.json: $(STAMP) model_build/data/intent_replies.csv
	$(PY) -m model_build intent --out build/intent-model

model: build/model/manifest.json  ## train and export the demo model on generated data into build/model

local: build/model/manifest.json build/intent-model/manifest.json  ## run the local stack on 127.0.0.1:4566 (demo and reply models published) until Ctrl-C
	$(PY) -m infra.local_stack --port 4566 --model-dir build/model --model-dir build/intent-model

demo: $(STAMP)  ## build the model, start the local stack, run the whole pipeline, print a summary
	$(PY) -m infra.demo --report build/demo-report.json

bench: $(STAMP)  ## benchmarks; prints a table and writes build/bench.json
	$(PY) -m infra.bench --out build/bench.json

clean:  ## remove build output (keeps the venv)
	rm -rf build .aws-sam .pytest_cache
