#!/usr/bin/env bash
# CRM webhooks under load (issue 26): lead events at RATE/s delivered to a
# slow receiver, and calls' INVITE -> 200 p99 beside them, next to the same
# run without webhooks.
#
#   leadload --HTTP/1.1--> frontdesk: RATE signed leads/s (each a
#                          lead.created event, queued by the journal's writer)
#   SIPp bench/sipp/caller.xml --UDP--> frontdesk: CALL_RATE calls/s
#                          (INVITE -> 200 from a dumpcap capture on lo; each call's end a
#                          call.ended event)
#   frontdesk --POST--> a receiver (bench/leadload's webhook-sink, or
#                          python3 in this script) that holds each request
#                          DELAY_MS before its 200
#
# Two runs on a fresh daemon each: "off" (the demo clinic as it is) and
# "on" (the same plus one [[webhooks]] hearing every kind, CONCURRENCY
# deliveries in flight). Recorded per run: leads/s achieved and their 201
# p99, the callers' INVITE -> 200 p50/p99/max (captured on lo), events
# delivered during the load and after it (until the outbox is empty or
# DRAIN_S passed), the delivery rate, the daemon's CPU. Loopback only;
# bounded (timeouts on every tool, readiness deadlines); what it starts it
# stops, by PID.
#
# A run's p99 is its 4th slowest call of 400: pool several runs' calls
# with bench/pool_answers.py (BENCHMARKS.md pools six pairs).
#
# Needs: sipp, python3, curl, chrt (util-linux), dumpcap (Debian's wireshark-common, as root), release builds of frontdesk and leadload
# (`cargo build --release -p frontdesk`; `cargo build --release
# --manifest-path bench/leadload/Cargo.toml`).
#
# Environment (defaults in brackets):
#   RATE           leads/s (events/s)            [1000]
#   SECONDS_EACH   seconds of load per run       [20]
#   CONNECTIONS    leadload's connections        [64]
#   CALL_RATE      calls/s beside the leads      [20]
#   TALK_MS        each call's length            [1000]
#   DELAY_MS       the receiver's hold per POST  [200]
#   CONCURRENCY    the webhook's `concurrency`   [64]
#   DRAIN_S        how long to wait for the outbox to empty after the load [120]
#   RECEIVER_IDLE  1: the receiver runs SCHED_IDLE (chrt --idle), 0: as
#                  an ordinary process at RECEIVER_NICE [1]. It stands for a
#                  CRM on another machine: at nice 0 on these 2 cores it ran
#                  ~1 ms slices that the daemon's SIP thread and workers,
#                  woken meanwhile, waited out (BENCHMARKS.md, issue 26)
#   RECEIVER       sink: bench/leadload's webhook-sink (one tokio thread),
#                  python: the asyncio receiver below [sink]. Both stand for
#                  a CRM on another machine; python's costs ~150 µs of CPU
#                  a request on the daemon's cores (BENCHMARKS.md, issue 26).
#                  none: nothing listens (every try refused, the webhook
#                  paused by its backoff): what queueing the events costs
#   RUNS           which runs                    ["off on"]
#   FRONTDESK_BIN  [target/release/frontdesk]; LEADLOAD_BIN [bench/leadload/target/release/leadload];
#   SINK_BIN       [bench/leadload/target/release/webhook-sink]
#   OUT            results folder                [/tmp/frontdesk-bench-webhooks-<date>]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
RATE="${RATE:-1000}"
SECONDS_EACH="${SECONDS_EACH:-20}"
CONNECTIONS="${CONNECTIONS:-64}"
CALL_RATE="${CALL_RATE:-20}"
TALK_MS="${TALK_MS:-1000}"
DELAY_MS="${DELAY_MS:-200}"
CONCURRENCY="${CONCURRENCY:-64}"
DRAIN_S="${DRAIN_S:-120}"
RUNS="${RUNS:-off on}"
FRONTDESK_BIN="${FRONTDESK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/frontdesk}"
LEADLOAD_BIN="${LEADLOAD_BIN:-$ROOT/bench/leadload/target/release/leadload}"
SINK_BIN="${SINK_BIN:-$ROOT/bench/leadload/target/release/webhook-sink}"
RECEIVER="${RECEIVER:-sink}"
OUT="${OUT:-/tmp/frontdesk-bench-webhooks-$(date +%Y%m%d-%H%M%S)}"
IP=127.0.0.1
TICKS=$(getconf CLK_TCK)

