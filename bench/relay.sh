#!/usr/bin/env bash
# The RTP relay at N concurrent bridged calls (issue 8: 1,000 calls = 100,000
# packets/s, no loss, added latency p99 <= 1 ms, less CPU than rtpengine),
# frontdesk next to rtpengine on the same load in the same run:
#
#   frontdesk (a fresh daemon per CALLS value):
#     SIPp bench/sipp/caller.xml --UDP--> frontdesk --UDP--> SIPp bench/sipp/agent.xml
#       INVITE +15550133 (SDP audio at rtpload's caller socket C) -> 200 -> ACK
#       the emergency notice (4.7 s, no key pressed) -> pediatrics queue
#       (hold prompt / music) -> INVITE to a free agent (SDP audio at
#       rtpload's agent socket A) -> 200 -> ACK, bridged
#     CALLS callers placed at SETUP_RATE calls/s, CALLS agents registered
#     with digest auth at one SIPp UAS; every call talks long enough to
#     cover the set-up and the measurement, then BYE -> 200.
#     rtpload relay --frontdesk learns each call's caller leg from the
#     prompts arriving on C and its agent leg from its own packets coming
#     out on A, sends 20 ms PCMU both ways on every call once known, and
#     measures for MEASURE_S once every call is bridged (+ 2 s to settle).
#   rtpengine (as ../shared/peers/bench-rtpengine.sh starts it: userspace,
#     --table=-1, NG on 127.0.0.1:2223, THREADS threads, a fresh one per
#     CALLS value): rtpload relay --rtpengine sets the calls up by NG
#     offer/answer and sends the same load.
#
# Per target and CALLS: packets/s through the relay, loss (packets sent in
# the window that never came out), added latency (kernel arrival stamp -
# send stamp in the payload; p50 / p99 / p99.9 / max), the relay's CPU
# (utime + stime from /proc over the window, % of one core) and rtpload's.
# A run passes with 0 lost, p99 <= 1 ms and every call bridged. For
# frontdesk, the calls themselves are checked too: every caller completes
# (SIPp counts none failed, so the notice and the queue did not end a call)
# and every agent's call completes; a snapshot of /metrics taken while
# settling (before the window) shows the calls active, the RTP ports leased
# and that nobody waits in the queue any more (no hold music during the
# window). The daemon runs with --rtp-timeout above the calls' length, so
# the silence after the measurement does not end them.
#
# Memory (issue 18: 2,000 bridged calls <= 64 KiB of RSS per call above
# idle): frontdesk's VmRSS from /proc when it is ready (no agent yet), once
# every agent is registered ("idle": the baseline), when every call is
# bridged (the /metrics snapshot while settling) and at the end of the
# window, and its VmHWM then; per call = (bridged - idle) / calls.
#
# Everything is bounded (SIPp -timeout, outer `timeout`, readiness
# deadlines); loopback only; what the script starts it stops, by PID.
#
# Needs: sipp, rtpengine (rtpengine-daemon), python3, curl, a release build
# of frontdesk, and rtpload:
#   cargo build --release --manifest-path bench/rtpload/Cargo.toml
#
# Environment (defaults in brackets):
#   CALLS          concurrent bridged calls to try  ["1000"]
#   MEASURE_S      seconds of measurement per run   [10]
#   SETUP_RATE     callers placed per second        [200]
#   TARGETS        what to load                     ["frontdesk rtpengine"]
#   THREADS        rtpengine --num-threads          [2]
#   NG             rtpengine's NG control address   [127.0.0.1:2223]
#   RTP_PORTS      frontdesk --rtp-ports            [20000-29999]
#   FRONTDESK_BIN  the binary                       [target/release/frontdesk]
#   FRONTDESK_LOG  RUST_LOG for frontdesk           [warn]
#   RTPLOAD        the load tool                    [bench/rtpload/target/release/rtpload]
#   OUT            results folder                   [/tmp/frontdesk-bench-relay-<date>]
#   RELAY_CPUS     taskset CPU list for the relay (frontdesk or rtpengine)  [unset: any]
#   LOAD_CPUS      taskset CPU list for rtpload                              [unset: any]
#   SPRAY_PPS      frontdesk only: a blind attacker on 127.0.0.2 sprays valid
#                  RTP at every even port of RTP_PORTS, SPRAY_PPS packets/s in
#                  all, from 8 sockets in turn, from before the first call to
#                  the end of the window (issue 16; 5000 = each port of
#                  20000-29999 once a second). The report adds what it sent,
#                  what reached it (must be 0) and the daemon's strict-RTP
#                  counters (foreign, learning, withheld)                      [0: none]
#                  (e.g. RELAY_CPUS=0 LOAD_CPUS=1: the relay and the generator
#                  never wait for each other's core, so the latency is the
#                  relay's own)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
PEERS="${PEERS:-$ROOT/../shared/peers}"
CALLS="${CALLS:-1000}"
MEASURE_S="${MEASURE_S:-10}"
SETUP_RATE="${SETUP_RATE:-200}"
TARGETS="${TARGETS:-frontdesk rtpengine}"
THREADS="${THREADS:-2}"
NG="${NG:-127.0.0.1:2223}"
RTP_PORTS="${RTP_PORTS:-20000-29999}"
FRONTDESK_BIN="${FRONTDESK_BIN:-$ROOT/target/release/frontdesk}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
SPRAY_PPS="${SPRAY_PPS:-0}"
RTPLOAD="${RTPLOAD:-$ROOT/bench/rtpload/target/release/rtpload}"
OUT="${OUT:-/tmp/frontdesk-bench-relay-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
SIPP_BUFF=4194304
# The notice (4.7 s) and an agent's answer, on top of placing the calls.
NOTICE_S=5

