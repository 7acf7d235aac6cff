# Forgeline: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/forgeline/v1/*.proto)
PROTO_OUT := $(PROTO_SRC:.proto=_pb2.py)

OIDC_PROVIDER := tests/integration/oidc_provider

.PHONY: run test checks lint proto venv engines bench clean web

run: venv proto web
	$(PY) -m services.supervisor

# One resolver run for the platform's own dependencies; constraints.txt pins every version
# (torch==2.13.0 among them) so that nothing pulls a different stack. uv does the install:
# the same resolution and the same versions as pip (pip freeze is identical), in 8 s rather
# than pip's 2 minutes on a clean clone, because it downloads and unpacks in parallel. uv
# reads no pip.conf, so pip's find-links (where a machine keeps wheels such as the CPU torch
# build) is handed over to it. --compile-bytecode: uv, unlike pip, leaves the .pyc files
# unwritten, and where PYTHONDONTWRITEBYTECODE is set (this machine and CI) Python never writes
# them either, so every process compiled torch, transformers, ... from source at each start:
# the stack took 43 s to start instead of 14, and collecting the tests 25 s instead of 12.
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
PIP_FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PIP) install --quiet uv==$(UV_VERSION)
	$(UV) pip install --python $(PY) $(foreach d,$(PIP_FIND_LINKS),--find-links $(d)) \
	  --compile-bytecode -c constraints.txt -e '.[dev]'
	touch $@

proto: venv $(PROTO_OUT)
protos/forgeline/v1/%_pb2.py: protos/forgeline/v1/%.proto | $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos --pyi_out=protos \
		--grpc_python_out=protos $(PROTO_SRC)

# The engines pin their own stacks; each gets its own environment under
# ~/.cache/forgeline/engines (FORGELINE_ENGINES_DIR), shared by every checkout.
engines: venv
	$(PY) -m services.common.engines ensure axolotl
	$(PY) -m services.common.engines ensure vllm

lint: venv proto web/node_modules/.package-lock.json
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services
	npm --prefix web run lint

# The web client (web/): npm ci when the lock file changes, a Vite build into web/dist (served
# by the gateway at /) when a source changes.
WEB_SRC := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/api-docs.html web/vite.config.ts web/tsconfig.json web/package.json
web: web/dist/index.html
web/node_modules/.package-lock.json: web/package-lock.json
	npm --prefix web ci --no-audit --no-fund
	touch $@
web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	npm --prefix web run build
	touch $@

# The certified OpenID Provider the OAuth tests sign in against (npm: oidc-provider).
$(OIDC_PROVIDER)/node_modules: $(OIDC_PROVIDER)/package-lock.json
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund
	touch $@

# Two background jobs beside pytest, so that the second core works while the first runs the
# (single-process) tests: the engine build (minutes on a machine whose cache lacks them; the
# first test that needs an engine waits for it on the build's lock file), and the checks
# (lint, types, the web client's own tests: about 100 s), whose output is printed, and whose
# failure fails the run, at the end. Tests run in the order tests/conftest.py sets: unit,
# integration, e2e; the last lines give the time per folder.
ENGINES_LOG := .forgeline/engines-build.log
CHECKS_LOG := .forgeline/checks.log
test: venv proto $(OIDC_PROVIDER)/node_modules web
	@mkdir -p .forgeline
	@# The project's own bytecode, once (see venv): each of the hundred-odd Python processes
	@# the suite starts would otherwise compile these modules again (about 0.3 s each).
	@$(PY) -m compileall -q -j 0 services protos tests bench > /dev/null
	@echo "building the engines and running the checks in the background (logs: $(ENGINES_LOG), $(CHECKS_LOG))"
	@( $(PY) -m services.common.engines ensure axolotl && \
	   $(PY) -m services.common.engines ensure vllm ) > $(ENGINES_LOG) 2>&1 & \
	engines=$$!; \
	( started=$$(date +%s); $(MAKE) --no-print-directory checks; code=$$?; \
	  echo "checks took $$(( $$(date +%s) - started )) s"; exit $$code ) > $(CHECKS_LOG) 2>&1 & \
	checks=$$!; \
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests --durations=40; status=$$?; \
	wait $$engines || { echo "the engine build failed:"; tail -30 $(ENGINES_LOG); status=1; }; \
	grep -h "ready in" $(ENGINES_LOG) || echo "engines: already built (cache)"; \
	if wait $$checks; then tail -1 $(CHECKS_LOG); \
	else echo "the checks failed:"; cat $(CHECKS_LOG); status=1; fi; \
	exit $$status

# What `make test` checks beside pytest: lint, types, the web client's own tests.
checks: lint
	npm --prefix web run typecheck
	npm --prefix web run test

bench: venv proto
	$(PY) -m bench.auth_overhead

clean:
	rm -rf $(VENV) .forgeline protos/forgeline/v1/*_pb2*.py*
