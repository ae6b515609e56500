# Keel: the entry points people type. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

#: ENV=dev|test|prod      the stack for up/down/logs/ps/secrets-* (default dev)
#: APP_ENV=local|dev|...  the settings `make run`/`make dev` use (default local; ENV also works)
#: HTTP_PORT=8000         the API's port: make run/dev, and the host port of `make up` (dev)
#: GPU=1                  add the NVIDIA overlay (compose.gpu.yaml) to up/down/logs/ps
#: INIT_ARGS=...          flags for secrets-init, e.g. --replace-rule (see docs/secrets.md)
#: PYTEST_ARGS=...        extra pytest arguments for test-integration
ENV ?= dev
# uv from PATH, else a private copy bootstrapped into .tools/ (a fresh machine has only Python + make).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: help
help: ## list the targets and the variables they read
	@echo "Targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo "Variables (make TARGET NAME=value, or exported):"
	@grep -hE '^#: ' $(MAKEFILE_LIST) | sed 's/^#: /  /'

.tools/bin/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Keel needs Python >= 3.11; found " + sys.version.split()[0])'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.PHONY: venv
venv: $(UV) ## create/refresh .venv exactly from uv.lock
	$(UV) sync --frozen

# The environment of `make run`/`make dev`: APP_ENV, else an ENV given by you (not the default
# above, which is for the compose targets), else local. keel refuses an unknown one in one line.
RUN_ENV := $(or $(APP_ENV),$(if $(filter-out file default undefined,$(origin ENV)),$(ENV)),local)

.PHONY: run dev check-run-env
check-run-env:
	@if [ -n "$(APP_ENV)" ] && [ "$(origin ENV)" != file ] && [ "$(APP_ENV)" != "$(ENV)" ]; then \
	  echo "make: APP_ENV=$(APP_ENV) and ENV=$(ENV) disagree; set one of them" >&2; exit 2; fi
	@echo "make: APP_ENV=$(RUN_ENV) (uv run keel serve --migrate)"

run: venv check-run-env ## run the API (APP_ENV, default local: SQLite + in-process broker) on :8000
	APP_ENV=$(RUN_ENV) $(UV) run --frozen keel serve --migrate

dev: venv check-run-env ## like run, restarting on every change under src/ (HTTP_RELOAD=true)
	APP_ENV=$(RUN_ENV) HTTP_RELOAD=true $(UV) run --frozen keel serve --migrate

.PHONY: test
test: venv ## unit + service tests (starts throwaway PostgreSQL/Redis/MariaDB itself)
	$(UV) run --frozen pytest -m "not integration and not contract"

.PHONY: test-contract
test-contract: venv ## schemathesis: every route of the live app against its OpenAPI document
	$(UV) run --frozen pytest -m contract tests/service/test_openapi_contract.py

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
	$(UV) run --frozen keel secrets init $(ENV) $(INIT_ARGS)

secrets-edit: venv ## edit secrets/ENV.yaml in EDITOR: validated, re-encrypted, temp file shredded
	$(UV) run --frozen keel secrets edit $(ENV)

# --- backups (docs/operations.md "Backups and restore") ---
# STACK=compose: the ENV's Compose stack (dump tools run in its postgres/redis containers);
# STACK=local: the PostgreSQL/Redis that configs/ENV + secrets name, with this host's tools.
STACK ?= $(if $(filter local,$(ENV)),local,compose)
BACKUP_DIR ?= backups/$(ENV)
KEEP ?= 28
FROM ?= latest
.PHONY: backup restore backup-status
backup: venv ## encrypted PostgreSQL + Redis backup of ENV into BACKUP_DIR, keep the newest KEEP
	$(UV) run --frozen keel backup --env $(ENV) --stack $(STACK) --dir $(BACKUP_DIR) --keep $(KEEP)

restore: venv ## verify, then restore FROM (folder|stamp|latest) into ENV; REPLACE=1 swaps a non-empty DB
	$(UV) run --frozen keel restore $(FROM) --env $(ENV) --stack $(STACK) --dir $(BACKUP_DIR) $(if $(filter 1,$(REPLACE)),--replace,) $(RESTORE_ARGS)

backup-status: venv ## age of the newest backup of ENV; exit 1 when older than 7 h
	$(UV) run --frozen keel backup status --env $(ENV) --dir $(BACKUP_DIR)

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

# --- kubernetes (validated offline, not run here: docs/kubernetes.md) ---
OVERLAY ?= prod
.PHONY: k8s-render test-k8s
k8s-render: ## print the Kubernetes manifests of deploy/k8s/overlays/OVERLAY (dev|prod|prod-gpu)
	@# stdout is the manifest only (pipe it to kubectl); the venv's messages go to stderr.
	@$(MAKE) --no-print-directory venv >&2
	@.venv/bin/kubectl kustomize deploy/k8s/overlays/$(OVERLAY)

test-k8s: venv ## render every overlay, validate against the k8s 1.30 and 1.37 schemas, invariants
	$(UV) run --frozen pytest tests/unit/k8s -q

# --- swarm (docs/cluster.md) ---
STACK_ARGS := $(ENV) $(if $(filter 1,$(GPU)),--gpu)
.PHONY: stack
stack: venv ## render the Docker Swarm stack for ENV (GPU=1 adds the GPU worker) to .stack/ENV/stack.yaml
	$(UV) run --frozen keel stack render $(STACK_ARGS)

# A three-node swarm on this machine (network namespaces + one dockerd each; needs root).
.PHONY: cluster-up cluster-down push
cluster-up: ## start the local three-node test swarm (containers/swarm/cluster.sh) and its registry
	containers/swarm/cluster.sh up
	containers/build.sh registry
	containers/swarm/images.sh registry

cluster-down: ## remove the local test swarm completely (daemons, namespaces, data)
	containers/swarm/cluster.sh down

push: ## build the images and push them to the cluster registry (REGISTRY=host:port; refs on stdout)
	containers/build.sh all
	containers/swarm/images.sh push $${KEEL_IMAGE:-keel:latest} keel-offline/postgres:15 keel-offline/redis:7 keel-offline/nginx:1.22

.PHONY: deploy undeploy
deploy: venv ## push images, run migrations, deploy ENV to the swarm (DOCKER_HOST: a manager), wait until healthy
	containers/swarm/deploy.sh deploy $(STACK_ARGS)

undeploy: venv ## remove ENV's stack, its migrate job, secrets and configs from the swarm (volumes stay)
	containers/swarm/deploy.sh undeploy $(ENV)

.PHONY: test-swarm
test-swarm: venv ## three-node swarm in network namespaces: deploy, roll, roll back, scale, node loss, rotation
	containers/build.sh all
	$(UV) run --frozen pytest -m swarm tests/swarm -p no:cacheprovider -s $(PYTEST_ARGS)
