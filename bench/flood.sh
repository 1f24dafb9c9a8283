#!/usr/bin/env bash
# One untrusted source floods, patients still get through (issue 17):
#
#   bench/flood.py  127.0.0.2 --UDP--> frontdesk  RATE requests/s for DURATION_S
#                   (INVITE, REGISTER, OPTIONS in turn, each a new transaction)
#   SIPp bench/sipp/caller.xml 127.0.0.1 --UDP--> frontdesk  CALLS_PER_S calls/s, same time
#                   (INVITE -> 200 -> ACK, HOLD_MS, BYE -> 200)
#
# The clinic is the demo clinic, always open (bench/bench-dialplan.py), with
# 127.0.0.2 made untrusted and the default [limits] (20 messages/s, bursts
# of 40, a 60 s ban). Passes when >= 99 % of the legitimate calls succeed
# and <= 5 % of the flood's requests are answered. Records the daemon's CPU
# (utime + stime over the run) and its RSS (sampled every second, and the
# peak). Everything is bounded (SIPp -timeout, outer `timeout`, the
# flooder's own end, a readiness deadline); loopback only; what the script
# starts it stops, by PID.
#
# Needs: sipp, python3, a release build of frontdesk.
#
# Environment (defaults in brackets):
#   RATE           flood requests/s                 [20000]
#   DURATION_S     seconds of flood and calls       [30]
#   CALLS_PER_S    legitimate calls/s               [50]
#   HOLD_MS        each legitimate call's length    [1000]
#   FRONTDESK_BIN  the binary                       [target/release/frontdesk]
#   FRONTDESK_LOG  RUST_LOG for frontdesk           [warn]
#   OUT            results folder                   [/tmp/frontdesk-bench-flood-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
RATE="${RATE:-20000}"
DURATION_S="${DURATION_S:-30}"
CALLS_PER_S="${CALLS_PER_S:-50}"
HOLD_MS="${HOLD_MS:-1000}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-flood-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
FLOODER=127.0.0.2

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "flood.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$FRONTDESK_BIN" ] || { echo "flood.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; SPID=""; LPID=""; MPID=""
stop_all() {
  for pid in $MPID $LPID $SPID $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $MPID $LPID $SPID $FPID; do kill -9 "$pid" 2>/dev/null; done
  MPID=""; LPID=""; SPID=""; FPID=""
  true
}
trap stop_all EXIT INT TERM

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp;
  echo "flood $RATE/s from $FLOODER for $DURATION_S s; $CALLS_PER_S calls/s from $IP, ${HOLD_MS} ms each"; } \
  | tee "$OUT/machine.txt"

python3 "$ROOT/bench/bench-dialplan.py" "$OUT/dialplan" 0 9 > /dev/null || exit 1
python3 - "$OUT/dialplan/bench.toml" "$FLOODER" <<'PY' || exit 1
import sys
path, flooder = sys.argv[1], sys.argv[2]
text = open(path).read()
assert text.count("\n[trust]\n") == 1
open(path, "w").write(text.replace("\n[trust]\n", '\n[trust]\nuntrusted = ["%s"]\n' % flooder, 1))
PY

RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
    --rtp-ports 20000-29999 --data "$OUT/data" --admin-token bench-token \
    --dialplan "$OUT/dialplan/bench.toml" > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
