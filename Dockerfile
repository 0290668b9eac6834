# syntax=docker/dockerfile:1
# The operator's image: a static (musl) release build on distroless, running as nonroot.
#
#   docker build -t ghcr.io/apigw-operator/apigw-operator:0.1.0 .
#
# The tag is Cargo.toml's version, which is also the Helm chart's appVersion and default tag.

FROM docker.io/library/rust:1 AS build
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$TARGET"
WORKDIR /src
COPY . .
# aws-lc-rs (the TLS provider of both kube and the AWS SDK) compiles its C part with musl-gcc.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$TARGET" --bin apigw-operator \
 && cp "target/$TARGET/release/apigw-operator" /apigw-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="apigw-operator" \
      org.opencontainers.image.description="Kubernetes operator for AWS API Gateway (REST API) method integrations" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /apigw-operator /apigw-operator
# nonroot is uid/gid 65532; the chart sets runAsUser: 65532 so that runAsNonRoot can be checked.
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/apigw-operator"]
CMD ["run"]
