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
	APP_ENV=local $(UV) run --frozen keel migrate
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
bench: venv ## benchmarks (HTTP stack, config, secrets, jobs, auth, Compose stack); figures on stdout
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

# --- compose ---
# ENV=dev|test|prod, GPU=1 adds compose.gpu.yaml. `docker compose` (v2) or `docker-compose` (v1).
GPU ?= 0
# MONITORING=1 adds configs/monitoring/compose.yaml (Prometheus + Alertmanager).
MONITORING ?= 0
COMPOSE_SH := ENV=$(ENV) GPU=$(GPU) MONITORING=$(MONITORING) containers/compose.sh
.PHONY: up down logs ps image-docker images-offline test-integration
up: ## start the stack for ENV (builds the app image when its inputs changed), wait until healthy
	$(COMPOSE_SH) up

down: ## stop the stack for ENV (ENV=test also drops its volumes)
	$(COMPOSE_SH) down

logs: ## follow the stack's logs
	$(COMPOSE_SH) logs

ps: ## list the stack's services and their health
	$(COMPOSE_SH) ps

image-docker: ## build the Containerfile image as keel:latest (offline base; BASE_IMAGE=... to change)
	containers/build.sh app

images-offline: ## build base, python, postgres, redis, nginx images from Debian packages (cached)
	containers/build.sh offline

test-integration: venv ## the real Compose stack (test overlay, prod and GPU overlays) end to end
	containers/build.sh all
	$(UV) run --frozen pytest -m integration tests/integration -p no:cacheprovider $(PYTEST_ARGS)