FPID=$!; echo $FPID > "$OUT/frontdesk.pid"
port=""; http=""; deadline=$((SECONDS + 60))
while [ -z "$http" ]; do
  line=$(grep -m1 '^sip-listening ' "$OUT/frontdesk.out" 2>/dev/null) && port=${line##*:}
  line=$(grep -m1 '^http-listening ' "$OUT/frontdesk.out" 2>/dev/null) && http=${line#http-listening }
  kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$OUT/frontdesk.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 60 s"; exit 1; }
  [ -n "$http" ] || sleep 0.2
done
echo "frontdesk on $IP:$port (pid $FPID)"
rss0=$(rss_kib $FPID)

# RSS every second while the load runs.
( while kill -0 $FPID 2>/dev/null; do echo "$(date +%s) $(rss_kib $FPID)"; sleep 1; done ) > "$OUT/rss.txt" &
MPID=$!

calls=$(( CALLS_PER_S * DURATION_S ))
c0=$(cpu_ticks $FPID); t0=$(date +%s.%N)
( cd "$OUT" && exec timeout $(( DURATION_S + 90 )) sipp "$IP:$port" -sf "$ROOT/bench/sipp/caller.xml" \
    -s +15550100 -set rtp_port 9 -set dtmf 0 -d "$HOLD_MS" -t u1 -i $IP -bind_local \
    -r "$CALLS_PER_S" -m "$calls" -l $(( CALLS_PER_S * 20 )) -recv_timeout 10000 \
    -timeout $(( DURATION_S + 60 ))s -nostdin -trace_err -trace_stat -stf legit_stat.csv -fd 1 \
    > legit.out 2>&1 ) &
SPID=$!
( exec timeout $(( DURATION_S + 30 )) python3 "$ROOT/bench/flood.py" $FLOODER $IP "$port" \
    "$RATE" "$DURATION_S" "$OUT/flood.json" > "$OUT/flood.out" 2>&1 ) &
LPID=$!
( sleep $(( DURATION_S / 2 )); top -bn1 -w 200 | sed -n 7,16p > "$OUT/top.txt" ) &
wait $LPID; LPID=""
c1=$(cpu_ticks $FPID); t1=$(date +%s.%N)
wait $SPID; SPID=""
hwm=$(hwm_kib $FPID)
curl -s "http://$http/metrics" > "$OUT/metrics.txt"
kill $MPID 2>/dev/null; MPID=""

hz=$(getconf CLK_TCK)
python3 - "$OUT" "$c0" "$c1" "$t0" "$t1" "$hz" "$rss0" "$hwm" "$calls" \
    "$(stat_last "$OUT/legit_stat.csv" "SuccessfulCall(C)")" \
    "$(stat_last "$OUT/legit_stat.csv" "FailedCall(C)")" <<'PY'
import json, sys
out, c0, c1, t0, t1, hz, rss0, hwm, calls, ok, failed = sys.argv[1:]
flood = json.load(open(out + "/flood.json"))
cpu = (float(c1) - float(c0)) / float(hz) / (float(t1) - float(t0)) * 100
rss = [int(line.split()[1]) for line in open(out + "/rss.txt") if len(line.split()) == 2]
metrics = {}
for line in open(out + "/metrics.txt"):
    if line.startswith("frontdesk_sip_") and not line.startswith("#"):
        name, _, value = line.rpartition(" ")
        metrics[name] = value.strip()
answered = 100.0 * flood["answered"] / max(flood["sent"], 1)
completed = 100.0 * int(ok) / max(int(calls), 1)
print("| flood sent | flood answered | legitimate calls | completed | failed | frontdesk CPU | RSS before → max during (peak) |")
print("|---|---|---|---|---|---|---|")
print("| %d (%d/s) | %d (%.3f %%) | %s | %s (%.2f %%) | %s | %.1f %% | %.1f → %.1f MiB (%.1f) |" % (
    flood["sent"], flood["sent"] / flood["seconds"], flood["answered"], answered, calls, ok,
    completed, failed, cpu, int(rss0) / 1024, max(rss or [0]) / 1024, int(hwm) / 1024))
for name in sorted(metrics):
    if "dropped" in name or "bans" in name or "banned" in name:
        print("%s %s" % (name, metrics[name]))
verdict = "PASS" if completed >= 99.0 and answered <= 5.0 else "FAIL"
print("%s: >= 99 %% of legitimate calls completed (%.2f %%), <= 5 %% of the flood answered (%.3f %%)"
      % (verdict, completed, answered))
PY
