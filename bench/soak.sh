#!/usr/bin/env bash
# A soak (issue 18): the whole call flow at a steady RATE for DURATION_S,
# sampling the daemon every SAMPLE_S to show that nothing grows: no RSS
# growth beyond 5 % after a warm-up, no descriptor and no RTP port leak.
#
#   SIPp bench/sipp/caller.xml --UDP--> frontdesk --UDP--> SIPp bench/sipp/agent.xml
#     INVITE +15550100 -> 200 -> ACK       (the emergency notice starts)
#     key 3 by RFC 4733 at once            (barges in: menu key 3 -> pediatrics)
#                                          queue -> INVITE to a free agent -> 200 -> ACK, bridged
#     talks TALK_MS -> BYE -> 200          BYE to the agent -> 200; the agent wraps up 2 s
#
# The pieces are callflow.sh's (bench-dialplan.py's clinic, always open,
# with AGENTS bench agents registered by SIPp with digest auth; the same
# caller and agent scenarios); here one SIPp caller runs for the whole
# DURATION_S at RATE calls/s instead of short steps.
#
# Every SAMPLE_S the script appends to samples.csv: seconds since the load
# began, the daemon's VmRSS and VmHWM (/proc/PID/status), its open
# descriptors (entries of /proc/PID/fd) and threads, and from /metrics:
# calls active, RTP ports leased and available, routed Call-IDs, the
# journal's backlog and the calls connected so far. After the load it
# waits (bounded) until the calls are gone and the freed ports are out of
# quarantine, and samples once more ("after").
#
# The verdict (verdict.json, printed):
#   - RSS growth after warm-up: the baseline is the median VmRSS of the
#     samples in the minute after WARMUP_S; growth = (the highest VmRSS
#     after that minute - baseline) / baseline; passes at <= 5 %. The
#     least-squares slope of VmRSS over the post-warm-up samples (MiB per
#     hour) is given too;
#   - descriptors: the count after the calls are gone against the count
#     before the first call (registrations done), must be equal, and the
#     highest count during the load;
#   - ports: frontdesk_rtp_ports_leased after must be 0 and
#     leased + available back to the pool's size;
#   - calls: SIPp's callers failed, the agents' completed calls against
#     the callers' successful ones (a call that never reached an agent).
#
# It is light (at 100 calls/s about 10-15 % of a core for the daemon, and
# as much for each SIPp) and measures growth, not time, so it may run
# outside /work/bin/heavy's lock (BENCHMARKS.md says when it did). Loopback
# only; everything is bounded (SIPp -timeout, an outer `timeout`, readiness
# and drain deadlines); what the script starts it stops, by PID.
#
# Needs: sipp, python3, curl, a release build of frontdesk.
#
# Environment (defaults in brackets):
#   RATE           calls/s                          [100]
#   DURATION_S     seconds of calls                 [1800]
#   TALK_MS        the caller's call after the key  [3000]
#   AGENTS         bench agents                     [RATE x 10]
#   SAMPLE_S       seconds between samples          [10]
#   WARMUP_S       seconds of warm-up               [300]
#   RTP_PORTS      frontdesk --rtp-ports            [20000-29999]
#   MEDIA_PORT     the callers' SIPp media port (-mp; not SIPp's default
#                  16000, which a test's or callflow.sh's SIPp may hold)  [17000]
#   FRONTDESK_BIN  the binary                       [target/release/frontdesk]
#   FRONTDESK_LOG  RUST_LOG for frontdesk           [warn]
#   OUT            results folder                   [/tmp/frontdesk-bench-soak-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
RATE="${RATE:-100}"
DURATION_S="${DURATION_S:-1800}"
TALK_MS="${TALK_MS:-3000}"
AGENTS="${AGENTS:-$(( RATE * 10 ))}"
SAMPLE_S="${SAMPLE_S:-10}"
WARMUP_S="${WARMUP_S:-300}"
RTP_PORTS="${RTP_PORTS:-20000-29999}"
MEDIA_PORT="${MEDIA_PORT:-17000}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-soak-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
SIPP_BUFF=4194304
# --rtp-quarantine's default (a freed port rests this long before reuse).
QUARANTINE_S=5