die() { echo "relay.sh: $*" >&2; exit 1; }
for tool in sipp python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ " $TARGETS " == *" rtpengine "* ]] && { command -v rtpengine >/dev/null || die "rtpengine is not installed (apt-get install rtpengine-daemon)"; }
[[ " $TARGETS " == *" frontdesk "* ]] && { [ -x "$FRONTDESK_BIN" ] || die "no $FRONTDESK_BIN; run: cargo build --release -p frontdesk"; }
relay_pin=(); [ -n "${RELAY_CPUS:-}" ] && relay_pin=(taskset -c "$RELAY_CPUS")
load_pin=(); [ -n "${LOAD_CPUS:-}" ] && load_pin=(taskset -c "$LOAD_CPUS")
[ -x "$RTPLOAD" ] || die "no $RTPLOAD; run: cargo build --release --manifest-path bench/rtpload/Cargo.toml"
[ "$MEASURE_S" -ge 1 ] && [ "$MEASURE_S" -le 120 ] || die "MEASURE_S must be 1..120"
[ "$SETUP_RATE" -ge 1 ] || die "SETUP_RATE must be >= 1"
rtp_lo=${RTP_PORTS%-*}; rtp_hi=${RTP_PORTS#*-}
rtp_streams=$(( (rtp_hi - rtp_lo + 1) / 2 ))
for n in $CALLS; do
  [ "$n" -ge 1 ] && [ "$n" -le 10000 ] || die "CALLS values must be 1..10000 (rtpload)"
  [ $(( 2 * n )) -le "$rtp_streams" ] || die "$n calls need $(( 2 * n )) RTP streams; RTP_PORTS $RTP_PORTS has $rtp_streams"
done
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; UPID=""; CPID=""; LPID=""; TPID=""; SPID=""
stop_all() {
  for pid in $SPID $LPID $CPID $UPID $FPID $TPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $SPID $LPID $CPID $UPID $FPID $TPID; do kill -9 "$pid" 2>/dev/null; done
  SPID=""; LPID=""; CPID=""; UPID=""; FPID=""; TPID=""
  true
}
# The blind attacker of SPRAY_PPS: sprays until SIGTERM (or its bound),
# then writes {"sent": N, "received": M} to $1.
spray() {
  exec python3 - "$1" "$rtp_lo" "$rtp_hi" "$SPRAY_PPS" "$2" <<'PY'
import json, os, random, signal, socket, sys, time
out, lo, hi, pps, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
socks = []
for _ in range(8):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    socks.append(s)
ports = list(range(lo + lo % 2, hi, 2))
stop = False
def finish(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, finish)
sent = received = 0
start = time.monotonic()
turn = 0
while not stop and time.monotonic() - start < bound:
    for s in socks:
        try:
            while True:
                s.recvfrom(2048)
                received += 1
        except BlockingIOError:
            pass
    due = int((time.monotonic() - start) * pps)
    while sent < due:
        port = ports[turn % len(ports)]
        header = bytes([0x80, 0]) + random.getrandbits(16).to_bytes(2, "big") + random.getrandbits(64).to_bytes(8, "big")
        try:
            socks[turn % len(socks)].sendto(header + bytes([0xA7]) * 160, ("127.0.0.1", port))
        except OSError:
            pass
        turn += 1
        sent += 1
    time.sleep(0.002)
json.dump({"sent": sent, "received": received, "seconds": round(time.monotonic() - start, 1)}, open(out, "w"))
PY
}
trap stop_all EXIT INT TERM

# An even UDP port P with P..P+$3-1 free (4 by default), between $1 and
# $2: RTP at P (and P+2), nothing of ours at the RTCP ports, so that no
# stray datagram of the relay can land on a socket of the bench.
free_block() {
  python3 - "$1" "$2" "${3:-4}" <<'PY'
import random, socket, sys
lo, hi, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for _ in range(200):
    p = random.randrange(lo, hi - size) & ~1
    socks = []
    try:
        for q in range(p, p + size):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", q))
        print(p)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit("no free port block")
PY
}
# frontdesk's resident set now, KiB.
udp_port_free() {
  python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))' "${1%:*}" "${1##*:}" 2>/dev/null
}
# Waits (bounded) for a process started in the background; its exit code.
wait_bounded() {
  local pid=$1 limit=$2 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill "$pid" 2>/dev/null; echo "relay.sh: pid $pid still running after $limit s, stopped" >&2; break; }
    sleep 0.2
  done
  wait "$pid" 2>/dev/null
}