for tool in sipp python3 curl; do
  command -v $tool >/dev/null || { echo "webhooks.sh: needs $tool" >&2; exit 1; }
done
[ -x "$FRONTDESK_BIN" ] || { echo "webhooks.sh: no $FRONTDESK_BIN" >&2; exit 1; }
[ -x "$LEADLOAD_BIN" ] || { echo "webhooks.sh: no $LEADLOAD_BIN" >&2; exit 1; }
[ "$RECEIVER" != sink ] || [ -x "$SINK_BIN" ] || { echo "webhooks.sh: no $SINK_BIN" >&2; exit 1; }
mkdir -p "$OUT"
echo "results in $OUT"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  true
}
trap cleanup EXIT INT TERM

{
  echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "cpus $(nproc); $(uptime)"; echo "binary $FRONTDESK_BIN"
  echo "receiver $RECEIVER, SCHED_IDLE: ${RECEIVER_IDLE:-1}"
} | tee "$OUT/machine.txt"

# The receiver: holds each POST DELAY_MS, answers 200, counts (the count
# written to a file every 20 ms). asyncio, so that holding hundreds of
# requests at once costs it little: python's ThreadingHTTPServer (one
# thread per connection, a listen backlog of 5) took at most ~210 POSTs/s
# at 256 connections under wrk, whatever DELAY_MS.
RECEIVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RECEIVER_SCHED=()
[ "${RECEIVER_IDLE:-1}" = 1 ] && RECEIVER_SCHED=(chrt --idle 0)
if [ "$RECEIVER" = python ]; then
"${RECEIVER_SCHED[@]}" nice -n "${RECEIVER_NICE:-0}" python3 - "$RECEIVER_PORT" "$DELAY_MS" "$OUT/received.txt" <<'PY' &
import asyncio, sys
port, delay, path = int(sys.argv[1]), int(sys.argv[2]) / 1000, sys.argv[3]
count = 0
async def flush():
    last = None
    while True:
        await asyncio.sleep(0.02)
        if count != last:
            with open(path, "w") as f:
                f.write(f"{count}\n")
            last = count
async def serve(reader, writer):
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            count += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    asyncio.create_task(flush())
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
PIDS+=($!)
elif [ "$RECEIVER" = sink ]; then
"${RECEIVER_SCHED[@]}" nice -n "${RECEIVER_NICE:-0}" "$SINK_BIN" "$RECEIVER_PORT" "$DELAY_MS" "$OUT/received.txt" 7200 &
PIDS+=($!)
fi
echo 0 > "$OUT/received.txt"

received() { cat "$OUT/received.txt" 2>/dev/null || echo 0; }
metric() { curl -sf "http://$HTTP/metrics" | awk -v s="$1" 'index($0, s) == 1 { print $NF }' | tail -1; }

