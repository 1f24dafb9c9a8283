#!/usr/bin/env bash
# CPU per recording call (issue 22): N callers leaving voicemails at once,
# against the same N callers listening to hold music, end to end through
# the daemon:
#
#   SIPp bench/sipp/caller.xml --SIP--> frontdesk 127.0.0.1:<free port>
#     +15550122 (this script's number): the emergency notice, a short
#       greeting and the beep, then the recording (max_length and
#       silence_after set past the run)
#     +15550111 (the demo's): the emergency notice, then the urgent-care
#       queue with nobody signed in: "please hold", then hold music
#   bench/voicemail-phones.py on PHONES_PORT: every call's SDP names it; it
#     speaks 20 ms PCMU to every call in both modes (so inbound RTP is the
#     same; the difference is recording vs playing)
#
# Per step, N calls are placed at RATE calls/s and held; once all are past
# their prompts, frontdesk's CPU (utime + stime from /proc/PID/stat) is
# measured for MEASURE_S seconds. A fresh daemon per step, its --data in
# OUT. Everything is bounded (SIPp -timeout, outer `timeout`, readiness
# deadline); loopback only; what the script starts it stops, by PID.
#
# Needs: sipp, python3, a release build of frontdesk (cargo build --release
# -p frontdesk). Environment (defaults in brackets):
#   CALLS          concurrent calls per step           ["100 200"]
#   MODES          what the calls do                   ["hold voicemail"]
#   RATE           calls/s while calls are placed      [50]
#   MEASURE_S      seconds measured once all are up    [20]
#   PHONES_PORT    the callers' RTP socket             [40100]
#   FRONTDESK_BIN  the binary                          [target/release/frontdesk]
#   OUT            results folder                      [/tmp/frontdesk-bench-voicemail-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CALLS="${CALLS:-100 200}"
MODES="${MODES:-hold voicemail}"
RATE="${RATE:-50}"
MEASURE_S="${MEASURE_S:-20}"
PHONES_PORT="${PHONES_PORT:-40100}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
OUT="${OUT:-/tmp/frontdesk-bench-voicemail-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "voicemail.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$FRONTDESK_BIN" ] || { echo "voicemail.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; PHONES_PID=""; SIPP_PID=""
stop_all() {
  for pid in $SIPP_PID $PHONES_PID $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SIPP_PID $PHONES_PID $FPID; do kill -9 "$pid" 2>/dev/null; done
  SIPP_PID=""; PHONES_PID=""; FPID=""
  true
}
trap stop_all EXIT INT TERM

cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp; } | tee "$OUT/machine.txt"
python3 "$ROOT/bench/bench-dialplan.py" "$OUT/dialplan" 0 5099 > /dev/null || exit 1
# The voicemail number, a short greeting, and no end before the run's.
python3 - "$OUT/dialplan/bench.toml" <<'PY' || exit 1
import sys
path = sys.argv[1]
text = open(path).read()
number = '''[[numbers]]
number = "+15550122"
source = "bench-voicemail"
announce = ["prompts/emergency-notice.wav"]
then = { voicemail = "front-desk" }

'''
at = text.index("[[numbers]]")
text = text[:at] + number + text[at:]
text = text.replace('greeting = "prompts/voicemail-greeting.wav"', 'greeting = "prompts/digit-1.wav"')
text = text.replace('max_length = "120s"', 'max_length = "600s"')
text = text.replace('silence_after = "5s"', 'silence_after = "600s"')
open(path, "w").write(text)
PY

for mode in $MODES; do
  case $mode in
    hold) number=+15550111 ;;
    voicemail) number=+15550122 ;;
    *) echo "voicemail.sh: unknown mode $mode" >&2; exit 1 ;;
  esac
  for n in $CALLS; do
    dir="$OUT/$mode-$n"; mkdir -p "$dir"
    ramp=$(( (n + RATE - 1) / RATE ))
    warmup=$(( ramp + 12 ))                   # notice, greeting and beep (or hold prompt) done
    hold_ms=$(( (warmup + MEASURE_S + 3) * 1000 ))
    NO_COLOR=1 RUST_LOG=warn "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
        --rtp-ports 20000-39999 --rtp-timeout 600 --data "$dir/data" --admin-token bench-token \
        --dialplan "$OUT/dialplan/bench.toml" > "$dir/frontdesk.out" 2> "$dir/frontdesk.log" &
    FPID=$!
    port=""; deadline=$((SECONDS + 30))
    while [ -z "$port" ]; do
      line=$(grep -m1 '^sip-listening ' "$dir/frontdesk.out" 2>/dev/null) && port=${line##*:}
      kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$dir/frontdesk.log"; exit 1; }
      [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 30 s"; exit 1; }
      [ -n "$port" ] || sleep 0.2
    done
    timeout $(( hold_ms / 1000 + 20 )) python3 "$ROOT/bench/voicemail-phones.py" "$PHONES_PORT" \
        $(( hold_ms / 1000 + 5 )) > "$dir/phones.json" 2> "$dir/phones.err" &
    PHONES_PID=$!
    ( cd "$dir" && exec timeout $(( hold_ms / 1000 + ramp + 60 )) sipp "$IP:$port" \
        -sf "$ROOT/bench/sipp/caller.xml" -s "$number" -set rtp_port "$PHONES_PORT" -set dtmf 0 \
        -i $IP -bind_local -r "$RATE" -m "$n" -l $(( n + 10 )) -d "$hold_ms" \
        -recv_timeout 10000 -timeout $(( hold_ms / 1000 + ramp + 40 ))s \
        -nostdin -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1 ) &
    SIPP_PID=$!
    sleep "$warmup"
    c0=$(cpu_ticks $FPID); t0=$(date +%s.%N)
    sleep "$MEASURE_S"
    c1=$(cpu_ticks $FPID); t1=$(date +%s.%N)
    recordings=$(find "$dir/data/voicemail" -name '*.wav' 2>/dev/null | wc -l)
    cut -d' ' -f1 /proc/loadavg > "$dir/loadavg"
    wait $SIPP_PID; rc=$?; SIPP_PID=""
    wait $PHONES_PID; PHONES_PID=""
    stop_all
    python3 - "$dir" "$mode" "$n" "$rc" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" "$recordings" <<'PY'
import csv, json, os, sys
d, mode, n, rc, c0, c1, t0, t1, hz, recordings = sys.argv[1:]
ok = failed = 0
try:
    rows = list(csv.reader(open(os.path.join(d, "stat.csv")), delimiter=";"))
    last = dict(zip(rows[0], rows[-1]))
    ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
except (OSError, KeyError, IndexError, ValueError):
    pass
cpu = 100 * (int(c1) - int(c0)) / int(hz) / (float(t1) - float(t0))
try:
    phones = json.loads(open(os.path.join(d, "phones.json")).read() or "{}")
except (OSError, ValueError):
    phones = {}
row = dict(mode=mode, calls=int(n), sipp_rc=int(rc), sipp_ok=ok, sipp_failed=failed,
           recordings=int(recordings), frontdesk_cpu_pct=round(cpu, 1),
           cpu_pct_per_call=round(cpu / int(n), 3),
           load1=open(os.path.join(d, "loadavg")).read().strip(), **phones)
json.dump(row, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(row))
PY
  done
done
