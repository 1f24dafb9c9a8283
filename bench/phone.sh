#!/usr/bin/env bash
# The browser phone at N concurrent WebRTC legs (issue 23: 500 legs driven
# by a Rust client; DTLS set-ups per second; the daemon's CPU per leg next
# to a plain RTP leg and an SDES-SRTP leg; no loss; INVITE -> ringing),
# against the real daemon (a fresh one per N):
#
#   bench/phoneload (N pages, one process, tokio + str0m):
#     N bench agents 30000.. sign in (POST /agent/login), then all at once
#     open /agent/phone, send their hello with a str0m offer and run ICE +
#     DTLS with the daemon: hello -> connected per page, set-ups per
#     second, the daemon's CPU per set-up;
#     LATENCY_CALLS calls one at a time from a minimal SIP patient of its
#     own to +15550134 (straight to pediatrics, no prompt): INVITE sent ->
#     the page's `ringing` received, p50 / p99; the page answers, the
#     patient hangs up;
#     the daemon's CPU over 5 s with every page on and no call;
#     then "calls: go": N patients
#       SIPp bench/sipp/caller.xml --UDP--> frontdesk, INVITE +15550133
#       (SDP audio at phoneload's patient socket C) -> the emergency notice
#       (4.7 s) -> pediatrics -> a page rings -> it answers at once
#     every page sends 20 ms PCMU from its call's start; once every page is
#     in its call, C sends 20 ms PCMU to every call's relay port; 2 s to
#     settle, then MEASURE_S seconds: frames per direction sent inside the
#     window and received (after 2 s of draining), the daemon's CPU
#     (utime + stime from /proc) per call, phoneload's CPU.
#   With PLAIN=1 (default), the same N through bench/relay.sh's frontdesk
#   target right after (SIPp agents, plain RTP, rtpload): the plain RTP
#   figure of the same run for the same N on the same box. relay.sh has no
#   SDES-SRTP agents; BENCHMARKS.md cites the SDES figure of the harness.
#
# Limits raised for the bench (bench dialplan only): [limits.http]
# connections = 2 N + 64 (one WebSocket per page; the default 256 would
# close pages past it). Loopback is trusted, so the per-source limits do
# not apply.
#
# Everything is bounded (SIPp -timeout, outer `timeout`, readiness
# deadlines); loopback only; what the script starts it stops, by PID.
#
# Needs: sipp, python3, curl, a release build of frontdesk and phoneload
# (and rtpload for PLAIN=1):
#   cargo build --release -p frontdesk
#   cargo build --release --manifest-path bench/phoneload/Cargo.toml
#   cargo build --release --manifest-path bench/rtpload/Cargo.toml
#
# Environment (defaults in brackets):
#   N              concurrent pages and calls (a list: one run each)  ["500"]
#   MEASURE_S      seconds of measurement                            [10]
#   SETUP_RATE     SIPp patients placed per second                   [100]
#   LATENCY_CALLS  INVITE -> ringing calls, one at a time            [30]
#   HOLD_MS        a latency call's patient hangs up this long after
#                  the page's `connected`                            [300]
#   PLAIN          1: also relay.sh's frontdesk target at each N     [1]
#   RTP_PORTS      frontdesk --rtp-ports                             [20000-29999]
#   FRONTDESK_BIN  the binary                  [$CARGO_TARGET_DIR or target]/release/frontdesk
#   PHONELOAD      the load tool               [bench/phoneload/target/release/phoneload]
#   FRONTDESK_LOG  RUST_LOG for frontdesk                            [warn]
#   OUT            results folder              [/tmp/frontdesk-bench-phone-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
N="${N:-500}"
MEASURE_S="${MEASURE_S:-10}"
SETUP_RATE="${SETUP_RATE:-100}"
LATENCY_CALLS="${LATENCY_CALLS:-30}"
HOLD_MS="${HOLD_MS:-300}"
PLAIN="${PLAIN:-1}"
RTP_PORTS="${RTP_PORTS:-20000-29999}"
FRONTDESK_BIN="${FRONTDESK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/frontdesk}"
PHONELOAD="${PHONELOAD:-$ROOT/bench/phoneload/target/release/phoneload}"
FRONTDESK_LOG="${FRONTDESK_LOG:-warn}"
OUT="${OUT:-/tmp/frontdesk-bench-phone-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
SIPP_BUFF=4194304
NOTICE_S=5

