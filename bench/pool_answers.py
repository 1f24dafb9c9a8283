#!/usr/bin/env python3
"""INVITE -> 200 over several bench/webhooks.sh runs, the calls pooled.

Usage: pool_answers.py RUN OUT...   (RUN: off or on; OUT: webhooks.sh's
results folders)

Each OUT/RUN/cap.pcap is read by sip_answers.py --times, with the SIP
port the daemon said it listened on (OUT/RUN/frontdesk.out). Prints one
line: calls, p50, p90, p99, p99.5, max (ms), and how many took over 1 ms
and over 2 ms. Pairs of 400 calls vary more than the difference sought
(p99 is a run's 4th slowest call); six pairs give 2,400.
"""
import os, re, subprocess, sys

run, outs = sys.argv[1], sys.argv[2:]
here = os.path.dirname(os.path.abspath(__file__))
times = []
for out in outs:
    folder = os.path.join(out, run)
    with open(os.path.join(folder, "frontdesk.out")) as f:
        port = re.search(r"sip-listening [0-9.]+:(\d+)", f.read()).group(1)
    answers = subprocess.run(
        [sys.executable, os.path.join(here, "sip_answers.py"), os.path.join(folder, "cap.pcap"), port, "--times"],
        check=True, capture_output=True, text=True).stdout
    times += [float(line) for line in answers.split()]
times.sort()
if not times:
    sys.exit("no answered calls")
def pct(q):
    return times[min(len(times) - 1, int(q * len(times)))]
print(f"{run}: calls={len(times)} p50={pct(.5):.2f} p90={pct(.9):.2f} p99={pct(.99):.2f} "
      f"p99.5={pct(.995):.2f} max={times[-1]:.2f} over_1ms={sum(t > 1 for t in times)} "
      f"over_2ms={sum(t > 2 for t in times)}")
