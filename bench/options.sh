#!/usr/bin/env bash
# OPTIONS transactions per second over UDP: frontdesk next to Kamailio, in
# the same run, on the same cores, with the same SIPp scenario
# (tests/sipp/options-bench.xml: OPTIONS -> 200, nothing else).
#
#   SIPp (1 or more instances) --UDP--> frontdesk   127.0.0.1:<free port>
#   SIPp (1 or more instances) --UDP--> kamailio    127.0.0.1:5070
#                                       (../shared/peers/kamailio/kamailio.cfg:
#                                        sl_send_reply 200 to OPTIONS)
#
# For each rate the two servers are loaded one after the other (the order
# alternates from one rate to the next), each for STEP_S seconds
# (-m RATE*STEP_S). A step passes when SIPp counts 0 failed calls and
# reaches at least 95 % of the asked rate. Everything is bounded: SIPp's
# -timeout and -recv_timeout, an outer `timeout`, a readiness deadline.
# Loopback only. What this script starts it stops, by PID.
#
# Needs: sipp (sip-tester), kamailio, python3, and a release build of
# frontdesk (`cargo build --release -p frontdesk`).
#
# Environment (defaults in brackets):
#   RATES           OPTIONS/s to try      ["2000 5000 10000 15000 20000 30000 40000 50000 60000"]
#   STEP_S          seconds of load per step          [5]
#   CHILDREN        kamailio UDP worker processes     [4]
#   KAMAILIO_MAXBUFFER  kamailio's `maxbuffer` (the most its UDP receive
#                   buffer is grown to; its default is 256 KiB, frontdesk
#                   asks for 4 MiB)                   [unset: the config as is]
#   SIPP_INSTANCES  SIPp processes per step, each at RATE/N   [1]
#   SIPP_BUFF       SIPp's -buff_size (its socket buffers; SIPp's own
#                   default is 64 KiB, where 30,000+ answers/s overflow)  [unset]
#   TARGETS         servers to load                   ["frontdesk kamailio"]
#   FRONTDESK_BIN   the binary                        [target/release/frontdesk]
#   FRONTDESK_LOG   RUST_LOG for frontdesk            [warn]
#   KAMAILIO_CFG    the Kamailio config               [../shared/peers/kamailio/kamailio.cfg]
#   OUT             results folder                    [/tmp/frontdesk-bench-options-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATES="${RATES:-2000 5000 10000 15000 20000 30000 40000 50000 60000}"
STEP_S="${STEP_S:-5}"
CHILDREN="${CHILDREN:-4}"
KAMAILIO_MAXBUFFER="${KAMAILIO_MAXBUFFER:-}"
SIPP_INSTANCES="${SIPP_INSTANCES:-1}"
TARGETS="${TARGETS:-frontdesk kamailio}"
SIPP_BUFF="${SIPP_BUFF:-}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
KAMAILIO_CFG="${KAMAILIO_CFG:-$ROOT/../shared/peers/kamailio/kamailio.cfg}"
OUT="${OUT:-/tmp/frontdesk-bench-options-$(date +%Y%m%d-%H%M%S)}"
SCENARIO="$ROOT/tests/sipp/options-bench.xml"
IP=127.0.0.1
KPORT=5070

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "options.sh: $tool is not installed" >&2; exit 1; }
done
case " $TARGETS " in *" kamailio "*)
  command -v kamailio >/dev/null || { echo "options.sh: kamailio is not installed" >&2; exit 1; }
  [ -r "$KAMAILIO_CFG" ] || { echo "options.sh: no $KAMAILIO_CFG" >&2; exit 1; } ;;
esac
case " $TARGETS " in *" frontdesk "*)
  [ -x "$FRONTDESK_BIN" ] || {
    echo "options.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; } ;;
esac
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; KPID=""; SIPP_PIDS=""
cleanup() {
  for pid in $SIPP_PIDS $FPID $KPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SIPP_PIDS $FPID $KPID; do kill -9 "$pid" 2>/dev/null; done
  true
}
trap cleanup EXIT INT TERM

# CPU clock ticks (utime + stime) of a process, its threads and its direct
# children (kamailio's workers).
cpu_ticks() {
  local total=0 q t
  for q in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    if [ -r "/proc/$q/stat" ]; then
      t=$(sed -E 's/^.*\) //' "/proc/$q/stat" | awk '{print $12 + $13}')
      total=$((total + t))
    fi
  done
  echo "$total"
}

# One OPTIONS, bounded: 0 when the server answered 200.
probe() {
  ( cd "$OUT" && timeout 10 sipp "$IP:$1" -sf "$SCENARIO" -t u1 -i $IP -m 1 -nostdin \
      -timeout 5s -timeout_error -recv_timeout 2000 > /dev/null 2>&1 )
}

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp; } | tee "$OUT/machine.txt"