die() { echo "phone.sh: $*" >&2; exit 1; }
for tool in sipp python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$FRONTDESK_BIN" ] || die "no $FRONTDESK_BIN; run: cargo build --release -p frontdesk"
[ -x "$PHONELOAD" ] || die "no $PHONELOAD; run: cargo build --release --manifest-path bench/phoneload/Cargo.toml"
[ "$MEASURE_S" -ge 1 ] && [ "$MEASURE_S" -le 120 ] || die "MEASURE_S must be 1..120"
[ "$SETUP_RATE" -ge 1 ] || die "SETUP_RATE must be >= 1"
rtp_lo=${RTP_PORTS%-*}; rtp_hi=${RTP_PORTS#*-}
for n in $N; do
  [ "$n" -ge 1 ] && [ "$n" -le 5000 ] || die "N values must be 1..5000"
  # per call: the patient's leg and the page's plain hop; per page its WebRTC leg
  [ $(( 3 * n * 2 )) -le $(( rtp_hi - rtp_lo + 1 )) ] || die "$n pages need $(( 3 * n )) RTP port pairs; RTP_PORTS $RTP_PORTS is too small"
done
mkdir -p "$OUT"
echo "results in $OUT"

FPID=""; PPID_=""; CPID=""
stop_all() {
  for pid in $CPID $PPID_ $FPID; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in $CPID $PPID_ $FPID; do kill -9 "$pid" 2>/dev/null; done
  CPID=""; PPID_=""; FPID=""
  true
}
trap stop_all EXIT INT TERM

wait_bounded() {
  local pid=$1 limit=$2 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill "$pid" 2>/dev/null; echo "phone.sh: pid $pid still running after $limit s, stopped" >&2; break; }
    sleep 0.2
  done
  wait "$pid" 2>/dev/null
}

{ echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates/ modified)')";
  echo "uptime $(uptime)"; echo "nproc $(nproc)"; sipp -v 2>&1 | grep -m1 SIPp
  echo "ulimit -n $(ulimit -n)"
  echo "frontdesk $FRONTDESK_BIN ($(stat -c '%y' "$FRONTDESK_BIN" 2>/dev/null | cut -d. -f1))"
  echo "N $N, measure ${MEASURE_S} s, SIPp set-up rate $SETUP_RATE/s, latency calls $LATENCY_CALLS"; } | tee "$OUT/machine.txt"