die() { echo "soak.sh: $*" >&2; exit 1; }
for tool in sipp python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$FRONTDESK_BIN" ] || die "no $FRONTDESK_BIN; run: cargo build --release -p frontdesk"
[ "$AGENTS" -le 50000 ] || die "AGENTS <= 50000"
[ "$DURATION_S" -gt $(( WARMUP_S + 60 )) ] || die "DURATION_S must exceed WARMUP_S + 60"
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; UPID=""; CPID=""; SPID=""
stop_all() {
  for pid in $SPID $CPID $UPID $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SPID $CPID $UPID $FPID; do kill -9 "$pid" 2>/dev/null; done
  SPID=""; CPID=""; UPID=""; FPID=""
  true
}
trap stop_all EXIT INT TERM


{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"; echo "uptime $(uptime)";
  echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp;
  echo "frontdesk $FRONTDESK_BIN ($(stat -c '%y' "$FRONTDESK_BIN" 2>/dev/null | cut -d. -f1))"
  echo "rate $RATE/s for $DURATION_S s, talk $TALK_MS ms, agents $AGENTS, sample every $SAMPLE_S s, warm-up $WARMUP_S s"
} | tee "$OUT/machine.txt"

UAS_PORT=$(free_port)
python3 "$ROOT/bench/bench-dialplan.py" "$OUT/dialplan" "$AGENTS" "$UAS_PORT" > /dev/null || exit 1
RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
    --rtp-ports "$RTP_PORTS" --data "$OUT/data" --admin-token bench-token \
    --dialplan "$OUT/dialplan/bench.toml" > "$OUT/frontdesk.out" 2> "$OUT/frontdesk.log" &
