#!/usr/bin/env bash
# Concurrent calls each hearing prompts (issue 6: 2,000 calls, pacing
# jitter p99 <= 2 ms), end to end through the daemon:
#
#   SIPp bench/sipp/caller.xml --SIP--> frontdesk 127.0.0.1:<free port>
#        (+15550111: the emergency notice, then the urgent-care queue,
#         where nobody is signed in: "please hold", then hold music)
#   frontdesk --RTP, one stream per call--> rtpload sink 127.0.0.1:SINK_PORT
#        (every call's SDP names the same receiving socket)
#
# Per step, CALLS calls are placed at RATE calls/s and all held; once the
# last is up and past its first prompt, the sink measures for MEASURE_S
# seconds: for consecutive packets of a stream inside one talkspurt, the
# deviation of their arrival gap from 20 ms (kernel receive timestamps),
# loss from sequence gaps, streams heard. frontdesk's CPU over the same
# window from /proc. A fresh daemon per step. Everything is bounded
# (SIPp -timeout, outer `timeout`, readiness deadline); loopback only; what
# the script starts it stops, by PID.
#
# Needs: sipp, python3, a release build of frontdesk
# (`cargo build --release -p frontdesk`) and of the load tool
# (`cargo build --release --manifest-path bench/rtpload/Cargo.toml`).
#
# Environment (defaults in brackets):
#   CALLS          concurrent calls per step           ["200 1000 2000"]
#   RATE           calls/s while calls are placed      [200]
#   MEASURE_S      seconds measured once all are up    [10]
#   SINK_PORT      the receiving socket                [40000]
#   FRONTDESK_BIN  the binary                          [target/release/frontdesk]
#   RTPLOAD_BIN    the load tool                       [bench/rtpload/target/release/rtpload]
#   FRONTDESK_LOG  RUST_LOG for frontdesk              [warn]
#   OUT            results folder                      [/tmp/frontdesk-bench-prompts-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CALLS="${CALLS:-200 1000 2000}"
RATE="${RATE:-200}"
MEASURE_S="${MEASURE_S:-10}"
SINK_PORT="${SINK_PORT:-40000}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
RTPLOAD_BIN="${RTPLOAD_BIN:-$ROOT/bench/rtpload/target/release/rtpload}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-prompts-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
NUMBER=+15550111

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "prompts.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$FRONTDESK_BIN" ] || { echo "prompts.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; }
[ -x "$RTPLOAD_BIN" ] || { echo "prompts.sh: no $RTPLOAD_BIN; run: cargo build --release --manifest-path bench/rtpload/Cargo.toml" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; SINK_PID=""; SIPP_PID=""
stop_all() {
  for pid in $SIPP_PID $SINK_PID $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SIPP_PID $SINK_PID $FPID; do kill -9 "$pid" 2>/dev/null; done
  SIPP_PID=""; SINK_PID=""; FPID=""
  true
}
trap stop_all EXIT INT TERM

cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp; } | tee "$OUT/machine.txt"
python3 "$ROOT/bench/bench-dialplan.py" "$OUT/dialplan" 0 5099 > /dev/null || exit 1

for n in $CALLS; do
  dir="$OUT/calls-$n"; mkdir -p "$dir"
  ramp=$(( (n + RATE - 1) / RATE ))
  warmup=$(( ramp + 6 ))                      # the last call is past the emergency notice
  hold_ms=$(( (warmup + MEASURE_S + 3) * 1000 ))
  RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
      --rtp-ports 20000-39999 --rtp-timeout 600 --data "$dir/data" --admin-token bench-token \
      --dialplan "$OUT/dialplan/bench.toml" > "$dir/frontdesk.out" 2> "$dir/frontdesk.log" &
  FPID=$!; echo $FPID > "$dir/frontdesk.pid"
  port=""; deadline=$((SECONDS + 30))
  while [ -z "$port" ]; do
    line=$(grep -m1 '^sip-listening ' "$dir/frontdesk.out" 2>/dev/null) && port=${line##*:}
    kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$dir/frontdesk.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 30 s"; exit 1; }
    [ -n "$port" ] || sleep 0.2
  done
  timeout $(( warmup + MEASURE_S + 30 )) "$RTPLOAD_BIN" sink --listen $IP:$SINK_PORT \
      --warmup $warmup --seconds "$MEASURE_S" > "$dir/sink.json" 2> "$dir/sink.err" &
  SINK_PID=$!
  ( cd "$dir" && exec timeout $(( hold_ms / 1000 + ramp + 60 )) sipp "$IP:$port" \
      -sf "$ROOT/bench/sipp/caller.xml" -s "$NUMBER" -set rtp_port "$SINK_PORT" -set dtmf 0 \
      -i $IP -bind_local -r "$RATE" -m "$n" -l $(( n + 10 )) -d "$hold_ms" \
      -buff_size 4194304 -recv_timeout 10000 -timeout $(( hold_ms / 1000 + ramp + 40 ))s \
      -nostdin -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1 ) &
  SIPP_PID=$!
  sleep "$warmup"
  c0=$(cpu_ticks $FPID); t0=$(date +%s.%N)
  ( sleep $(( MEASURE_S / 2 )); top -bn1 -w 200 | sed -n 7,16p > "$dir/top.txt" ) &
  wait $SINK_PID; SINK_PID=""
  c1=$(cpu_ticks $FPID); t1=$(date +%s.%N)
  cut -d' ' -f1 /proc/loadavg > "$dir/loadavg"
  wait $SIPP_PID; rc=$?; SIPP_PID=""
  echo "$n $rc $c0 $c1 $t0 $t1 $(getconf CLK_TCK)" > "$dir/step.txt"
  stop_all
  python3 - "$dir" <<'PY'
import csv, json, os, sys
d = sys.argv[1]
n, rc, c0, c1, t0, t1, hz = open(os.path.join(d, "step.txt")).read().split()
sink = json.loads(open(os.path.join(d, "sink.json")).read() or "{}")
ok = failed = 0
try:
    rows = list(csv.reader(open(os.path.join(d, "stat.csv")), delimiter=";"))
    last = dict(zip(rows[0], rows[-1]))
    ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
except (OSError, KeyError, IndexError, ValueError):
    pass
row = dict(calls=int(n), sipp_rc=int(rc), sipp_ok=ok, sipp_failed=failed,
           frontdesk_cpu_pct=round(100 * (int(c1) - int(c0)) / int(hz) / (float(t1) - float(t0)), 1),
           load1=open(os.path.join(d, "loadavg")).read().strip(), **sink)
json.dump(row, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(row))
PY
  sleep 2
done

python3 - "$OUT" $CALLS <<'PY'
import json, os, sys
out, calls = sys.argv[1], sys.argv[2:]
hdr = ("calls", "streams heard", "packets/s", "lost", "dev p50 µs", "p90", "p99", "p99.9", "max",
       "gaps > 25 ms", "rcvbuf errors", "frontdesk CPU %", "SIPp ok/failed", "load 1m", "p99 <= 2 ms")
print("\n| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for n in calls:
    try:
        r = json.load(open(os.path.join(out, f"calls-{n}", "report.json")))
    except (OSError, ValueError):
        print(f"| {n} | no report |"); continue
    dev = r.get("interarrival_deviation_us", {})
    print("| " + " | ".join(str(v) for v in (
        r["calls"], r.get("streams"), r.get("packets_per_s"), r.get("lost"), dev.get("p50"),
        dev.get("p90"), dev.get("p99"), dev.get("p999"), dev.get("max"), r.get("gaps_over_5ms_late"),
        r.get("udp_rcvbuf_errors"), r["frontdesk_cpu_pct"], f"{r['sipp_ok']}/{r['sipp_failed']}",
        r["load1"], "yes" if dev.get("p99", 10**9) <= 2000 and r.get("streams") == r["calls"] else "no")) + " |")
PY
