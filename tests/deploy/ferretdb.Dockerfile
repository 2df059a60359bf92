# The stand-in for mongo:7 in tests/deploy/docker-compose.test.yml:
# FerretDB (a MongoDB wire-protocol server over SQLite, built by
# tests/servers/ferretdb.sh) with its files in /data/db, the volume
# mongo:7 uses. No registry is reachable where the test runs.
FROM debian:bookworm-slim
COPY ferretdb /usr/local/bin/ferretdb
RUN groupadd --gid 10999 ferretdb \
 && useradd --uid 10999 --gid ferretdb --no-create-home ferretdb \
 && mkdir -p /data/db && chown ferretdb:ferretdb /data/db
USER ferretdb
LABEL org.xp.image=xp-test
ENV FERRETDB_SQLITE_URL=file:/data/db/
ENTRYPOINT ["ferretdb", "--handler=sqlite", "--telemetry=disable", \
            "--state-dir=-", "--log-level=error", "--debug-addr=-"]
