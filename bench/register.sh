#!/usr/bin/env bash
# REGISTER with digest authentication per second over UDP: frontdesk next to
# Kamailio as registrar, in the same run, on the same cores, with the same
# SIPp scenario and the same seven users.
#
#   SIPp tests/sipp/register-agent.xml --UDP--> frontdesk 127.0.0.1:<free port>
#   SIPp tests/sipp/register-agent.xml --UDP--> kamailio  127.0.0.1:<free port>
#        (a copy of ../shared/peers/kamailio/kamailio.cfg whose htable knows
#         the demo clinic's agents 1001-1007 with their passwords demo-<id>)
#
# One SIPp call is one registration: REGISTER -> 401 -> REGISTER with
# credentials -> 200 (two transactions, one digest check). The users are
# taken in turn from an injection file (1001..1007), each call with a new
# Call-ID, so every call replaces the user's binding.
#
# For each rate the two servers are loaded one after the other (the order
# alternates from one rate to the next), each for STEP_S seconds
# (-m RATE*STEP_S). A step passes when SIPp counts every call successful, 0
# failed, and reaches at least 95 % of the asked rate. The summary gives,
# per server, the sustained rate (that step and every lower one passed)
# and the highest step that passed, and both ratios. Everything is
# bounded: SIPp's -timeout and -recv_timeout, an outer `timeout`, a
# readiness deadline. Loopback only. What this script starts it stops, by
# PID.
#
# Needs: sipp (sip-tester), kamailio, python3, and a release build of
# frontdesk (`cargo build --release -p frontdesk`).
#
# Environment (defaults in brackets):
#   RATES          registrations/s to try          ["500 1000 2000 3000 4000 6000"]
#   STEP_S         seconds of load per step        [10]
#   CHILDREN       kamailio UDP worker processes   [4]
#   TARGETS        servers to load                 ["frontdesk kamailio"]
#   FRONTDESK_BIN  the binary                      [target/release/frontdesk]
#   FRONTDESK_LOG  RUST_LOG for frontdesk          [warn]
#   KAMAILIO_CFG   the Kamailio config to adapt    [../shared/peers/kamailio/kamailio.cfg]
#   SIPP_BUFFER    SIPp's socket buffers, bytes    [4194304]
#
# Each step also records frontdesk's peak resident memory so far (VmHWM of
# its process, "peak RSS MiB"; the steps run in increasing rates, so it is
# the peak of that step or an earlier one).
#   OUT            results folder                  [/tmp/frontdesk-bench-register-<date>]
#
# SIPp's own receive buffer is 64 KiB by default: when SIPp is descheduled
# for a moment (it shares the two cores), the responses pile up there and
# the kernel drops them, which shows as SIPp retransmissions and looks like
# a slow server (measured: all of a run's retransmissions were drops on
# SIPp's socket, none on frontdesk's). Both servers get the same larger
# buffer; the kernel caps it at net.core.rmem_max.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RATES="${RATES:-500 1000 2000 3000 4000 6000}"
STEP_S="${STEP_S:-10}"
CHILDREN="${CHILDREN:-4}"
TARGETS="${TARGETS:-frontdesk kamailio}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
KAMAILIO_CFG="${KAMAILIO_CFG:-$ROOT/../shared/peers/kamailio/kamailio.cfg}"
SIPP_BUFFER="${SIPP_BUFFER:-4194304}"
OUT="${OUT:-/tmp/frontdesk-bench-register-$(date +%Y%m%d-%H%M%S)}"
SCENARIO="$ROOT/tests/sipp/register-agent.xml"
IP=127.0.0.1
USERS="1001 1002 1003 1004 1005 1006 1007"

for tool in sipp python3; do
  command -v "$tool" >/dev/null || { echo "register.sh: $tool is not installed" >&2; exit 1; }
done
case " $TARGETS " in *" kamailio "*)
  command -v kamailio >/dev/null || { echo "register.sh: kamailio is not installed" >&2; exit 1; }
  [ -r "$KAMAILIO_CFG" ] || { echo "register.sh: no $KAMAILIO_CFG" >&2; exit 1; } ;;
esac
case " $TARGETS " in *" frontdesk "*)
  [ -x "$FRONTDESK_BIN" ] || {
    echo "register.sh: no $FRONTDESK_BIN; run: cargo build --release -p frontdesk" >&2; exit 1; } ;;
