#!/usr/bin/env bash
# The whole call, per second (issue 8: >= 1,000 calls/s with < 0.1 % failed),
# frontdesk next to Kamailio's proxy rate in the same run:
#
#   SIPp bench/sipp/caller.xml --UDP--> frontdesk 127.0.0.1:<free port> --UDP--> SIPp bench/sipp/agent.xml
#     INVITE +15550100 -> 200 -> ACK       (the emergency notice starts)
#     key 3 by RFC 4733 at once            (barges in: menu key 3 -> pediatrics)
#                                          queue -> INVITE to a free agent -> 200 -> ACK, bridged
#     talks TALK_MS -> BYE -> 200          BYE to the agent -> 200; the agent wraps up 2 s
#   then ../shared/peers/bench-kamailio.sh at the same rates (registrar +
#   stateful proxy, the lab's uac-call.xml -> uas-agent.xml)
#
# The clinic is the demo clinic, always open, with AGENTS more pediatrics
# agents (bench/bench-dialplan.py), all registered by SIPp with digest auth
# at the port of one SIPp UAS that answers for all of them. An agent takes
# one call at a time and then wraps up for 2 s, so a rate R needs about
# R x (TALK_MS + 2 s + set-up) agents: AGENTS must be >= 4 x the highest rate.
#
# A caller's call fails when SIPp counts it failed, and also when it ends
# without reaching an agent: per step, failed = SIPp's failed callers +
# (successful callers - calls the agents' SIPp completed in that step).
# A step passes with failed < 0.1 % and >= 95 % of the asked rate achieved.
# Set-up time (INVITE -> 200, SIPp rtd 1) and CPU of frontdesk and of both
# SIPp instances are recorded. A fresh daemon per run, the steps one after
# the other with a pause for the agents' wrap-up. Everything is bounded
# (SIPp -timeout, outer `timeout`, readiness deadline); loopback only; what
# the script starts it stops, by PID.
#
# Needs: sipp, kamailio, python3, a release build of frontdesk.
#
# Environment (defaults in brackets):
#   RATES          calls/s to try                  ["200 500 1000 1500 2000"]
#   STEP_S         seconds of calls per step       [10]
#   TALK_MS        the caller's call after the key [1200]
#   AGENTS         bench agents                    [max(RATES) x 4]
#   TARGETS        what to load                    ["frontdesk kamailio"]
#   KAMAILIO_HOLD_MS  Kamailio's call hold         [TALK_MS]
#   FRONTDESK_BIN  the binary                      [target/release/frontdesk]
#   FRONTDESK_LOG  RUST_LOG for frontdesk          [warn]
#   FRONTDESK_FLAGS more flags for `frontdesk run`, e.g. "--worker-nice 10" [none]
#   RELAY          lossy-relay flags; when set, the callers reach frontdesk
#                  through bench/lossy-relay (SIP and RTP, both ways), e.g.
#                  "--loss 0.05 --jitter-ms 50 --seed 18"; use TARGETS=frontdesk
#                                                  [unset: no relay]
#   RELAY_BIN      the relay                       [bench/lossy-relay/target/release/lossy-relay]
#   SIPP_NICE      nice steps for every SIPp (both targets), so the load
#                  generator does not preempt the server it measures   [0]
#   OUT            results folder                  [/tmp/frontdesk-bench-callflow-<date>]
#   CAPTURE_RATE   frontdesk: the steps (one rate or a list) whose SIP traffic
#                  is captured on lo (dumpcap, CAPTURE_S seconds from 2 s into
#                  the step) to time each new INVITE to its final answer: the
#                  503s of admission control (p50/p99/max, share over 50 ms)
#                  and the 200s                                      [none]
#   CAPTURE_S      seconds captured                [3]
#   RTP_PORTS      frontdesk --rtp-ports          [20000-59999; give a range
#                  apart from soak.sh's 20000-29999 to run beside it]
#
# With RELAY, a digit the relay lost (all its RFC 4733 packets) sends the
# call to the main menu and then the front desk, where no agent is signed
# in: it is not bridged, so it counts as failed like any call that does not
# reach an agent. The callers' SIPp ignores a late 100/180 overtaken by the
# 200 (-default_behaviors all,-abortunexp), as a phone does; the relay's
# last counters are kept in each step's relay.txt.
# Goodput (issue 18): per frontdesk step, the calls refused by admission
# control (the callers' SIPp calls that ended on the 503 with Retry-After;
# frontdesk_calls_refused_total, which also counts the 503s answering
# retransmitted INVITEs, is kept as "refusals_sent" in the step's JSON),
# the calls accepted (created - refused), the calls that
# reached an agent per second of the step (goodput), and the accepted calls
# that did not reach an agent ("accepted failed": must be 0); printed as a
# second table with the 503 and 200 times of the captured steps.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
PEERS="${PEERS:-$ROOT/../shared/peers}"
RATES="${RATES:-200 500 1000 1500 2000}"
STEP_S="${STEP_S:-10}"
TALK_MS="${TALK_MS:-1200}"
max_rate=0; for r in $RATES; do [ "$r" -gt "$max_rate" ] && max_rate=$r; done
AGENTS="${AGENTS:-$(( max_rate * 4 ))}"
TARGETS="${TARGETS:-frontdesk kamailio}"
KAMAILIO_HOLD_MS="${KAMAILIO_HOLD_MS:-$TALK_MS}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
FRONTDESK_FLAGS="${FRONTDESK_FLAGS:-}"
RELAY="${RELAY:-}"
RELAY_BIN="${RELAY_BIN:-$ROOT/bench/lossy-relay/target/release/lossy-relay}"
OUT="${OUT:-/tmp/frontdesk-bench-callflow-$(date +%Y%m%d-%H%M%S)}"
CAPTURE_RATE="${CAPTURE_RATE:-}"
CAPTURE_S="${CAPTURE_S:-3}"
RTP_PORTS="${RTP_PORTS:-20000-59999}"
SIPP_NICE="${SIPP_NICE:-0}"
IP=127.0.0.1
SIPP_BUFF=4194304

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "callflow.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$FRONTDESK_BIN" ] || { echo "callflow.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; }
[ -z "$RELAY" ] || [ -x "$RELAY_BIN" ] || {
  echo "callflow.sh: no $RELAY_BIN; run: cargo build --release --manifest-path bench/lossy-relay/Cargo.toml" >&2; exit 1; }
[ "$AGENTS" -le 50000 ] || { echo "callflow.sh: AGENTS <= 50000" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; UPID=""; CPID=""; RPID=""
stop_all() {
  for pid in $CPID $UPID $RPID $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $CPID $UPID $RPID $FPID; do kill -9 "$pid" 2>/dev/null; done
  CPID=""; UPID=""; RPID=""; FPID=""
  true
}
trap stop_all EXIT INT TERM

# SIPP_NICE: every SIPp of the run (callers, agents, and Kamailio's, through
# PATH) runs that many nice steps below the server under test. The load
# generator shares the server's two cores here; on a real network it is
# another machine. Without it, at 3,000 calls/s the callers' SIPp takes
# 0.8 of a core and preempts the server's threads (BENCHMARKS.md, issue 18).
if [ "$SIPP_NICE" != 0 ]; then
  mkdir -p "$OUT/bin"
  printf '#!/bin/sh\nexec nice -n %s %s "$@"\n' "$SIPP_NICE" "$(command -v sipp)" > "$OUT/bin/sipp"
  chmod +x "$OUT/bin/sipp"; export PATH="$OUT/bin:$PATH"
fi


{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp; kamailio -v 2>/dev/null | head -1;
  echo "rates $RATES, step ${STEP_S} s, talk ${TALK_MS} ms, agents $AGENTS, SIPp nice $SIPP_NICE";
  [ -z "$RELAY" ] || echo "callers through lossy-relay $RELAY"; } | tee "$OUT/machine.txt"

if [[ " $TARGETS " == *" frontdesk "* ]]; then
  UAS_PORT=$(free_port)
  python3 "$ROOT/bench/bench-dialplan.py" "$OUT/dialplan" "$AGENTS" "$UAS_PORT" > /dev/null || exit 1
  RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
      --rtp-ports "$RTP_PORTS" --data "$OUT/data" --admin-token bench-token \
      --dialplan "$OUT/dialplan/bench.toml" $FRONTDESK_FLAGS > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
  FPID=$!; echo $FPID > "$OUT/frontdesk.pid"
  port=""; http=""; deadline=$((SECONDS + 60))
  while [ -z "$http" ]; do
    line=$(grep -m1 '^sip-listening ' "$OUT/frontdesk.out" 2>/dev/null) && port=${line##*:}
    line=$(grep -m1 '^http-listening ' "$OUT/frontdesk.out" 2>/dev/null) && http=${line#http-listening }
    kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$OUT/frontdesk.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 60 s"; exit 1; }
    [ -n "$http" ] || sleep 0.2
  done
  echo "frontdesk on $IP:$port (pid $FPID), agents' SIPp on $IP:$UAS_PORT"
  callers_to="$IP:$port"; caller_flags=()
  if [ -n "$RELAY" ]; then
    # shellcheck disable=SC2086 # RELAY is a list of flags
    "$RELAY_BIN" --server "$IP:$port" --stats-every-s 1 $RELAY > "$OUT/relay.out" 2> "$OUT/relay.log" &
    RPID=$!
    deadline=$((SECONDS + 10))
    until line=$(grep -m1 '^relay-listening ' "$OUT/relay.out" 2>/dev/null); do
      kill -0 $RPID 2>/dev/null || { echo "lossy-relay exited"; cat "$OUT/relay.log"; exit 1; }
      [ $SECONDS -lt $deadline ] || { echo "lossy-relay not ready in 10 s"; exit 1; }
      sleep 0.1
    done
    callers_to=${line#relay-listening }
    caller_flags=(-default_behaviors all,-abortunexp)
    echo "callers through lossy-relay on $callers_to (pid $RPID): $RELAY"
  fi

  # Every bench agent registers (digest auth) with the agents' SIPp as contact.
  ( cd "$OUT" && timeout 120 sipp "$IP:$port" -sf "$ROOT/tests/sipp/register-agent.xml" \
      -inf "$OUT/dialplan/agents.csv" -t u1 -i $IP -bind_local -r 2000 -rp 1000 -m "$AGENTS" \
      -l 4000 -buff_size $SIPP_BUFF -recv_timeout 5000 -timeout 100s -nostdin \
      -trace_stat -stf register_stat.csv -fd 1 > register.out 2>&1 )
  registered=$(stat_last "$OUT/register_stat.csv" "SuccessfulCall(C)")
  echo "agents registered: $registered of $AGENTS"
  [ "$registered" -eq "$AGENTS" ] || { echo "registration failed"; tail "$OUT/register.out"; exit 1; }

  total=0; for r in $RATES; do total=$(( total + r * STEP_S )); done
  nsteps=$(echo $RATES | wc -w)
  uas_timeout=$(( nsteps * (STEP_S + 40) + 60 ))
  ( cd "$OUT" && exec timeout $(( uas_timeout + 10 )) sipp -sf "$ROOT/bench/sipp/agent.xml" \
      -i $IP -p "$UAS_PORT" -set rtp_port 9 -m "$total" -l $(( max_rate * 10 + 1000 )) \
      -buff_size $SIPP_BUFF -nostdin -timeout ${uas_timeout}s -trace_err \
      -trace_stat -stf uas_stat.csv -fd 1 > uas.out 2>&1 ) &
  UPID=$!
  sleep 1
  UAS_SIPP=$(ps -o pid= --ppid $UPID | head -1 | tr -d ' '); UAS_SIPP=${UAS_SIPP:-$UPID}
  metric() { curl -s "http://$http/metrics" | awk -v m="$1" '$1 == m { print $2 }' | head -1; }
  # The sum of a counter over its labels.
  metric_sum() { curl -s "http://$http/metrics" | awk -v m="$1" 'index($1, m "{") == 1 || $1 == m { s += $2 } END { printf "%d", s }'; }

  for rate in $RATES; do
    step="$OUT/frontdesk-$rate"; mkdir -p "$step"
    m=$(( rate * STEP_S ))
    agents0=$(stat_last "$OUT/uas_stat.csv" "SuccessfulCall(C)")
    connected0=$(metric 'frontdesk_calls_total{outcome="connected"}'); connected0=${connected0:-0}
    refused0=$(metric_sum frontdesk_calls_refused_total)
    f0=$(cpu_ticks $FPID); u0=$(cpu_ticks $UAS_SIPP); t0=$(date +%s.%N)
    ( sleep $(( STEP_S / 2 )); top -bn1 -w 200 | sed -n 7,16p > "$step/top.txt" ) &
    ( sleep $STEP_S; cpu_ticks $FPID > "$step/f1"; cpu_ticks $UAS_SIPP > "$step/u1" ) &
    SPID=$!
    if [[ " $CAPTURE_RATE " == *" $rate "* ]]; then
      ( sleep 2; exec timeout $(( CAPTURE_S + 20 )) dumpcap -q -i lo -f "udp port $port" -B 64 -s 512 -P \
          -a duration:$CAPTURE_S -w "$step/cap.pcap" > "$step/dumpcap.out" 2>&1 ) &
    fi
    # The callers' media port: a free one, not SIPp's fixed default (another
    # SIPp on the machine, a test's, may hold 16000).
    media_port=$(free_media_port)
    ( cd "$step" && exec /usr/bin/time -f "%U %S %e" -o uac.time timeout $(( STEP_S + 60 )) \
        sipp "$callers_to" -sf "$ROOT/bench/sipp/caller.xml" -s +15550100 -set dtmf 1 \
        -set rtp_port $media_port -mp $media_port -i $IP -bind_local -r "$rate" -rp 1000 -m $m \
        -l $(( rate * 5 + 100 )) -d "$TALK_MS" -buff_size $SIPP_BUFF -recv_timeout 8000 \
        -timeout $(( STEP_S + 50 ))s -nostdin -trace_stat -fd 1 -stf uac_stat.csv \
        -trace_rtt -rtt_freq 20 -trace_err "${caller_flags[@]}" > uac.out 2>&1 )
    rc=$?
    wait $SPID
    # the agents' calls end with the callers' BYE; then their 2 s wrap-up
    sleep 4
    agents1=$(stat_last "$OUT/uas_stat.csv" "SuccessfulCall(C)")
    connected1=$(metric 'frontdesk_calls_total{outcome="connected"}'); connected1=${connected1:-0}
    refused1=$(metric_sum frontdesk_calls_refused_total)
    cut -d' ' -f1 /proc/loadavg > "$step/loadavg"
    [ -z "$RELAY" ] || grep '^stats ' "$OUT/relay.log" | tail -1 > "$step/relay.txt"
    fcpu=$(echo "scale=1; ($(cat "$step/f1") - $f0) / $STEP_S" | bc)
    ucpu=$(echo "scale=1; ($(cat "$step/u1") - $u0) / $STEP_S" | bc)
    read -r cu cs ce < <(tail -1 "$step/uac.time" 2>/dev/null) || true
    case "$cu$cs$ce" in *[!0-9.]*|"") cu=0; cs=0; ce=1;; esac
    ccpu=$(echo "scale=1; 100 * ($cu + $cs) / $ce" | bc)
    python3 "$PEERS/tools/sipp_step_report.py" "$step" "$rate" "$fcpu" "$ucpu" "$ccpu" > "$step/sipp.json"
    if [ -f "$step/cap.pcap" ]; then
      python3 "$ROOT/bench/sip_answers.py" "$step/cap.pcap" "$port" > "$step/answers.json"
      echo "answers at $rate/s: $(cat "$step/answers.json")"
    fi
    python3 - "$step" "$rc" $(( agents1 - agents0 )) "${connected0%.*}" "${connected1%.*}" \
        $(( refused1 - refused0 )) "$STEP_S" <<'PY'
import json, os, sys
d, rc, agent_calls, c0, c1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
refused, step_s = int(sys.argv[6]), int(sys.argv[7])
x = json.load(open(os.path.join(d, "sipp.json")))
x["frontdesk_cpu_pct"] = x.pop("kamailio_cpu_pct")
x["target"] = "frontdesk"
x["sipp_rc"] = rc
x["agent_calls_completed"] = agent_calls
x["connected_by_frontdesk"] = c1 - c0
unbridged = max(0, x["successful"] - agent_calls)
x["not_bridged"] = unbridged
total = x["successful"] + x["failed"]
x["failed_total"] = x["failed"] + unbridged
x["failed_total_pct"] = round(100.0 * x["failed_total"] / total, 3) if total else None
x["load1"] = open(os.path.join(d, "loadavg")).read().strip()
# A call refused is one SIPp's caller saw end on the 503 (an unexpected
# message in its scenario). The daemon's counter counts 503s sent, one per
# retransmitted INVITE too, so it is kept apart.
x["refused_503"] = x["failed_unexpected"]
x["refusals_sent"] = refused
x["accepted"] = x["calls_created"] - x["refused_503"]
x["accepted_failed"] = max(0, x["accepted"] - agent_calls)
x["goodput_cps"] = round(agent_calls / step_s, 1)
try:
    x["answers"] = json.load(open(os.path.join(d, "answers.json")))
except (OSError, ValueError):
    x["answers"] = None
try:
    x["relay"] = open(os.path.join(d, "relay.txt")).read().strip() or None
except OSError:
    x["relay"] = None
x["passed"] = (x["failed_total_pct"] is not None and x["failed_total_pct"] < 0.1
               and x["rate_achieved"] >= 0.95 * x["rate_target"])
json.dump(x, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(x))
PY
  done
  stop_all
fi

if [[ " $TARGETS " == *" kamailio "* ]]; then
  echo "kamailio: $PEERS/bench-kamailio.sh RATES=\"$RATES\" STEP_S=$STEP_S HOLD_MS=$KAMAILIO_HOLD_MS"
  RATES="$RATES" STEP_S="$STEP_S" HOLD_MS="$KAMAILIO_HOLD_MS" CAPTURE_RATE="" OUT="$OUT/kamailio" \
    timeout $(( $(echo $RATES | wc -w) * (STEP_S + 80) + 120 )) "$PEERS/bench-kamailio.sh" \
    > "$OUT/kamailio.out" 2>&1
  tail -12 "$OUT/kamailio.out"
fi

python3 - "$OUT" $RATES <<'PY'
import json, os, sys
out, rates = sys.argv[1], sys.argv[2:]
rows = []
for r in rates:
    try:
        rows.append(json.load(open(os.path.join(out, f"frontdesk-{r}", "report.json"))))
    except (OSError, ValueError):
        pass
try:
    kam = json.load(open(os.path.join(out, "kamailio", "summary.json")))
except (OSError, ValueError):
    kam = []
for k in kam:
    k["target"] = "kamailio"
    k["failed_total"], k["failed_total_pct"] = k["failed"], k["failed_pct"]
    k["not_bridged"] = None
    k["frontdesk_cpu_pct"] = k.get("kamailio_cpu_pct")
    k["load1"] = k.get("loadavg1")
    k["passed"] = (k["failed_pct"] is not None and k["failed_pct"] < 0.1
                   and k["rate_achieved"] >= 0.95 * k["rate_target"])
def f(v): return "-" if v is None else str(v)
hdr = ("server", "asked cps", "achieved cps", "calls", "failed (SIPp)", "not bridged", "failed %",
       "retrans", "set-up p50 ms", "set-up p99 ms", "server CPU %", "agents' SIPp CPU %",
       "callers' SIPp CPU %", "load 1m", "passed")
print("\n| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for x in sorted(rows + kam, key=lambda x: (x["rate_target"], x["target"])):
    print("| " + " | ".join(f(v) for v in (
        x["target"], x["rate_target"], x["rate_achieved"], x["calls_created"], x["failed"],
        x["not_bridged"], x["failed_total_pct"], x["retransmissions"], x["setup_ms_p50"],
        x["setup_ms_p99"], x["frontdesk_cpu_pct"], x["sipp_uas_cpu_pct"], x["sipp_uac_cpu_pct"],
        x["load1"], "yes" if x["passed"] else "no")) + " |")
for x in rows:
    if x.get("relay"):
        print(f"relay at {x['rate_target']} calls/s, counters since the relay started: {x['relay']}")
best = {}
for name, mine in (("frontdesk", rows), ("kamailio", kam)):
    passed = [x for x in mine if x["passed"]]
    best[name] = max(passed, key=lambda x: x["rate_target"]) if passed else None
    b = best[name]
    print(f"{name}: highest rate with < 0.1 % failed and >= 95 % achieved: "
          + (f"{b['rate_target']} calls/s (achieved {b['rate_achieved']})" if b else "none"))
if any(x.get("refused_503") for x in rows) or any(x.get("answers") for x in rows):
    hdr = ("server", "offered cps", "calls", "refused 503", "accepted", "reached an agent",
           "goodput cps", "accepted failed", "503 p50/p99/max ms (over 50 ms)",
           "200 p50/p99/max ms", "server CPU %")
    print("\n| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for x in sorted(rows + kam, key=lambda x: (x["rate_target"], x["target"])):
        a = x.get("answers") or {}
        def t(code, over=False):
            v = a.get(code)
            if not v or not v.get("n"):
                return "-"
            s = f"{v['p50_ms']}/{v['p99_ms']}/{v['max_ms']} (n {v['n']}"
            return s + (f", {v['over_50ms']} over)" if over else ")")
        if x["target"] == "kamailio":
            cells = (x["target"], x["rate_target"], x["calls_created"], "-", "-", x["successful"],
                     round(x["successful"] / (x["calls_created"] / x["rate_target"]), 1)
                     if x["calls_created"] else "-", x["failed"], "-", "-", x["frontdesk_cpu_pct"])
        else:
            cells = (x["target"], x["rate_target"], x["calls_created"], x["refused_503"],
                     x["accepted"], x["agent_calls_completed"], x["goodput_cps"],
                     x["accepted_failed"], t("503", True), t("200"), x["frontdesk_cpu_pct"])
        print("| " + " | ".join(f(v) for v in cells) + " |")
if best["frontdesk"] and best["kamailio"]:
    print(f"ratio frontdesk / kamailio: {best['frontdesk']['rate_target'] / best['kamailio']['rate_target']:.2f}")
json.dump(rows + kam, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