declare -A PORT PID
if [[ " $TARGETS " == *" kamailio "* ]]; then
  if ss -Hlun "sport = :$KPORT" 2>/dev/null | grep -q .; then
    echo "options.sh: udp port $KPORT is taken; kamailio needs it" >&2; exit 1
  fi
  sed "s/^children=.*/children=$CHILDREN/" "$KAMAILIO_CFG" > "$OUT/kamailio.cfg"
  if [ -n "$KAMAILIO_MAXBUFFER" ]; then
    sed -i "s/^children=.*/&\nmaxbuffer=$KAMAILIO_MAXBUFFER/" "$OUT/kamailio.cfg"
  fi
  kamailio -f "$OUT/kamailio.cfg" -DD -E -m 256 -M 16 > "$OUT/kamailio.log" 2>&1 &
  KPID=$!
  PORT[kamailio]=$KPORT; PID[kamailio]=$KPID
fi
if [[ " $TARGETS " == *" frontdesk "* ]]; then
  RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
      --data "$OUT/frontdesk-data" --admin-token bench-token \
      --dialplan "$ROOT/dialplans/clinic.toml" > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
  FPID=$!
  PID[frontdesk]=$FPID
fi

# Readiness: frontdesk prints its address; both must answer an OPTIONS.
deadline=$((SECONDS + 30))
for target in $TARGETS; do
  while :; do
    if [ "$target" = frontdesk ] && [ -z "${PORT[frontdesk]:-}" ]; then
      line=$(grep -m1 '^sip-listening ' "$OUT/frontdesk.out" 2>/dev/null)
      [ -n "$line" ] && PORT[frontdesk]=${line##*:}
    fi
    if [ -n "${PORT[$target]:-}" ] && probe "${PORT[$target]}"; then break; fi
    kill -0 "${PID[$target]}" 2>/dev/null || { echo "$target exited"; tail "$OUT/$target.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "$target not ready in 30 s"; tail "$OUT/$target.log"; exit 1; }
    sleep 0.2
  done
  echo "$target ready on $IP:${PORT[$target]} (pid ${PID[$target]})," \
    "UDP receive buffer $(ss -Huanm "sport = :${PORT[$target]}" | grep -o 'rb[0-9]*' | head -1)" \
    | tee -a "$OUT/machine.txt"
done

run_step() { # target rate
  local target=$1 rate=$2 dir="$OUT/$1-$2" i pids=""
  mkdir -p "$dir"
  local per_rate=$(( rate / SIPP_INSTANCES )) per_calls=$(( rate * STEP_S / SIPP_INSTANCES ))
  local c0 c1 t0 t1 buff=()
  [ -n "$SIPP_BUFF" ] && buff=(-buff_size "$SIPP_BUFF")
  c0=$(cpu_ticks "${PID[$target]}"); t0=$(date +%s.%N)
  ( sleep $(( STEP_S / 2 )); top -bn1 -w 200 | sed -n 7,14p > "$dir/top.txt" ) &
  for i in $(seq 1 "$SIPP_INSTANCES"); do
    mkdir -p "$dir/sipp$i"
    ( cd "$dir/sipp$i" && exec /usr/bin/time -f "%U %S %e" -o time.txt \
        timeout $(( STEP_S + 60 )) sipp "$IP:${PORT[$target]}" -sf "$SCENARIO" -t u1 -i $IP \
        -r "$per_rate" -rp 1000 -m "$per_calls" -l $(( per_rate * 5 + 100 )) \
        -recv_timeout 5000 -timeout $(( STEP_S + 40 ))s -nostdin "${buff[@]}" \
        -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1 ) &
    pids="$pids $!"
  done
  SIPP_PIDS="$pids"
  local rc=0
  for i in $pids; do wait "$i" || rc=$?; done
  SIPP_PIDS=""
  t1=$(date +%s.%N); c1=$(cpu_ticks "${PID[$target]}")
  cut -d' ' -f1 /proc/loadavg > "$dir/loadavg"
  echo "$target $rate $rc $c0 $c1 $t0 $t1" > "$dir/step.txt"
  python3 - "$dir" "$(getconf CLK_TCK)" <<'PY'
import csv, glob, json, os, sys
d, hz = sys.argv[1], int(sys.argv[2])
target, rate, rc, c0, c1, t0, t1 = open(os.path.join(d, "step.txt")).read().split()
def epoch(v):  # "2026-11-27\t00:15:05.518540\t1795738505.518540"
    return float(v.split("\t")[-1])
def ms(v):     # "00:00:00:000123" (h:m:s:us)
    h, m, s, us = (int(x) for x in v.split(":"))
    return (h * 3600 + m * 60 + s) * 1000 + us / 1000
created = ok = failed = retrans = 0
achieved = 0.0
rtd_sum = rtd_n = 0.0
sipp_cpu = 0.0
for inst in sorted(glob.glob(os.path.join(d, "sipp*"))):
    rows = []
    try:
        with open(os.path.join(inst, "stat.csv"), newline="") as f:
            rd = csv.reader(f, delimiter=";")
            hdr = next(rd)
            rows = [dict(zip(hdr, r)) for r in rd if len(r) >= len(hdr) - 1]
    except (OSError, StopIteration):
        pass
    if rows:
        last = rows[-1]
        n = lambda k: int(float(last.get(k) or 0))
        created += n("TotalCallCreated"); ok += n("SuccessfulCall(C)")
        failed += n("FailedCall(C)"); retrans += n("Retransmissions(C)")
        # the sending rate over the full periods in which calls were created
        active = [i for i, r in enumerate(rows) if int(float(r.get("OutgoingCall(P)") or 0)) > 0]
        full = active[1:-1] if len(active) > 2 else active
        if full:
            calls = sum(int(float(rows[i]["OutgoingCall(P)"])) for i in full)
            span = epoch(rows[full[-1]]["CurrentTime"]) - epoch(rows[full[0] - 1]["CurrentTime"]) if full[0] > 0 else 0
            achieved += calls / span if span > 0 else 0
        if last.get("ResponseTime1(C)"):
            rtd_sum += ms(last["ResponseTime1(C)"]) * n("SuccessfulCall(C)"); rtd_n += n("SuccessfulCall(C)")
    try:
        u, s, e = open(os.path.join(inst, "time.txt")).read().split()[-3:]
        sipp_cpu += 100 * (float(u) + float(s)) / float(e)
    except (OSError, ValueError):
        pass
wall = float(t1) - float(t0)
row = dict(target=target, rate=int(rate), sipp_rc=int(rc), created=created, successful=ok,
           failed=failed, retransmissions=retrans, achieved=round(achieved),
           response_ms_mean=round(rtd_sum / rtd_n, 2) if rtd_n else None,
           server_cpu_pct=round(100 * (int(c1) - int(c0)) / hz / wall, 1),
           sipp_cpu_pct=round(sipp_cpu, 1),
           load1=open(os.path.join(d, "loadavg")).read().strip())
row["passed"] = (failed == 0 and ok == created and created > 0 and achieved >= 0.95 * int(rate))
json.dump(row, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(row))
PY
}

n=0
for rate in $RATES; do
  order="$TARGETS"
  if [ $(( n % 2 )) -eq 1 ]; then order=$(echo "$TARGETS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
  n=$(( n + 1 ))
  for target in $order; do
    run_step "$target" "$rate"
    sleep 2  # let stragglers and retransmissions die out between steps
  done
done

python3 - "$OUT" "$SIPP_INSTANCES" $TARGETS <<'PY'
import glob, json, os, sys
out, instances, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [json.load(open(p)) for p in glob.glob(os.path.join(out, "*-*", "report.json"))]
rows.sort(key=lambda r: (r["rate"], targets.index(r["target"])))
def f(v): return "-" if v is None else str(v)
hdr = ("server", "asked /s", "achieved /s", "calls", "ok", "failed", "retrans",
       "resp. mean ms", "server CPU %", "SIPp CPU %", "load 1m", "passed")
print(f"\nSIPp instances per step: {instances}; -buff_size: {os.environ.get('SIPP_BUFF') or 'default'}\n")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for r in rows:
    print("| " + " | ".join(f(v) for v in (r["target"], r["rate"], r["achieved"], r["created"],
          r["successful"], r["failed"], r["retransmissions"], r["response_ms_mean"],
          r["server_cpu_pct"], r["sipp_cpu_pct"], r["load1"], "yes" if r["passed"] else "no")) + " |")
best = {}
for t in targets:
    passed = [r for r in rows if r["target"] == t and r["passed"]]
    best[t] = max(passed, key=lambda r: r["rate"]) if passed else None
print()
for t in targets:
    b = best[t]
    print(f"{t}: highest rate with 0 failed and >= 95% achieved: "
          + (f"{b['rate']} /s (achieved {b['achieved']} /s, server CPU {b['server_cpu_pct']} %)" if b else "none"))
if best.get("frontdesk") and best.get("kamailio"):
    print(f"ratio frontdesk / kamailio (highest passing asked rate): "
          f"{best['frontdesk']['rate'] / best['kamailio']['rate']:.2f}")
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