esac
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; KPID=""; SIPP_PID=""
cleanup() {
  for pid in $SIPP_PID $FPID $KPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SIPP_PID $FPID $KPID; do kill -9 "$pid" 2>/dev/null; done
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

# A UDP port free on loopback a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The injection file: every user in turn (register-agent.xml's format).
{ echo SEQUENTIAL
  for u in $USERS; do echo "$u;[authentication username=$u password=demo-$u];5099;3600"; done
} > "$OUT/users.csv"

# One registration, bounded: 0 when the server answered 200.
probe() {
  ( cd "$OUT" && timeout 10 sipp "$IP:$1" -sf "$SCENARIO" -inf "$OUT/users.csv" -t u1 \
      -i $IP -bind_local -m 1 -nostdin -timeout 5s -timeout_error -recv_timeout 2000 \
      > /dev/null 2>&1 )
}

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; echo "net.core.rmem_max $(cat /proc/sys/net/core/rmem_max)";
  sipp -v 2>&1 | grep -m1 SIPp; kamailio -v 2>/dev/null | head -1;
} | tee "$OUT/machine.txt"

declare -A PORT PID
if [[ " $TARGETS " == *" kamailio "* ]]; then
  KPORT=$(free_port)
  # The lab config on a free port, children as asked, and the clinic's
  # agents in its password table instead of the lab's.
  python3 - "$KAMAILIO_CFG" "$OUT/kamailio.cfg" "$KPORT" "$CHILDREN" $USERS <<'PY'
import re, sys
source, target, port, children, users = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
cfg = open(source).read()
cfg = re.sub(r"^children=\d+", f"children={children}", cfg, flags=re.M)
cfg = cfg.replace("udp:127.0.0.1:5070", f"udp:127.0.0.1:{port}")
cfg = cfg.replace('alias="127.0.0.1:5070"', f'alias="127.0.0.1:{port}"')
table = "".join(f'    $sht(users=>{u}) = "demo-{u}";\n' for u in users)
cfg, n = re.subn(r"(event_route\[htable:mod-init\] \{\n)(.*?)(\})",
                 lambda m: m.group(1) + table + m.group(3), cfg, flags=re.S)
assert n == 1 and f":{port}" in cfg, "the lab kamailio.cfg changed shape"
open(target, "w").write(cfg)
PY
  [ $? -eq 0 ] || exit 1
  kamailio -c -f "$OUT/kamailio.cfg" > "$OUT/kamailio-check.log" 2>&1 || {
    echo "register.sh: kamailio refuses $OUT/kamailio.cfg"; tail "$OUT/kamailio-check.log"; exit 1; }
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

# Readiness: frontdesk prints its address; both must accept a registration.
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
  echo "$target ready on $IP:${PORT[$target]} (pid ${PID[$target]})"
done

run_step() { # target rate
  local target=$1 rate=$2 dir="$OUT/$1-$2"
  mkdir -p "$dir"
  local c0 c1 t0 t1 rc=0
  c0=$(cpu_ticks "${PID[$target]}"); t0=$(date +%s.%N)
  ( sleep $(( STEP_S / 2 )); top -bn1 -w 200 | sed -n 7,14p > "$dir/top.txt" ) &
  ( cd "$dir" && exec /usr/bin/time -f "%U %S %e" -o time.txt \
      timeout $(( STEP_S + 60 )) sipp "$IP:${PORT[$target]}" -sf "$SCENARIO" \
      -inf "$OUT/users.csv" -t u1 -i $IP -bind_local -buff_size "$SIPP_BUFFER" \
      -r "$rate" -rp 1000 -m $(( rate * STEP_S )) -l $(( rate * 2 + 100 )) \
      -recv_timeout 5000 -timeout $(( STEP_S + 40 ))s -nostdin \
      -trace_stat -stf stat.csv -fd 1 > sipp.out 2>&1 ) &
  SIPP_PID=$!
  wait "$SIPP_PID" || rc=$?
  SIPP_PID=""
  t1=$(date +%s.%N); c1=$(cpu_ticks "${PID[$target]}")
  cut -d' ' -f1 /proc/loadavg > "$dir/loadavg"
  # The process's peak resident memory so far (VmHWM, kB; frontdesk is one
  # process, so this is all of it; Kamailio's workers are not summed).
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$target]}/status" 2>/dev/null)
  echo "$target $rate $rc $c0 $c1 $t0 $t1 ${hwm:-0}" > "$dir/step.txt"
  python3 - "$dir" "$(getconf CLK_TCK)" <<'PY'
import csv, json, os, sys
d, hz = sys.argv[1], int(sys.argv[2])
target, rate, rc, c0, c1, t0, t1, hwm = open(os.path.join(d, "step.txt")).read().split()
def epoch(v):  # "2026-11-27\t00:15:05.518540\t1795738505.518540"
    return float(v.split("\t")[-1])
def ms(v):     # "00:00:00:000123" (h:m:s:us)
    h, m, s, us = (int(x) for x in v.split(":"))
    return (h * 3600 + m * 60 + s) * 1000 + us / 1000