{
  echo "| webhooks | leads/s achieved | lead 201 p99 ms | calls ok/failed | INVITE→200 p50 ms | p99 / max ms | events delivered during load | then within ${DRAIN_S} s | delivery/s | daemon CPU | load (1 min) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$OUT/table.md"

for run in $RUNS; do
  # A fresh folder: a journal left by an earlier run into the same OUT
  # would be delivered (and its leads escalated) during this one.
  dir="$OUT/$run"; rm -rf "$dir"; mkdir -p "$dir/prompts"
  plan="$dir/clinic.toml"
  cp "$ROOT/dialplans/clinic.toml" "$plan"
  rmdir "$dir/prompts"; ln -s "$ROOT/dialplans/prompts" "$dir/prompts"
  if [ "$run" = on ]; then
    cat >> "$plan" <<TOML

[[webhooks]]
name = "crm"
url = "http://127.0.0.1:$RECEIVER_PORT/hooks"
secret = "bench-webhook-secret-0123456789"
events = ["lead.created", "lead.offered", "lead.owner_changed", "lead.contacted", "lead.outcome", "lead.escalated", "call.ended"]
timeout = "10s"
concurrency = $CONCURRENCY
TOML
  fi
  sip_port=$(free_port)
  RUST_LOG=warn NO_COLOR=1 "$FRONTDESK_BIN" run --sip $IP:$sip_port --http $IP:0 \
      --data "$dir/data" --admin-token bench-token --dialplan "$plan" \
      > "$dir/frontdesk.out" 2> "$dir/frontdesk.log" &
  FPID=$!; PIDS+=($FPID)
  HTTP=""; deadline=$((SECONDS + 60))
  while :; do
    line=$(grep -m1 '^http-listening ' "$dir/frontdesk.out" 2>/dev/null)
    [ -n "$line" ] && HTTP=${line#http-listening }
    if [ -n "$HTTP" ] && curl -sf "http://$HTTP/api/health" >/dev/null 2>&1; then break; fi
    kill -0 "$FPID" 2>/dev/null || { echo "frontdesk exited"; tail "$dir/frontdesk.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "frontdesk not ready"; exit 1; }
    sleep 0.2
  done
  # Every INVITE to its 200, from the kernel's timestamps on lo (SIPp's
  # own -trace_rtt counts whole milliseconds: 0 for a release build).
  ( exec timeout $((SECONDS_EACH + 30)) dumpcap -q -i lo -f "udp port $sip_port" -B 64 -s 512 -P \
      -a duration:$((SECONDS_EACH + 5)) -w "$dir/cap.pcap" > "$dir/dumpcap.out" 2>&1 ) &
  CAPTURE=$!
  sleep 1
  r0=$(received); c0=$(cpu_ticks "$FPID"); t0=$(date +%s.%N)
  media_port=$(free_media_port)
  ( cd "$dir" && exec timeout $((SECONDS_EACH + 60)) sipp "$IP:$sip_port" -sf "$ROOT/bench/sipp/caller.xml" \
      -s +15550100 -set dtmf 0 -set rtp_port $media_port -mp $media_port -i $IP -r "$CALL_RATE" \
      -m $((CALL_RATE * SECONDS_EACH)) -d "$TALK_MS" -recv_timeout 8000 -timeout $((SECONDS_EACH + 50))s \
      -nostdin -trace_stat -fd 1 -stf uac_stat.csv > uac.out 2>&1 ) &
  SIPP=$!
  timeout $((SECONDS_EACH + 60)) "$LEADLOAD_BIN" "$HTTP" "$RATE" "$SECONDS_EACH" "$CONNECTIONS" \
      > "$dir/leadload.txt" 2> "$dir/leadload.err"
  wait $SIPP
  c1=$(cpu_ticks "$FPID"); t1=$(date +%s.%N); r1=$(received)
  cat /proc/loadavg > "$dir/loadavg.txt"
  # The outbox drains after the load.
  deadline=$((SECONDS + DRAIN_S))
  while [ "$run" = on ] && [ $SECONDS -lt $deadline ]; do
    pending=$(metric 'frontdesk_webhook_pending{webhook="crm"}')
    [ "${pending:-1}" = 0 ] && break
    sleep 1
  done
  t2=$(date +%s.%N); r2=$(received)
  json=$(tail -1 "$dir/leadload.txt")
  field() { printf '%s' "$json" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  wait $CAPTURE
  rtt=$(python3 "$ROOT/bench/sip_answers.py" "$dir/cap.pcap" "$sip_port" \
      | python3 -c 'import json,sys; a=json.load(sys.stdin)["200"]; print(a["p50_ms"], a["p99_ms"], a["max_ms"], a["n"])')
  ok=$(stat_last "$dir/uac_stat.csv" "SuccessfulCall(C)"); failed=$(stat_last "$dir/uac_stat.csv" "FailedCall(C)")
  cpu=$(python3 -c "print(f'{($c1-$c0)/$TICKS/($t1-$t0)*100:.0f} %')")
  rate_out=$(python3 -c "print(f'{($r2-$r0)/max($t2-$t0, 0.001):.0f}')")
  echo "| $run | $(field "['achieved_per_s']") | $(field "['p99_ms']") | $ok/$failed | $(echo $rtt | cut -d' ' -f1) | $(echo $rtt | cut -d' ' -f2) / $(echo $rtt | cut -d' ' -f3) ($(echo $rtt | cut -d' ' -f4) calls) | $((r1 - r0)) | $((r2 - r1)) | $rate_out | $cpu | $(cut -d' ' -f1 "$dir/loadavg.txt") |" \
    | tee -a "$OUT/table.md"
  # CPU seconds per thread name over the daemon's life (threads.txt).
  for task in /proc/$FPID/task/*; do
    echo "$(cat "$task/comm") $(awk '{ print $14 + $15 }' "$task/stat")"
  done | awk -v hz="$TICKS" '{ cpu[$1] += $2 } END { for (n in cpu) printf "%s %.2f s\n", n, cpu[n] / hz }' \
    | sort -k2 -rn > "$dir/threads.txt"
  kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null
done
echo
cat "$OUT/table.md"