FPID=$!; echo $FPID > "$OUT/frontdesk.pid"
port=""; http=""; deadline=$((SECONDS + 60))
while :; do
  line=$(grep -m1 '^sip-listening ' "$OUT/frontdesk.out" 2>/dev/null) && port=${line##*:}
  line=$(grep -m1 '^http-listening ' "$OUT/frontdesk.out" 2>/dev/null) && http=${line#http-listening }
  if [ -n "$http" ] && [ -n "$port" ] \
     && curl -s -m 2 "http://$http/api/health" | grep -q '"ok"'; then break; fi
  kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$OUT/frontdesk.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || die "frontdesk not ready in 60 s"
  sleep 0.2
done
echo "frontdesk on $IP:$port (pid $FPID), agents' SIPp on $IP:$UAS_PORT"

( cd "$OUT" && timeout 120 sipp "$IP:$port" -sf "$ROOT/tests/sipp/register-agent.xml" \
    -inf "$OUT/dialplan/agents.csv" -t u1 -i $IP -bind_local -r 2000 -rp 1000 -m "$AGENTS" \
    -l 4000 -buff_size $SIPP_BUFF -recv_timeout 5000 -timeout 100s -nostdin \
    -trace_stat -stf register_stat.csv -fd 1 > register.out 2>&1 )
registered=$(stat_last "$OUT/register_stat.csv" "SuccessfulCall(C)")
echo "agents registered: $registered of $AGENTS"
[ "$registered" -eq "$AGENTS" ] || { echo "registration failed"; tail "$OUT/register.out"; exit 1; }

# One sample: a CSV line (the header is written below).
metrics_of() {
  curl -s -m 2 "http://$http/metrics" | awk '
    $1 == "frontdesk_calls_active" { a = $2 }
    $1 == "frontdesk_rtp_ports_leased" { l = $2 }
    $1 == "frontdesk_rtp_ports_available" { v = $2 }
    $1 == "frontdesk_sip_routed_call_ids" { r = $2 }
    $1 == "frontdesk_journal_backlog" { b = $2 }
    $1 == "frontdesk_calls_total{outcome=\"connected\"}" { c = $2 }
    END { printf "%s,%s,%s,%s,%s,%s", a, l, v, r, b, c }'
}
sample() { # label
  local rss hwm fds threads
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$FPID/status" 2>/dev/null)
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$FPID/status" 2>/dev/null)
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$FPID/status" 2>/dev/null)
  fds=$(ls "/proc/$FPID/fd" 2>/dev/null | wc -l)
  echo "$1,$(( SECONDS - T0 )),$rss,$hwm,$fds,$threads,$(metrics_of)"
}
echo "label,t_s,rss_kib,hwm_kib,fds,threads,calls_active,ports_leased,ports_available,routed_call_ids,journal_backlog,connected_total" > "$OUT/samples.csv"
sleep 2
T0=$SECONDS
sample before >> "$OUT/samples.csv"

calls=$(( RATE * DURATION_S ))
uas_timeout=$(( DURATION_S + 120 ))
( cd "$OUT" && exec timeout $(( uas_timeout + 10 )) sipp -sf "$ROOT/bench/sipp/agent.xml" \
    -i $IP -p "$UAS_PORT" -set rtp_port 9 -m "$calls" -l $(( AGENTS + 100 )) \
    -buff_size $SIPP_BUFF -nostdin -timeout ${uas_timeout}s -trace_err \
    -trace_stat -stf uas_stat.csv -fd 10 > uas.out 2>&1 ) &
UPID=$!
sleep 1
( cd "$OUT" && exec timeout $(( DURATION_S + 120 )) sipp "$IP:$port" -sf "$ROOT/bench/sipp/caller.xml" \
    -s +15550100 -set dtmf 1 -set rtp_port $MEDIA_PORT -mp $MEDIA_PORT -i $IP -bind_local \
    -r "$RATE" -rp 1000 -m "$calls" -l $(( RATE * 30 + 100 )) -d "$TALK_MS" \
    -buff_size $SIPP_BUFF -recv_timeout 8000 -timeout $(( DURATION_S + 100 ))s -nostdin \
    -trace_stat -fd 10 -stf uac_stat.csv -trace_err > uac.out 2>&1 ) &
CPID=$!
T0=$SECONDS
( while kill -0 $CPID 2>/dev/null; do sample load; sleep "$SAMPLE_S"; done ) >> "$OUT/samples.csv" &
SPID=$!
wait $CPID; crc=$?; CPID=""
kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; SPID=""
echo "callers' SIPp ended (exit $crc)"

# The calls end with the callers' BYEs; then the agents' wrap-up and the
# freed ports' quarantine.
deadline=$((SECONDS + 60))
while :; do
  m=$(metrics_of)
  IFS=, read -r active leased _ routed _ _ <<< "$m"
  [ "${active%.*}" = 0 ] && [ "${leased%.*}" = 0 ] && [ "${routed%.*}" = 0 ] && break
  [ $SECONDS -lt $deadline ] || { echo "calls still up after 60 s: $m"; break; }
  sleep 1
done
sleep $(( QUARANTINE_S + 2 ))
wait_uas=$((SECONDS + 30))
while kill -0 $UPID 2>/dev/null && [ $SECONDS -lt $wait_uas ]; do sleep 1; done
sample after >> "$OUT/samples.csv"
stop_all

python3 - "$OUT" "$WARMUP_S" "$RTP_PORTS" "$crc" <<'PY' | tee "$OUT/verdict.txt"
import csv, json, os, statistics, sys
out, warmup, rtp_ports, crc = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rows = list(csv.DictReader(open(os.path.join(out, "samples.csv"))))
num = lambda v: float(v) if v not in (None, "") else None
for r in rows:
    for k, v in r.items():
        if k != "label":
            r[k] = num(v)
before = next(r for r in rows if r["label"] == "before")
after = next((r for r in rows if r["label"] == "after"), None)
load = [r for r in rows if r["label"] == "load" and r["rss_kib"]]
def stat_last(name, col):
    try:
        rows = list(csv.reader(open(os.path.join(out, name)), delimiter=";"))
        return int(float(dict(zip(rows[0], rows[-1]))[col] or 0))
    except Exception:
        return None
base = [r["rss_kib"] for r in load if warmup <= r["t_s"] < warmup + 60]
rest = [r for r in load if r["t_s"] >= warmup + 60]
v = {}
if base and rest:
    b = statistics.median(base)
    top = max(r["rss_kib"] for r in rest)
    xs = [r["t_s"] for r in load if r["t_s"] >= warmup]
    ys = [r["rss_kib"] for r in load if r["t_s"] >= warmup]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    v["rss"] = {"idle_mib": round(before["rss_kib"] / 1024, 1),
                "baseline_mib": round(b / 1024, 1), "highest_after_mib": round(top / 1024, 1),
                "end_of_load_mib": round(load[-1]["rss_kib"] / 1024, 1),
                "after_mib": round(after["rss_kib"] / 1024, 1) if after else None,
                "growth_pct": round(100 * (top - b) / b, 2),
                "slope_mib_per_hour": round(slope * 3600 / 1024, 2),
                "hwm_mib": round(max(r["hwm_kib"] for r in load) / 1024, 1)}
    v["rss"]["passed"] = v["rss"]["growth_pct"] <= 5.0
lo, hi = (int(p) for p in rtp_ports.split("-"))
v["fds"] = {"before": before["fds"], "highest": max((r["fds"] for r in load), default=None),
            "after": after["fds"] if after else None}
v["fds"]["passed"] = after is not None and after["fds"] == before["fds"]
v["ports"] = {"leased_after": after["ports_leased"] if after else None,
              "available_after": after["ports_available"] if after else None,
              "available_before": before["ports_available"],
              "highest_leased": max((r["ports_leased"] or 0 for r in load), default=None)}
v["ports"]["passed"] = (after is not None and after["ports_leased"] == 0
                        and after["ports_available"] == before["ports_available"])
v["calls"] = {"callers_created": stat_last("uac_stat.csv", "OutgoingCall(C)"),
              "callers_ok": stat_last("uac_stat.csv", "SuccessfulCall(C)"),
              "callers_failed": stat_last("uac_stat.csv", "FailedCall(C)"),
              "agents_ok": stat_last("uas_stat.csv", "SuccessfulCall(C)"),
              "connected": after["connected_total"] if after else None,
              "highest_active": max((r["calls_active"] or 0 for r in load), default=None),
              "routed_call_ids_after": after["routed_call_ids"] if after else None,
              "callers_sipp_rc": crc}
v["passed"] = all(v.get(k, {}).get("passed") for k in ("rss", "fds", "ports"))
json.dump(v, open(os.path.join(out, "verdict.json"), "w"), indent=1)
every = max(1, len(load) // 12)
print("| t (s) | RSS MiB | fds | ports leased | calls active | routed Call-IDs | connected |")
print("|---|---|---|---|---|---|---|")
for r in [before] + load[::every] + ([after] if after else []):
    label = r["label"] if r["label"] != "load" else int(r["t_s"])
    n = lambda v: f"{v:.0f}" if v is not None else "0"  # a counter not yet published
    print(f"| {label} | {r['rss_kib'] / 1024:.1f} | {int(r['fds'])} | {n(r['ports_leased'])} | "
          f"{n(r['calls_active'])} | {n(r['routed_call_ids'])} | {n(r['connected_total'])} |")
print(json.dumps(v))
print("verdict:", "passed" if v["passed"] else "NOT passed")
PY