# rtpload's sockets: C (callers) and A (agents) = C + 2, above the
# ephemeral ports and away from frontdesk's and rtpengine's media ports.
CPORT=$(free_block 61000 65500) || die "no free ports for rtpload"
APORT=$(( CPORT + 2 ))

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates/ modified)')";
  echo "uptime $(uptime)"; echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp
  echo "net.core.rmem_max $(cat /proc/sys/net/core/rmem_max) wmem_max $(cat /proc/sys/net/core/wmem_max) (rtpload asks 8 MiB per socket)"
  command -v rtpengine >/dev/null && rtpengine --version 2>&1 | head -1
  echo "frontdesk $FRONTDESK_BIN ($(stat -c '%y' "$FRONTDESK_BIN" 2>/dev/null | cut -d. -f1))"
  echo "calls $CALLS, measure ${MEASURE_S} s, set-up rate $SETUP_RATE/s, rtpengine threads $THREADS"
  echo "rtpload caller socket $IP:$CPORT, agent socket $IP:$APORT"; } | tee "$OUT/machine.txt"

run_frontdesk() {
  local n=$1 dir="$OUT/frontdesk-$1"
  mkdir -p "$dir"
  local place_s=$(( (n + SETUP_RATE - 1) / SETUP_RATE ))
  local setup_timeout=$(( place_s + NOTICE_S + 15 ))
  # the first call must outlast the slowest set-up + settling + the window
  local talk_s=$(( setup_timeout + 2 + MEASURE_S + 5 ))
  local uas_port; uas_port=$(free_port)
  # SIPp's own media ports (audio, video = +2), unused by these scenarios
  local mp_uac mp_uas; mp_uac=$(free_block 16000 19990 8) || return 1; mp_uas=$(( mp_uac + 4 ))
  python3 "$ROOT/bench/bench-dialplan.py" "$dir/dialplan" "$n" "$uas_port" > /dev/null || return 1
  RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "${relay_pin[@]}" "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
      --rtp-ports "$RTP_PORTS" --rtp-timeout $(( talk_s + 60 )) --data "$dir/data" \
      --admin-token bench-token --dialplan "$dir/dialplan/bench.toml" \
      > "$dir/frontdesk.out" 2> "$dir/frontdesk.log" &
  FPID=$!; echo $FPID > "$dir/frontdesk.pid"
  local port="" http="" line deadline=$((SECONDS + 60))
  while :; do
    line=$(grep -m1 '^sip-listening ' "$dir/frontdesk.out" 2>/dev/null) && port=${line##*:}
    line=$(grep -m1 '^http-listening ' "$dir/frontdesk.out" 2>/dev/null) && http=${line#http-listening }
    if [ -n "$http" ] && [ -n "$port" ] \
       && curl -s -m 2 "http://$http/api/health" | grep -q '"ok"'; then break; fi
    kill -0 $FPID 2>/dev/null || { echo "frontdesk exited"; tail "$dir/frontdesk.log"; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready in 60 s"; return 1; }
    sleep 0.2
  done
  echo "frontdesk on $IP:$port (pid $FPID), agents' SIPp on $IP:$uas_port; $n calls, talk ${talk_s} s"
  rss_kib $FPID > "$dir/rss-ready.txt"

  # Every bench agent registers (digest auth) with the agents' SIPp as contact.
  ( cd "$dir" && timeout 120 sipp "$IP:$port" -sf "$ROOT/tests/sipp/register-agent.xml" \
      -inf "$dir/dialplan/agents.csv" -t u1 -i $IP -bind_local -r 2000 -rp 1000 -m "$n" \
      -l 4000 -buff_size $SIPP_BUFF -recv_timeout 5000 -timeout 100s -nostdin \
      -trace_stat -stf register_stat.csv -fd 1 > register.out 2>&1 )
  local registered; registered=$(stat_last "$dir/register_stat.csv" "SuccessfulCall(C)")
  echo "agents registered: $registered of $n"
  [ "$registered" -eq "$n" ] || { echo "registration failed"; tail "$dir/register.out"; return 1; }
  sleep 1; rss_kib $FPID > "$dir/rss-idle.txt"

  local calls_timeout=$(( place_s + talk_s + 60 ))
  ( cd "$dir" && exec timeout $(( calls_timeout + 10 )) sipp -sf "$ROOT/bench/sipp/agent.xml" \
      -i $IP -p "$uas_port" -mp "$mp_uas" -set rtp_port "$APORT" -m "$n" -l $(( n + 100 )) \
      -buff_size $SIPP_BUFF -nostdin -timeout ${calls_timeout}s -trace_err \
      -trace_stat -stf uas_stat.csv -fd 1 > uas.out 2>&1 ) &
  UPID=$!

  if [ "$SPRAY_PPS" -gt 0 ]; then
    spray "$dir/spray.json" $(( setup_timeout + MEASURE_S + 60 )) &
    SPID=$!
  fi

  # rtpload first, so that C is there for the first notice.
  ( exec timeout $(( setup_timeout + MEASURE_S + 30 )) "${load_pin[@]}" "$RTPLOAD" relay --frontdesk --calls "$n" \
      --seconds "$MEASURE_S" --caller $IP:$CPORT --agent $IP:$APORT \
      --setup-timeout "$setup_timeout" --pid "$FPID" > "$dir/relay.json" 2> "$dir/rtpload.err" ) &
  LPID=$!
  sleep 0.5

  ( cd "$dir" && exec timeout $(( calls_timeout + 10 )) sipp "$IP:$port" -sf "$ROOT/bench/sipp/caller.xml" \
      -s +15550133 -set dtmf 0 -set rtp_port "$CPORT" -mp "$mp_uac" -i $IP -bind_local \
      -r "$SETUP_RATE" -rp 1000 -m "$n" -l $(( n + 100 )) -d $(( talk_s * 1000 )) \
      -buff_size $SIPP_BUFF -recv_timeout 8000 -timeout ${calls_timeout}s -nostdin \
      -trace_stat -fd 1 -stf uac_stat.csv -trace_err > uac.out 2>&1 ) &
  CPID=$!

  # While rtpload settles (every call bridged, the window not open yet):
  # what the daemon says about its calls, ports and queue.
  ( deadline=$((SECONDS + setup_timeout + 5))
    until grep -q 'settling' "$dir/rtpload.err" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || exit 0; sleep 0.2; done
    sleep 1; curl -s -m 1 "http://$http/metrics" > "$dir/metrics-settled.txt"
    rss_kib $FPID > "$dir/rss-bridged.txt" ) &
  local mpid=$!

  wait_bounded $LPID $(( setup_timeout + MEASURE_S + 40 )); local lrc=$?; LPID=""
  rss_kib $FPID > "$dir/rss-window-end.txt"
  awk '/^VmHWM:/ { print $2 }' "/proc/$FPID/status" > "$dir/hwm-window-end.txt" 2>/dev/null
  wait $mpid 2>/dev/null
  if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null; wait_bounded "$SPID" 10; SPID=""; fi
  echo "rtpload (exit $lrc): $(grep -v '^rtpload: caller legs' "$dir/rtpload.err" | tr '\n' ' ')"
  # the calls end by themselves (BYE from the callers) after talk_s
  wait_bounded $CPID $(( calls_timeout + 20 )); local crc=$?; CPID=""
  wait_bounded $UPID 30; UPID=""
  local metrics_end; metrics_end=$(curl -s -m 2 "http://$http/metrics")
  stop_all
  python3 - "$dir" "$n" "$lrc" "$crc" "$registered" "$metrics_end" <<'PY'
import csv, json, os, sys
d, n, lrc, crc, registered, metrics_end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def last(path, col):
    try:
        rows = list(csv.reader(open(path), delimiter=";"))
        return int(float(dict(zip(rows[0], rows[-1]))[col] or 0))
    except Exception:
        return None
def metric(text, name):
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            try:
                return float(line.split()[-1])
            except ValueError:
                return None
    return None
try:
    x = json.load(open(os.path.join(d, "relay.json")))
except (OSError, ValueError):
    x = {"target": "frontdesk", "calls": n, "error": "rtpload gave no result"}
x["rtpload_rc"] = lrc
try:
    settled = open(os.path.join(d, "metrics-settled.txt")).read()
except OSError:
    settled = ""
x["settled"] = {
    "calls_active": metric(settled, "frontdesk_calls_active"),
    "rtp_ports_leased": metric(settled, "frontdesk_rtp_ports_leased"),
    "queue_waiting": metric(settled, 'frontdesk_queue_waiting{queue="pediatrics"}'),
}
x["sip"] = {
    "agents_registered": registered,
    "callers_ok": last(os.path.join(d, "uac_stat.csv"), "SuccessfulCall(C)"),
    "callers_failed": last(os.path.join(d, "uac_stat.csv"), "FailedCall(C)"),
    "agents_ok": last(os.path.join(d, "uas_stat.csv"), "SuccessfulCall(C)"),
    "agents_failed": last(os.path.join(d, "uas_stat.csv"), "FailedCall(C)"),
    "connected": metric(metrics_end, 'frontdesk_calls_total{outcome="connected"}'),
    "callers_sipp_rc": crc,
}
def total(text, name):
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.split(" ")[0] == name)
try:
    x["spray"] = json.load(open(os.path.join(d, "spray.json")))
    for counter in ("foreign", "learning", "withheld"):
        x["spray"][counter] = int(total(metrics_end, f"frontdesk_rtp_packets_{counter}_total"))
except (OSError, ValueError):
    pass
def kib(name):
    try:
        return int(open(os.path.join(d, name)).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
m = {"ready_kib": kib("rss-ready.txt"), "idle_kib": kib("rss-idle.txt"),
     "bridged_kib": kib("rss-bridged.txt"), "window_end_kib": kib("rss-window-end.txt"),
     "hwm_kib": kib("hwm-window-end.txt")}
if m["idle_kib"] is not None and m["bridged_kib"] is not None:
    m["per_call_kib"] = round((m["bridged_kib"] - m["idle_kib"]) / n, 1)
x["rss"] = m
s = x["sip"]
x["calls_ok"] = (s["callers_ok"] == n and s["callers_failed"] == 0 and s["agents_ok"] == n
                 and x["settled"]["queue_waiting"] in (0.0, None))
json.dump(x, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(x))
PY
}

run_rtpengine() {
  local n=$1 dir="$OUT/rtpengine-$1"
  mkdir -p "$dir"
  if [ "$n" -gt 4000 ]; then echo "rtpengine: skip $n calls (> 4000, its file descriptors)"; return 1; fi
  udp_port_free "$NG" || { echo "rtpengine: $NG is in use (another rtpengine?); set NG"; return 1; }
  timeout $(( MEASURE_S + 120 )) "${relay_pin[@]}" rtpengine --config-file=none --foreground --log-stderr --table=-1 \
      --interface=$IP --listen-ng="$NG" --port-min=30000 --port-max=50000 \
      --num-threads="$THREADS" --log-level=4 --delete-delay=0 --timeout=60 \
      > "$dir/rtpengine.log" 2>&1 &
  TPID=$!
  local rpid="" deadline=$((SECONDS + 20))
  until [ -n "$rpid" ] && timeout 5 python3 "$PEERS/rtpengine/ng.py" "$NG" ping > /dev/null 2>&1; do
    rpid=$(ps -o pid= --ppid $TPID | head -1 | tr -d ' ')
    kill -0 $TPID 2>/dev/null || { echo "rtpengine exited"; tail "$dir/rtpengine.log"; TPID=""; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "rtpengine not ready in 20 s"; stop_all; return 1; }
    sleep 0.2
  done
  echo "rtpengine on $NG (pid $rpid), $THREADS threads; $n calls"
  ( exec timeout $(( MEASURE_S + 60 )) "${load_pin[@]}" "$RTPLOAD" relay --rtpengine "$NG" --calls "$n" \
      --seconds "$MEASURE_S" --caller $IP:$CPORT --agent $IP:$APORT --pid "$rpid" \
      > "$dir/relay.json" 2> "$dir/rtpload.err" ) &
  LPID=$!
  wait_bounded $LPID $(( MEASURE_S + 70 )); local lrc=$?; LPID=""
  echo "rtpload (exit $lrc): $(tr '\n' ' ' < "$dir/rtpload.err")"
  # ours, not the timeout wrapper's: rtpengine by PID, then the wrapper
  kill "$rpid" 2>/dev/null; sleep 0.5; kill -9 "$rpid" 2>/dev/null
  stop_all
  python3 - "$dir" "$n" "$lrc" <<'PY'
import json, os, sys
d, n, lrc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    x = json.load(open(os.path.join(d, "relay.json")))
except (OSError, ValueError):
    x = {"target": "rtpengine", "calls": n, "error": "rtpload gave no result"}
x["rtpload_rc"] = lrc
x["calls_ok"] = x.get("bridged") == n
json.dump(x, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(x))
PY
}

for n in $CALLS; do
  if [[ " $TARGETS " == *" frontdesk "* ]]; then
    run_frontdesk "$n" || { echo "frontdesk at $n calls: no result"; stop_all; }
    sleep 2
  fi
  if [[ " $TARGETS " == *" rtpengine "* ]]; then
    run_rtpengine "$n" || { echo "rtpengine at $n calls: no result"; stop_all; }
    sleep 2
  fi
done

python3 - "$OUT" $CALLS <<'PY' | tee "$OUT/summary.txt"
import json, os, sys
out, calls = sys.argv[1], sys.argv[2:]
rows = []
for n in calls:
    for target in ("frontdesk", "rtpengine"):
        try:
            rows.append(json.load(open(os.path.join(out, f"{target}-{n}", "report.json"))))
        except (OSError, ValueError):
            pass
def f(v): return "-" if v is None else str(v)
def ms(us): return None if us is None else f"{us / 1000:.3f}"
for x in rows:
    lat = x.get("latency_us") or {}
    x["passed"] = ("error" not in x and x.get("lost") == 0 and x.get("sent", 0) > 0
                   and lat.get("p99", 10**9) <= 1000 and x.get("calls_ok", False))
hdr = ("target", "calls", "bridged", "sent pps", "relayed pps", "lost", "loss %",
       "latency p50 ms", "p99 ms", "p99.9 ms", "max ms", "relay CPU %", "rtpload CPU %",
       "late slots", "UDP rcvbuf err", "calls ok", "passed")
print("\n| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for x in rows:
    lat = x.get("latency_us") or {}
    print("| " + " | ".join(f(v) for v in (
        x.get("target"), x.get("calls"), x.get("bridged"), x.get("sent_pps"), x.get("relayed_pps"),
        x.get("lost"), x.get("loss_pct"), ms(lat.get("p50")), ms(lat.get("p99")),
        ms(lat.get("p999")), ms(lat.get("max")), x.get("relay_cpu_pct"),
        x.get("generator_cpu_pct"), x.get("late_slots"), x.get("udp_rcvbuf_errors"),
        "yes" if x.get("calls_ok") else "no", "yes" if x["passed"] else "no")) + " |")
for x in rows:
    if x.get("target") == "frontdesk":
        print(f"frontdesk {x.get('calls')} calls: SIP {json.dumps(x.get('sip'))}, "
              f"settled {json.dumps(x.get('settled'))}")
        print(f"frontdesk {x.get('calls')} calls: RSS KiB {json.dumps(x.get('rss'))} "
              f"(per call above idle; target <= 64 KiB)")
        if "spray" in x:
            print(f"frontdesk {x.get('calls')} calls under a spray: {json.dumps(x['spray'])}")
for n in calls:
    by = {x["target"]: x for x in rows if str(x.get("calls")) == n}
    fd, re = by.get("frontdesk"), by.get("rtpengine")
    if fd and re and fd.get("relay_cpu_pct") and re.get("relay_cpu_pct"):
        print(f"{n} calls: frontdesk CPU / rtpengine CPU = "
              f"{fd['relay_cpu_pct'] / re['relay_cpu_pct']:.2f} "
              f"(target < 1: {'yes' if fd['relay_cpu_pct'] < re['relay_cpu_pct'] else 'no'})")
print("target: no loss, p99 <= 1 ms, less CPU than rtpengine")
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
