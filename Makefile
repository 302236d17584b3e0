# Cirrus: `make dev` serves the API locally; `make test` installs everything and checks it all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# pyenv (as on the project's machines) then offers python3.12 too, for the template tools and
# `sam build` of the python3.12 functions; harmless where pyenv is absent.
export PYENV_VERSION ?= 3.11.7:3.12.1

PYTHON ?= python3
TOOLS_PYTHON ?= $(shell command -v python3.12 >/dev/null 2>&1 && echo python3.12 || echo $(PYTHON))
VENV := .venv
TOOLS := .venv-tools
PORT ?= 3000

.PHONY: help install dev test lint typecheck unit integration iac bench validate clean

help:
	@echo "make dev    - run the local stack serving the OpenAI API on 127.0.0.1:$(PORT)"
	@echo "make test   - install everything from scratch if needed, then lint, types, all tests"
	@echo "make bench  - benchmarks (ratios measured side by side; results in bench/results/)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[api,model,dev]'
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(TOOLS_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q -r requirements-tools.txt
	touch $@

install: $(VENV)/.installed $(TOOLS)/.installed

dev: $(VENV)/.installed
	$(VENV)/bin/cirrus dev --port $(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit

integration: $(VENV)/.installed
	$(VENV)/bin/pytest tests/integration

iac: install
	$(VENV)/bin/pytest tests/iac

test: install lint typecheck
	$(VENV)/bin/pytest

bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench

validate: $(TOOLS)/.installed
	$(TOOLS)/bin/sam validate --lint --region us-east-1

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .mypy_cache .ruff_cache .pytest_cache
