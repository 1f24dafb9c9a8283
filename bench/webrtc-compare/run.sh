#!/usr/bin/env bash
# The runs recorded in BENCHMARKS.md ("Choosing the WebRTC stack"): each
# stack at 50, 200 and 500 legs for 10 s of media, three times; then set-up
# only (SECONDS=0) at 500 legs, with a certificate per leg and with one
# shared certificate. Every run stops by itself; the lines go to stdout.
# Run it through the machine's heavy lock: /work/bin/heavy bench/webrtc-compare/run.sh
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/webrtc-compare"
for legs in 50 200 500; do
  for round in 1 2 3; do
    for stack in plain sdes str0m webrtc; do
      timeout 120 "$bin" run "$stack" "$legs" 10
    done
  done
done
for cert in per-leg shared; do
  for round in 1 2 3; do
    for stack in str0m webrtc; do
      CERT="$cert" timeout 180 "$bin" run "$stack" 500 0
    done
  done
done
