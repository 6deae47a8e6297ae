# The stackvault backup image: the tools and bin-wrappers on a small Debian runtime with
# pg_dump/pg_restore of PostgreSQL 15 (the server's major version: pg_dump refuses a newer
# server, and a dump from a newer pg_dump may not restore into an older one).
#
#   docker build -t stackvault .
#   docker compose -f compose/docker-compose.yaml run --rm backup stackvault-nightly
#
# neo4j-admin is not in this image: the offline method (dump-neo4j --method admin) runs the
# neo4j image's own as a one-off container sharing the data volume (see compose/README.md).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && for tool in dump-pg snap-qdrant dump-neo4j vault-put vault-get vault-copy vault-ledger vault-prune integrity-check; do \
           cp "target/release/$tool" /out/; \
       done

FROM debian:bookworm-slim
# postgresql-client-15: pg_dump and pg_restore; jq: the wrappers' listings; util-linux: flock.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 jq ca-certificates util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/stackvault --create-home stackvault \
    && install -d -o stackvault -m 0700 /var/lib/stackvault/spool \
    && install -d -o stackvault /var/log/stackvault
COPY --from=build /out/ /usr/local/bin/
COPY bin-wrappers/ /usr/local/bin/
COPY man/*.1 /usr/local/share/man/man1/
COPY man/*.5 /usr/local/share/man/man5/
ENV STACKVAULT_SPOOL=/var/lib/stackvault/spool \
    STACKVAULT_ENV_FILE= \
    STACKVAULT_LOCK_FILE=/var/lib/stackvault/nightly.lock \
    STACKVAULT_PG_BINDIR=/usr/lib/postgresql/15/bin
USER stackvault
WORKDIR /var/lib/stackvault
CMD ["stackvault-smoke"]