run_phone() {
  local n=$1 dir="$OUT/phone-$1"
  mkdir -p "$dir"
  local place_s=$(( (n + SETUP_RATE - 1) / SETUP_RATE ))
  local calls_timeout=$(( place_s + NOTICE_S + 30 ))
  # phoneload: sign-in (16 at a time) + set-up (<= 45 s) + the latency calls (<= 45 s each, bounded)
  local go_limit=$(( 60 + n / 10 + 45 + LATENCY_CALLS * 3 + 10 ))
  # a patient's call must outlast the slowest set-up + settling + the window + draining
  local talk_s=$(( calls_timeout + 1 + 2 + MEASURE_S + 2 + 10 ))
  local cport mport
  cport=$(free_media_port) || return 1
  mport=$(free_media_port) || return 1
  [ "$cport" != "$mport" ] || mport=$(free_media_port)
  python3 "$ROOT/bench/bench-dialplan.py" "$dir/dialplan" "$n" "$(free_port)" > /dev/null || return 1
  local connections=$(( 2 * n + 64 )); [ $connections -ge 256 ] || connections=256
  printf '\n[limits.http]\nconnections = %d\n' "$connections" >> "$dir/dialplan/bench.toml"
  RUST_LOG="$FRONTDESK_LOG" NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:0 --http $IP:0 \
      --rtp-ports "$RTP_PORTS" --rtp-timeout $(( go_limit + talk_s + 60 )) --data "$dir/data" \
      --admin-token bench-token --dialplan "$dir/dialplan/bench.toml" \
      > "$dir/frontdesk.out" 2> "$dir/frontdesk.log" &
  FPID=$!
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
  echo "frontdesk on $IP:$port, http $http (pid $FPID); $n pages, patients' RTP at $IP:$cport"
  local rss_ready; rss_ready=$(rss_kib $FPID)

  ( exec timeout $(( go_limit + talk_s + 30 )) "$PHONELOAD" --http "$http" --sip "$IP:$port" \
      --pages "$n" --first-agent 30000 --caller "$IP:$cport" --seconds "$MEASURE_S" --pid "$FPID" \
      --latency-calls "$LATENCY_CALLS" --latency-number +15550134 --setup-timeout "$calls_timeout" --hold-ms "$HOLD_MS" \
      > "$dir/phone.json" 2> "$dir/phoneload.err" ) &
  PPID_=$!
  deadline=$((SECONDS + go_limit))
  until grep -q '^calls: go' "$dir/phoneload.err" 2>/dev/null; do
    kill -0 $PPID_ 2>/dev/null || { echo "phoneload ended before the calls"; cat "$dir/phoneload.err"; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "phoneload not ready for calls in $go_limit s"; return 1; }
    sleep 0.2
  done
  cat "$dir/phoneload.err"
  local rss_pages; rss_pages=$(rss_kib $FPID)
  curl -s -m 2 "http://$http/metrics" > "$dir/metrics-pages.txt"

  ( cd "$dir" && exec timeout $(( talk_s + 60 )) sipp "$IP:$port" -sf "$ROOT/bench/sipp/caller.xml" \
      -s +15550133 -set dtmf 0 -set rtp_port "$cport" -mp "$mport" -i $IP -bind_local \
      -r "$SETUP_RATE" -rp 1000 -m "$n" -l $(( n + 100 )) -d $(( talk_s * 1000 )) \
      -buff_size $SIPP_BUFF -recv_timeout 8000 -timeout $(( talk_s + 30 ))s -nostdin \
      -trace_stat -fd 1 -stf uac_stat.csv -trace_err > uac.out 2>&1 ) &
  CPID=$!
  ( deadline=$((SECONDS + calls_timeout + 5))
    until grep -q 'settling' "$dir/phoneload.err" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || exit 0; sleep 0.2; done
    curl -s -m 2 "http://$http/metrics" > "$dir/metrics-settled.txt"
    rss_kib $FPID > "$dir/rss-bridged.txt" ) &
  local mpid=$!
  wait_bounded $PPID_ $(( talk_s + 30 )); local prc=$?; PPID_=""
  wait $mpid 2>/dev/null
  echo "phoneload (exit $prc): $(grep -v '^calls: go' "$dir/phoneload.err" | tail -3 | tr '\n' ' ')"
  local sipp_calls; sipp_calls=$(stat_last "$dir/uac_stat.csv" "OutgoingCall(C)")
  stop_all
  python3 - "$dir" "$n" "$prc" "$rss_ready" "$rss_pages" "$sipp_calls" <<'PY'
import json, os, sys
d, n, prc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def kib(v):
    try: return int(v)
    except ValueError: return None
try:
    x = json.load(open(os.path.join(d, "phone.json")))
except (OSError, ValueError):
    x = {"pages": n, "error": "phoneload gave no result"}
x["phoneload_rc"] = prc
try:
    bridged_kib = int(open(os.path.join(d, "rss-bridged.txt")).read().split()[0])
except (OSError, ValueError, IndexError):
    bridged_kib = None
ready, pages = kib(sys.argv[4]), kib(sys.argv[5])
x["rss_kib"] = {"ready": ready, "pages_on": pages, "bridged": bridged_kib,
                "per_page": None if None in (ready, pages) else round((pages - ready) / n, 1)}
x["sipp_calls_placed"] = int(sys.argv[6])
json.dump(x, open(os.path.join(d, "report.json"), "w"))
print(json.dumps(x))
PY
}

