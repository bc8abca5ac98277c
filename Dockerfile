# aoai-ledger: multi-stage build. The builder matches the workspace's
# rust-version (1.94, edition 2024); the runtime is a small Debian with only
# the TLS libraries native-tls links against, run as a non-root user.
#
# No HEALTHCHECK here: the runtime image has no curl or wget. docker-compose.yml
# probes the worker's /healthz on port 9090 from outside instead (or use your
# orchestrator's HTTP probe on /healthz and /readyz).

FROM rust:1.94-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p aoai-ledger --locked \
 && install -m 0755 target/release/aoai-ledger /usr/local/bin/aoai-ledger

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ledger
COPY --from=builder /usr/local/bin/aoai-ledger /usr/local/bin/aoai-ledger
USER 10001:10001
ENV AOAI_LEDGER_LOG_FORMAT=json
EXPOSE 9090
ENTRYPOINT ["aoai-ledger"]
CMD ["run"]
