# binance-live container image.
#
# Stage 1 builds the collector from source against Debian bookworm's
# development packages; stage 2 carries only the shared libraries, CA
# certificates, the binary, the schema and the default configuration, and
# runs as an unprivileged user. The health check is a tiny probe written in
# bash (no curl in the image): it asks the collector's own /health endpoint.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config libuv1-dev libwslay-dev libmbedtls-dev \
      libcurl4-openssl-dev libpq-dev libhiredis-dev libyajl-dev libyaml-dev \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src ./src
RUN make build/binance-live

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libuv1 libwslay1 libmbedtls14 libmbedx509-1 libmbedcrypto7 libcurl4 \
      libpq5 libhiredis0.14 libyajl2 libyaml-0-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /app binance
COPY --from=build /src/build/binance-live /usr/local/bin/binance-live
COPY schema /app/schema
COPY conf/binance-live.yaml /app/conf/binance-live.yaml
WORKDIR /app
RUN mkdir -p /app/var/spool && chown -R binance:binance /app/var
USER binance
# The migrator would find ./schema from WORKDIR /app anyway; say it.
ENV HTTP_LISTEN=0.0.0.0:8080 \
    SPOOL_DIR=/app/var/spool \
    BINANCE_LIVE_SCHEMA_DIR=/app/schema \
    LOG_FORMAT=json \
    BINANCE_LIVE_CONFIG=/app/conf/binance-live.yaml
EXPOSE 8080
VOLUME ["/app/var"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/binance-live"]
