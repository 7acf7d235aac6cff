# Forgeline: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/forgeline/v1/*.proto)
PROTO_OUT := $(PROTO_SRC:.proto=_pb2.py)

OIDC_PROVIDER := tests/integration/oidc_provider

.PHONY: run test lint proto venv engines bench clean

run: venv proto
	$(PY) -m services.supervisor

# One resolver run for the platform's own dependencies; constraints.txt pins every version
# (torch==2.13.0 among them) so that nothing pulls a different stack.
venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar on -c constraints.txt -e '.[dev]'
	touch $@

proto: venv $(PROTO_OUT)
protos/forgeline/v1/%_pb2.py: protos/forgeline/v1/%.proto | $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos --pyi_out=protos \
		--grpc_python_out=protos $(PROTO_SRC)

# The engines pin their own stacks; each gets its own environment under .engines/.
engines: venv
	$(PY) -m services.common.engines ensure axolotl
	$(PY) -m services.common.engines ensure vllm

lint: venv proto
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services

# The certified OpenID Provider the OAuth tests sign in against (npm: oidc-provider).
$(OIDC_PROVIDER)/node_modules: $(OIDC_PROVIDER)/package-lock.json
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund
	touch $@

test: venv proto engines $(OIDC_PROVIDER)/node_modules
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests --durations=40

bench: venv proto
	$(PY) -m bench.auth_overhead

clean:
	rm -rf $(VENV) .forgeline protos/forgeline/v1/*_pb2*.py*
