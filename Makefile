# Keel: the entry points people type. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= dev
# uv from PATH, else a private copy bootstrapped into .tools/ (a fresh machine has only Python + make).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.tools/bin/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Keel needs Python >= 3.11; found " + sys.version.split()[0])'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.PHONY: venv
venv: $(UV) ## create/refresh .venv exactly from uv.lock
	$(UV) sync --frozen

.PHONY: run
run: venv ## run the API locally: SQLite + in-process broker, http://127.0.0.1:8000
	APP_ENV=local $(UV) run --frozen keel serve

.PHONY: test
test: venv ## unit + service tests (starts throwaway PostgreSQL/Redis/MariaDB itself)
	$(UV) run --frozen pytest -m "not integration"

.PHONY: lint
lint: venv ## ruff format check, ruff lint, mypy --strict
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen mypy

.PHONY: fmt
fmt: venv ## format and auto-fix
	$(UV) run --frozen ruff format src tests bench
	$(UV) run --frozen ruff check --fix src tests bench

.PHONY: bench
bench: venv ## benchmarks (HTTP stack, config, secrets, jobs, auth); figures on stdout
	$(UV) run --frozen python -m bench

# --- secrets ---
.PHONY: secrets-init secrets-edit
secrets-init: venv ## new age key (outside the repo for dev/prod), .sops.yaml rule, secrets/ENV.yaml
	$(UV) run --frozen keel secrets init $(ENV)

secrets-edit: venv ## edit secrets/ENV.yaml in EDITOR: validated, re-encrypted, temp file shredded
	$(UV) run --frozen keel secrets edit $(ENV)

# --- nix ---
.PHONY: image image-gpu check-nix
image: ## build the OCI image with Nix (nix build .#image) and docker load it as keel:latest
	nix/build-image.sh image

image-gpu: ## the NVIDIA variant with Nix (nix build .#image-gpu), loaded as keel:gpu
	nix/build-image.sh image-gpu

check-nix: ## offline Nix checks: parse, fromTOML uv.lock, flake.lock, image policy, contract
	nix/check-offline.sh
