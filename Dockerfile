# syntax=docker/dockerfile:1
# pertinent: a multi-stage build with cargo-chef (dependencies cached in their own layer), the
# model and ONNX Runtime fetched by scripts/fetch-model and baked into the image, and a slim
# non-root runtime. protoc comes from the protoc-bin-vendored crate, so the builder needs none.
#
#   docker build -t pertinent .
#   docker run --rm -p 50051:50051 -v pertinent-data:/var/lib/pertinent pertinent
#
# The model lives at /opt/pertinent/model and the runtime at /opt/pertinent/onnxruntime; to use
# another model, mount a directory over /opt/pertinent/model (or set PERTINENT_MODEL_DIR).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# python3 + pip only download the model and runtime wheels by name; nothing is pip-installed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin pertinent
RUN scripts/fetch-model /opt/pertinent

FROM debian:bookworm-slim AS runtime
# ONNX Runtime needs libstdc++ and libgcc; ca-certificates for TLS to Qdrant and OTLP.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 libgcc-s1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home pertinent \
 && mkdir -p /var/lib/pertinent \
 && chown 10001:10001 /var/lib/pertinent
COPY --from=builder /opt/pertinent /opt/pertinent
COPY --from=builder /app/target/release/pertinent /usr/local/bin/pertinent
# Listening beyond loopback needs API keys (PERTINENT_API_KEYS_FILE, a mounted file made with
# `pertinent keys add`) or an explicit PERTINENT_INSECURE_NO_AUTH=true (docs/security.md).
ENV PERTINENT_LISTEN=0.0.0.0:50051 \
    PERTINENT_DATA_DIR=/var/lib/pertinent \
    PERTINENT_MODEL_DIR=/opt/pertinent/model \
    PERTINENT_ORT_DYLIB_PATH=/opt/pertinent/onnxruntime/libonnxruntime.so \
    PERTINENT_LOG_FORMAT=json
USER 10001:10001
EXPOSE 50051 9090
VOLUME ["/var/lib/pertinent"]
ENTRYPOINT ["/usr/local/bin/pertinent"]
CMD ["serve"]
