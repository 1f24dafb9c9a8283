#!/usr/bin/env bash
# Calls/s of a 3-node cluster against one node, on this box (issue 24):
#
#   cluster: SIPp tests/sipp/caller.xml --UDP--> Kamailio 127.0.0.10 (deploy/kamailio)
#            --> frontdesk 127.0.0.11/.12/.13 (--node-id, --redis, --journal postgres://)
#            with one redis-server and one PostgreSQL database
#   single:  SIPp tests/sipp/caller.xml --UDP--> frontdesk 127.0.0.11 (SQLite journal)
#
# The same scenario for both: a patient calls +15550100, the emergency
# notice answers, the patient hangs up TALK_MS + 2 s later (no key, no
# agent: what is compared is the call set-up and the shared state each call
# writes, journal and presence). Per step: RATE calls/s for STEP_S seconds;
# the achieved rate is SIPp's successful calls over the step's length. On 2
# cores the cluster cannot scale: this shows the shared state's overhead
# (Kamailio, Redis, PostgreSQL, three daemons on the same cores).
#
# Loopback only; everything started here is stopped here, by PID; every
# wait is bounded. Run under /work/bin/heavy on the shared box.
#
# Needs: sipp, kamailio, redis-server, postgresql (15), python3, a build of
# frontdesk.
#
# Environment (defaults in brackets):
#   RATES          calls/s to try                  ["20 50 100"]
#   STEP_S         seconds of calls per step       [10]
#   TALK_MS        the patient's pause             [500]
#   TARGETS        what to load                    ["single cluster"]
#   FRONTDESK_BIN  the binary                      [target/release/frontdesk]
#   OUT            results folder                  [/tmp/frontdesk-bench-cluster-<date>]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

RATES=${RATES:-"20 50 100"}
STEP_S=${STEP_S:-10}
TALK_MS=${TALK_MS:-500}
TARGETS=${TARGETS:-"single cluster"}
FRONTDESK_BIN=${FRONTDESK_BIN:-target/release/frontdesk}
OUT=${OUT:-/tmp/frontdesk-bench-cluster-$(date -u +%Y%m%dT%H%M%S)}
PG=/usr/lib/postgresql/15/bin
mkdir -p "$OUT"
work=$(mktemp -d)
chmod 755 "$work"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The nodes: start_node runs in $(…), a subshell, so their PIDs never
  # reach pids; each is known by its data folder under $work.
  pkill -f -- "--data $work/node" 2>/dev/null || true
  if [ -d "$work/pg/data" ]; then
    runuser -u postgres -- "$PG/pg_ctl" -D "$work/pg/data" stop -m fast -w -t 20 >/dev/null 2>&1 || true
  fi
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  pkill -9 -f -- "--data $work/node" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (bounded) until command "$@" succeeds.
wait_for() {
  local deadline=$((SECONDS + 30))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; exit 1; }
    sleep 0.1
  done
}

# The open demo clinic, Kamailio's address its [trust] proxies.
python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
text = open("dialplans/clinic.toml").read()
text = text[:text.index("[[hours]]")] + text[text.index("# Outside hours"):]
lines = [('proxies = ["127.0.0.10"]' if l.startswith("proxies = ") else l) for l in text.split("\n")]
open(os.path.join(work, "clinic.toml"), "w").write("\n".join(lines))
os.symlink(os.path.abspath("dialplans/prompts"), os.path.join(work, "prompts"))
PY

# The patients' audio: a sink.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1], flush=True); sys.stdout.close(); [s.recv(2048) for _ in iter(int,1)]' >"$work/sink.port" &
pids+=($!)
wait_for test -s "$work/sink.port"
sink=$(cat "$work/sink.port")

# start_node INDEX IP FLAGS...: a daemon on IP:free port; prints its SIP address.
start_node() {
  local index=$1 ip=$2; shift 2
  mkdir -p "$work/node$index"
  local low=$((30000 + index * 2000))
  "$root/$FRONTDESK_BIN" run --sip "$ip:$(free_port)" --http 127.0.0.1:0 \
    --data "$work/node$index" --dialplan "$work/clinic.toml" --admin-token bench \
    --rtp-ports "$low-$((low + 1999))" "$@" \
    >"$work/node$index.out" 2>"$OUT/node$index.log" &
  pids+=($!)
  wait_for grep -q '^sip-listening' "$work/node$index.out"
  sed -n 's/^sip-listening //p' "$work/node$index.out"
}

