# The engine with every production adapter (MongoDB, Redis, Kafka, S3), for docs/DEPLOY.md and
# compose.yaml. Build: docker build -t switchboard .
FROM rust:1.90-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --features mongodb,redis,kafka,s3 \
    && cp target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/switchboard switchboard
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
USER switchboard
WORKDIR /var/lib/switchboard
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/switchboard", "--log-format", "json"]