run_plain() {
  local n=$1
  OUT="$OUT/plain-$n" TARGETS=frontdesk CALLS="$n" MEASURE_S="$MEASURE_S" RTP_PORTS="$RTP_PORTS" \
    FRONTDESK_BIN="$FRONTDESK_BIN" timeout $(( MEASURE_S + n / 20 + 300 )) "$ROOT/bench/relay.sh" \
    > "$OUT/plain-$n.txt" 2>&1
  tail -8 "$OUT/plain-$n.txt"
}

for n in $N; do
  run_phone "$n" || { echo "phone at $n: no result"; stop_all; }
  sleep 2
  if [ "$PLAIN" = 1 ]; then
    run_plain "$n" || echo "plain RTP at $n: no result"
    sleep 2
  fi
done

python3 - "$OUT" $N <<'PY' | tee "$OUT/summary.txt"
import json, os, sys
out, ns = sys.argv[1], sys.argv[2:]
def f(v): return "-" if v is None else str(v)
print("\n| N | pages connected | set-ups/s | hello→connected p50 / p99 ms | daemon CPU ms per set-up | pages on, idle: daemon CPU % | INVITE→ringing p50 / p99 ms | calls bridged | packets/s (of nominal) | page→patient sent / lost | patient→page sent / lost | UDP rcvbuf errors (daemon's / phoneload's sockets) | daemon CPU % | phoneload CPU % | daemon µs per call-second: browser | plain RTP (relay.sh, same N) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for n in ns:
    try:
        x = json.load(open(os.path.join(out, f"phone-{n}", "report.json")))
    except (OSError, ValueError):
        print(f"| {n} | no result |"); continue
    s, r, c = x.get("setup", {}), (x.get("invite_to_ringing") or {}).get("ms") or {}, x.get("calls", {})
    h = s.get("hello_to_connected_ms") or {}
    plain = None
    try:
        rows = json.load(open(os.path.join(out, f"plain-{n}", "summary.json")))
        for row in rows:
            if row.get("target") == "frontdesk" and str(row.get("calls")) == n and row.get("relay_cpu_pct"):
                plain = f"{round(row['relay_cpu_pct'] / 100 * 1e6 / row['calls'])} ({row['relay_cpu_pct']} %, lost {row.get('lost')})"
    except (OSError, ValueError):
        pass
    p2, q2 = c.get("page_to_patient", {}), c.get("patient_to_page", {})
    print("| " + " | ".join(f(v) for v in (
        n, s.get("connected"), s.get("per_second"), f"{h.get('p50')} / {h.get('p99')}",
        s.get("daemon_cpu_ms_per_setup"), (x.get("idle") or {}).get("daemon_cpu_pct"),
        f"{r.get('p50')} / {r.get('p99')}", c.get("bridged"),
        f"{c.get('packets_per_second')} ({c.get('nominal_packets_per_second')})",
        f"{p2.get('sent')} / {p2.get('lost')}", f"{q2.get('sent')} / {q2.get('lost')}",
        f"{c.get('udp_rcvbuf_errors')} ({c.get('udp_drops_daemon')} / {c.get('udp_drops_phoneload')})", c.get("daemon_cpu_pct"), c.get("phoneload_cpu_pct"),
        c.get("daemon_us_per_call_second"), plain)) + " |")
PY
