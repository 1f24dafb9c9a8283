#!/usr/bin/env bash
# Web-form lead intake (issue 20): signed POST /api/leads at RATE leads/s
# for SECONDS, open loop over CONNECTIONS kept-alive connections
# (bench/leadload), each lead classified and durable in the journal
# (SQLite WAL, synchronous=FULL: an fsync per commit) before its 201. The
# figure: p50/p90/p99 from each lead's due time to its 201, and the rate
# achieved; next to it the daemon's CPU and RSS and the machine's load.
#
#   leadload --HTTP/1.1 keep-alive--> frontdesk 127.0.0.1:<free port>
#                                     (dialplans/clinic.toml, [sources.website])
#
# Loopback only; bounded (leadload's own deadlines, an outer `timeout`, a
# readiness deadline on /api/health); what it starts it stops, by PID.
#
# Needs: release builds of frontdesk (`cargo build --release -p frontdesk`)
# and leadload (`cargo build --release --manifest-path bench/leadload/Cargo.toml`).
#
# Environment (defaults in brackets):
#   RATES          leads/s to try, one run each    ["1000"]
#   SECONDS_EACH   seconds of load per rate        [30]
#   CONNECTIONS    kept-alive connections          [64]
#   FRONTDESK_BIN  the daemon                      [target/release/frontdesk]
#   LEADLOAD_BIN   the client                      [bench/leadload/target/release/leadload]
#   FRONTDESK_LOG  RUST_LOG for frontdesk          [warn]
#   OUT            results folder                  [/tmp/frontdesk-bench-leads-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATES="${RATES:-1000}"
SECONDS_EACH="${SECONDS_EACH:-30}"
CONNECTIONS="${CONNECTIONS:-64}"
FRONTDESK_BIN="${FRONTDESK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/frontdesk}"
LEADLOAD_BIN="${LEADLOAD_BIN:-${CARGO_TARGET_DIR:-$ROOT/bench/leadload/target}/release/leadload}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-leads-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1

[ -x "$FRONTDESK_BIN" ] || { echo "leads.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; }
[ -x "$LEADLOAD_BIN" ] || {
  echo "leads.sh: no $LEADLOAD_BIN; run: cargo build --release --manifest-path bench/leadload/Cargo.toml" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""
cleanup() {
  [ -n "$FPID" ] && kill "$FPID" 2>/dev/null
  sleep 0.5
  [ -n "$FPID" ] && kill -9 "$FPID" 2>/dev/null
  true
}
trap cleanup EXIT INT TERM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
TICKS=$(getconf CLK_TCK)

{
  echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "cpus $(nproc); $(uptime)"
} | tee "$OUT/machine.txt"

RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
    --data "$OUT/frontdesk-data" --admin-token bench-token \
    --dialplan "$ROOT/dialplans/clinic.toml" > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
FPID=$!
HTTP=""
deadline=$((SECONDS + 30))
while :; do
  line=$(grep -m1 '^http-listening ' "$OUT/frontdesk.out" 2>/dev/null)
  [ -n "$line" ] && HTTP=${line#http-listening }
  if [ -n "$HTTP" ] && curl -sf "http://$HTTP/api/health" >/dev/null 2>&1; then break; fi
  kill -0 "$FPID" 2>/dev/null || { echo "frontdesk exited"; tail "$OUT/frontdesk.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 30 s"; tail "$OUT/frontdesk.log"; exit 1; }
  sleep 0.2
done
echo "frontdesk ready on $HTTP (pid $FPID)"

echo
{
  echo "| leads/s asked | achieved | 201 | p50 ms | p90 ms | p99 ms | max ms | daemon CPU | RSS before → after | load (1 min) |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} | tee "$OUT/table.md"
status=0
for rate in $RATES; do
  dir="$OUT/rate-$rate"; mkdir -p "$dir"
  c0=$(cpu_ticks "$FPID"); r0=$(rss_kib "$FPID"); t0=$(date +%s.%N)
  LEADLOAD_DUMP="$dir/latencies.txt" timeout $((SECONDS_EACH + 60)) "$LEADLOAD_BIN" "$HTTP" "$rate" "$SECONDS_EACH" "$CONNECTIONS" \
      > "$dir/leadload.txt" 2> "$dir/leadload.err" || status=1
  c1=$(cpu_ticks "$FPID"); r1=$(rss_kib "$FPID"); t1=$(date +%s.%N)
  cat /proc/loadavg > "$dir/loadavg.txt"
  json=$(tail -1 "$dir/leadload.txt")
  field() { printf '%s' "$json" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  cpu=$(python3 -c "print(f'{($c1-$c0)/$TICKS/($t1-$t0)*100:.1f} %')")
  echo "| $rate | $(field "['achieved_per_s']") | $(field "['statuses'].get('201', 0)")/$(field "['sent']") |" \
       "$(field "['p50_ms']") | $(field "['p90_ms']") | $(field "['p99_ms']") | $(field "['max_ms']") |" \
       "$cpu | $((r0 / 1024)) → $((r1 / 1024)) MiB | $(cut -d' ' -f1 /proc/loadavg) |" \
       | tee -a "$OUT/table.md"
done
stored=$(curl -sf -H 'Authorization: Bearer bench-token' "http://$HTTP/api/reports/leads?from=2000-01-01T00:00:00Z" \
  | python3 -c "import json,sys; print(sum(s['leads'] for s in json.load(sys.stdin)['sources']))")
echo
echo "leads in the journal: $stored" | tee -a "$OUT/table.md"
exit $status
