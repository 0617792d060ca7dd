# syntax=docker/dockerfile:1
# One image with ebb's three programs, statically linked against musl, on distroless/static
# (CA certificates, /etc/passwd with user nonroot = 65532, nothing else: no shell, no libc).
# The Deployments under deploy/ pick the program with `command`.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/ebb:TAG --push .
#
# Each platform is compiled natively in its own build stage (emulated with QEMU when the builder
# runs on another architecture; see deploy/README.md).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    target="$(uname -m)-unknown-linux-musl"; \
    rustup target add "$target"; \
    cargo build --release --locked --target "$target" \
      -p ebb-operator -p ebb-webhook -p ebb-metrics-apiserver; \
    mkdir -p /out; \
    for bin in ebb-operator ebb-webhook ebb-metrics-apiserver; do \
      cp "target/$target/release/$bin" /out/; \
    done

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ebb-operator /out/ebb-webhook /out/ebb-metrics-apiserver /usr/local/bin/
USER 65532:65532
EXPOSE 8080 9443 6443 9666
ENTRYPOINT ["/usr/local/bin/ebb-operator"]