# load TARGET_ADDR NAME: the steps against one address.
load() {
  local target=$1 name=$2
  for rate in $RATES; do
    local calls=$((rate * STEP_S)) dir="$OUT/$name-$rate"
    mkdir -p "$dir"
    local start=$(date +%s.%N)
    (cd "$dir" && timeout $((STEP_S + 60)) sipp "$target" -sf "$root/tests/sipp/caller.xml" \
      -i 127.0.0.1 -p "$(free_port)" -m "$calls" -r "$rate" -l $((rate * 10)) \
      -s +15550100 -set rtp_port "$sink" -set dtmf 0 -d "$TALK_MS" \
      -timeout 60s -timeout_error -nostdin -trace_stat -stf stats.csv -fd 1 >sipp.out 2>&1) || true
    local end=$(date +%s.%N)
    local ok failed
    ok=$(stat_last "$dir/stats.csv" "SuccessfulCall(C)")
    failed=$(stat_last "$dir/stats.csv" "FailedCall(C)")
    python3 - "$name" "$rate" "$calls" "$ok" "$failed" "$start" "$end" "$TALK_MS" <<'PY' | tee -a "$OUT/results.txt"
import sys
name, rate, calls, ok, failed, start, end, talk = sys.argv[1:]
# The last call ends TALK_MS + 2 s (and its set-up) after it started.
span = float(end) - float(start) - (int(talk) + 2000) / 1000
print(f"{name:8} asked {rate:>4}/s  {calls:>5} calls  ok {ok:>5}  failed {failed:>4}  achieved {int(ok) / max(span, 0.001):7.1f}/s")
PY
  done
}

for target in $TARGETS; do
  case $target in
  single)
    sip=$(start_node 9 127.0.0.11)
    load "$sip" single
    for pid in "${pids[@]:1}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]:1}"; do timeout 40 tail --pid="$pid" -f /dev/null || true; done
    pids=("${pids[0]}")
    ;;
  cluster)
    mkdir -p "$work/pg" && chown postgres:postgres "$work/pg"
    runuser -u postgres -- "$PG/initdb" -D "$work/pg/data" --auth-local=trust \
      --auth-host=scram-sha-256 -U postgres --no-sync >/dev/null
    pgport=$(free_port)
    runuser -u postgres -- "$PG/postgres" -D "$work/pg/data" -k "$work/pg" -h 127.0.0.1 \
      -p "$pgport" -c fsync=off -c synchronous_commit=off 2>"$OUT/postgres.log" &
    pids+=($!)
    wait_for "$PG/pg_isready" -h 127.0.0.1 -p "$pgport"
    psql() { runuser -u postgres -- psql -h "$work/pg" -p "$pgport" -U postgres -At -v ON_ERROR_STOP=1 "$@"; }
    psql -d postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench-pw'" >/dev/null
    psql -d postgres -c "CREATE DATABASE cluster OWNER bench" >/dev/null
    journal="postgres://bench:bench-pw@127.0.0.1:$pgport/cluster"
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$work" --daemonize no --loglevel warning >"$OUT/redis.log" 2>&1 &
    pids+=($!)
    wait_for redis-cli -p "$rport" ping
    : >"$work/dispatcher.list"
    for i in 1 2 3; do
      sip=$(start_node "$i" "127.0.0.1$i" --node-id "n$i" --redis "redis://127.0.0.1:$rport/" \
        --journal "$journal")
      echo "1 sip:$sip 0 0" >>"$work/dispatcher.list"
    done
    kport=$(free_port)
    mkdir -p "$work/kamailio"
    /usr/sbin/kamailio -DD -E -f "$root/deploy/kamailio/kamailio.cfg" \
      -l "udp:127.0.0.10:$kport" -l "tcp:127.0.0.10:$kport" \
      -A "DISPATCHER_LIST=\"$work/dispatcher.list\"" -A PING_INTERVAL=1 -A FR_TIMER=1000 \
      -Y "$work/kamailio" -P "$work/kamailio/kamailio.pid" -m 64 -M 8 -n 2 \
      >/dev/null 2>"$OUT/kamailio.log" &
    pids+=($!)
    # Kamailio relays OPTIONS to a node once its probe found one.
    wait_for sipp "127.0.0.10:$kport" -sf "$root/tests/sipp/options.xml" -i 127.0.0.1 \
      -p "$(free_port)" -m 1 -timeout 2s -timeout_error -nostdin
    load "127.0.0.10:$kport" cluster
    echo "records: $(psql -d cluster -c "SELECT count(*) FROM calls")" | tee -a "$OUT/results.txt"
    ;;
  esac
done
echo "commit $(git rev-parse --short HEAD), binary $FRONTDESK_BIN, results in $OUT" | tee -a "$OUT/results.txt"