rows = []
try:
    with open(os.path.join(d, "stat.csv"), newline="") as f:
        rd = csv.reader(f, delimiter=";")
        hdr = next(rd)
        rows = [dict(zip(hdr, r)) for r in rd if len(r) >= len(hdr) - 1]
except (OSError, StopIteration):
    pass
created = ok = failed = retrans = 0
achieved = 0.0
challenge_ms = register_ms = None
if rows:
    last = rows[-1]
    n = lambda k: int(float(last.get(k) or 0))
    created, ok = n("TotalCallCreated"), n("SuccessfulCall(C)")
    failed, retrans = n("FailedCall(C)"), n("Retransmissions(C)")
    # registrations completed per second over the full one-second periods
    # in which some completed (the first and the last are partial)
    active = [i for i, r in enumerate(rows) if int(float(r.get("SuccessfulCall(P)") or 0)) > 0]
    full = active[1:-1] if len(active) > 2 else active
    if full and full[0] > 0:
        done = sum(int(float(rows[i]["SuccessfulCall(P)"])) for i in full)
        span = epoch(rows[full[-1]]["CurrentTime"]) - epoch(rows[full[0] - 1]["CurrentTime"])
        achieved = done / span if span > 0 else 0.0
    if last.get("ResponseTimechallenge(C)"):
        challenge_ms = round(ms(last["ResponseTimechallenge(C)"]), 2)
    if last.get("ResponseTimeregister(C)"):
        register_ms = round(ms(last["ResponseTimeregister(C)"]), 2)
try:
    u, s, e = open(os.path.join(d, "time.txt")).read().split()[-3:]
    sipp_cpu = 100 * (float(u) + float(s)) / float(e)
except (OSError, ValueError):
    sipp_cpu = None
wall = float(t1) - float(t0)
row = dict(target=target, rate=int(rate), sipp_rc=int(rc), created=created, successful=ok,
           failed=failed, retransmissions=retrans, achieved=round(achieved),
           challenge_ms_mean=challenge_ms, register_ms_mean=register_ms,
           server_cpu_pct=round(100 * (int(c1) - int(c0)) / hz / wall, 1),
           sipp_cpu_pct=None if sipp_cpu is None else round(sipp_cpu, 1),
           peak_rss_mib=round(int(hwm) / 1024, 1) if target == "frontdesk" and int(hwm) else None,
           load1=open(os.path.join(d, "loadavg")).read().strip())
row["passed"] = (failed == 0 and ok == created == int(rate) * int(os.environ.get("STEP_S", "10"))
                 and achieved >= 0.95 * int(rate))
json.dump(row, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(row))
PY
}

export STEP_S
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

python3 - "$OUT" $TARGETS <<'PY'
import glob, json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
rows = [json.load(open(p)) for p in glob.glob(os.path.join(out, "*-*", "report.json"))]
rows.sort(key=lambda r: (r["rate"], targets.index(r["target"])))
def f(v): return "-" if v is None else str(v)
hdr = ("server", "asked reg/s", "achieved reg/s", "registrations", "ok", "failed", "retrans",
       "401 mean ms", "200 mean ms", "server CPU %", "SIPp CPU %", "peak RSS MiB", "load 1m",
       "passed")
print("\n| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for r in rows:
    print("| " + " | ".join(f(v) for v in (r["target"], r["rate"], r["achieved"], r["created"],
          r["successful"], r["failed"], r["retransmissions"], r["challenge_ms_mean"],
          r["register_ms_mean"], r["server_cpu_pct"], r["sipp_cpu_pct"], r.get("peak_rss_mib"),
          r["load1"],
          "yes" if r["passed"] else "no")) + " |")
best, sustained = {}, {}
for t in targets:
    mine = [r for r in rows if r["target"] == t]
    passed = [r for r in mine if r["passed"]]
    best[t] = max(passed, key=lambda r: r["rate"]) if passed else None
    sustained[t] = None
    for r in mine:  # by rate
        if not r["passed"]:
            break
        sustained[t] = r
print()
for t in targets:
    s, b = sustained[t], best[t]
    print(f"{t}: sustained (this and every lower step passed): "
          + (f"{s['rate']} reg/s (achieved {s['achieved']}, server CPU {s['server_cpu_pct']} %)" if s else "none"))
    print(f"{t}: highest step passed: "
          + (f"{b['rate']} reg/s (achieved {b['achieved']}, server CPU {b['server_cpu_pct']} %)" if b else "none"))
for name, chosen in (("sustained", sustained), ("highest step passed", best)):
    if chosen.get("frontdesk") and chosen.get("kamailio"):
        print(f"ratio frontdesk / kamailio, {name}: "
              f"{chosen['frontdesk']['rate'] / chosen['kamailio']['rate']:.2f}")
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
