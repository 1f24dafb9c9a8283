# frontdesk in containers (see docker-compose.yml). Three stages:
#   build    the release binary, from this repository, with the locked
#            dependencies (rust:1-bookworm has the C compiler SQLite needs);
#   sipp     Debian with sip-tester, the load generator of docker-compose.yml;
#   runtime  (the default) the binary on debian:bookworm-slim, as a user of
#            its own, data in /var/lib/frontdesk, the demo dialplans in
#            /etc/frontdesk/dialplans (docker-compose.yml mounts the
#            repository's over them, read-only).
# Not built in CI (no Docker engine runs there); tests/run checks the
# compose file with `docker-compose config`.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p frontdesk --bin frontdesk \
 && install -D -m 0755 target/release/frontdesk /out/frontdesk

FROM debian:bookworm-slim AS sipp
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester \
 && rm -rf /var/lib/apt/lists/*
COPY tests/sipp /scenarios
WORKDIR /tmp
ENTRYPOINT ["sipp"]

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /var/lib/frontdesk --shell /usr/sbin/nologin frontdesk \
 && install -d -o frontdesk -g frontdesk /var/lib/frontdesk
COPY --from=build /out/frontdesk /usr/local/bin/frontdesk
COPY dialplans /etc/frontdesk/dialplans
USER frontdesk
WORKDIR /var/lib/frontdesk
VOLUME ["/var/lib/frontdesk"]
# SIP (UDP and TCP), the dashboard and admin API, RTP (see --rtp-ports).
EXPOSE 5060/udp 5060/tcp 8080/tcp 20000-20099/udp
# On SIGTERM the daemon stops within 30 s (calls drained, journal flushed):
# give it the time (docker stop -t 35, as docker-compose.yml does).
STOPSIGNAL SIGTERM
ENTRYPOINT ["frontdesk"]
CMD ["run", "--dialplan", "/etc/frontdesk/dialplans/clinic.toml", \
     "--sip", "0.0.0.0:5060", "--http", "0.0.0.0:8080", \
     "--data", "/var/lib/frontdesk", "--rtp-ports", "20000-20099"]
