#!/usr/bin/env bash
# REGISTER with digest authentication per second over TLS (each client
# connection opened once and reused for every registration) next to UDP,
# with the same client, against the same daemon, in the same run.
#
#   examples/tls_register_load --TLS (connection reuse)--> frontdesk --sips 127.0.0.1:<free>
#   examples/tls_register_load --UDP-->                    frontdesk --sip  127.0.0.1:<free>
#
# Debian's SIPp is built without TLS, hence our own client (rustls, ring):
# CONNECTIONS workers, each with one TLS connection or one UDP socket,
# register closed-loop: REGISTER -> 401 -> REGISTER with credentials -> 200
# is one registration (two transactions, one digest check), worker i as
# agent 1001 + i % 7 (the demo clinic's, password demo-<id>), each
# registration a new Call-ID. For each connection count and round, UDP and
# TLS run one after the other (the order alternates) for STEP_S seconds
# each; the daemon's CPU over the step is read from /proc. Client and
# daemon share the machine's cores, as with bench/register.sh.
#
# Everything is bounded (an outer `timeout` per step, a readiness
# deadline); loopback only; what this script starts it stops, by PID.
#
# Needs: a release build of the daemon and the client:
#   cargo build --release -p frontdesk --bin frontdesk --example tls_register_load
#
# Environment (defaults in brackets):
#   CONNECTIONS    client connections to try     ["8 32"]
#   ROUNDS         rounds over CONNECTIONS       [2]
#   STEP_S         seconds of load per step      [15]
#   FRONTDESK_BIN  the daemon                    [target/release/frontdesk]
#   CLIENT_BIN     the load client               [target/release/examples/tls_register_load]
#   FRONTDESK_LOG  RUST_LOG for frontdesk        [warn]
#   OUT            results folder                [/tmp/frontdesk-bench-tls-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CONNECTIONS="${CONNECTIONS:-8 32}"
ROUNDS="${ROUNDS:-2}"
STEP_S="${STEP_S:-15}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
CLIENT_BIN="${CLIENT_BIN:-$ROOT/target/release/examples/tls_register_load}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-tls-$(date +%Y%m%d-%H%M%S)}"

for binary in "$FRONTDESK_BIN" "$CLIENT_BIN"; do
  if [ ! -x "$binary" ]; then
    echo "missing $binary: cargo build --release -p frontdesk --bin frontdesk --example tls_register_load" >&2
    exit 2
  fi
done
mkdir -p "$OUT"
"$FRONTDESK_BIN" certs dev --out "$OUT/certs" --force > "$OUT/certs.txt" || exit 1

RUST_LOG="$FRONTDESK_LOG" "$FRONTDESK_BIN" run \
  --dialplan "$ROOT/dialplans/clinic.toml" \
  --sip 127.0.0.1:0 --http 127.0.0.1:0 --sips 127.0.0.1:0 \
  --cert "$OUT/certs/frontdesk.crt" --key "$OUT/certs/frontdesk.key" \
  --data "$OUT/var" --admin-token bench --rtp-ports 40000-40099 \
  > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
PID=$!
stop() {
  kill -TERM "$PID" 2>/dev/null
  for _ in $(seq 1 150); do
    kill -0 "$PID" 2>/dev/null || return
    sleep 0.1
  done
  kill -KILL "$PID" 2>/dev/null
}
trap stop EXIT

for _ in $(seq 1 300); do
  grep -q '^http-listening ' "$OUT/frontdesk.out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "frontdesk exited:"; cat "$OUT/frontdesk.log"; exit 1; }
  sleep 0.1
done
SIP=$(awk '/^sip-listening /{print $2}' "$OUT/frontdesk.out")
SIPS=$(awk '/^sips-listening /{print $2}' "$OUT/frontdesk.out")
if [ -z "$SIP" ] || [ -z "$SIPS" ]; then
  echo "frontdesk not ready within 30 s" >&2
  exit 1
fi
echo "frontdesk $PID: udp $SIP, tls $SIPS; results in $OUT"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

printf '%-5s %-11s %-9s %-12s %-7s %-8s %-8s %-8s %-8s %s\n' \
  round transport conns "reg/s" failed retrans "p50 ms" "p99 ms" "cpu %" "cpu ms/1000 reg"
summary="$OUT/summary.txt"
: > "$summary"
step=0
for round in $(seq 1 "$ROUNDS"); do
  for conns in $CONNECTIONS; do
    if [ $((step % 2)) -eq 0 ]; then order="udp tls"; else order="tls udp"; fi
    step=$((step + 1))
    for transport in $order; do
      if [ "$transport" = tls ]; then server=$SIPS; else server=$SIP; fi
      before=$(cpu_ticks)
      timeout $((STEP_S + 30)) "$CLIENT_BIN" --transport "$transport" --server "$server" \
        --ca "$OUT/certs/frontdesk.crt" --connections "$conns" --seconds "$STEP_S" \
        > "$OUT/$transport-$conns-$round.txt" 2>&1
      after=$(cpu_ticks)
      line=$(grep '^transport=' "$OUT/$transport-$conns-$round.txt")
      field() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
      rate=$(field rate | tr -d '/s')
      registered=$(field registered)
      seconds=$(field seconds)
      cpu=$(awk -v t=$((after - before)) -v hz="$TICKS" -v s="$seconds" 'BEGIN{printf "%.1f", t / hz / s * 100}')
      per=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$registered" 'BEGIN{if (n > 0) printf "%.1f", t / hz * 1000 / n * 1000; else print "-"}')
      row=$(printf '%-5s %-11s %-9s %-12s %-7s %-8s %-8s %-8s %-8s %s' \
        "$round" "$transport" "$conns" "$rate" "$(field failed)" "$(field retransmissions)" \
        "$(field p50 | tr -d ms)" "$(field p99 | tr -d ms)" "$cpu" "$per")
      echo "$row"
      echo "$row" >> "$summary"
    done
  done
done
