#!/usr/bin/env python3
"""Offer latency (issue 21): from a lead's `201` to the agent's page.

Starts the daemon (release build) on free loopback ports with the demo
clinic, signs agent 1004 (Dan, orthopedics, south) in to `/agent` and keeps
his event stream open, then posts COUNT signed knee leads (postal code
60605) one at a time. For each, the time runs from the moment the `201`
is read to the moment Dan's stream carries a `leads` event offering that
lead. The lead is then closed (admin `outcome duplicate`) and the script
waits until it has left Dan's list, so every lead meets the same desk.
Prints p50/p90/p99/max of that (negative when the offer reached the page
before the client had read the 201), and of the whole path from sending
the POST to the offer on the page.

    cargo build --release -p frontdesk
    python3 bench/lead_offer.py            # COUNT=500 FRONTDESK_BIN=...

Loopback only; every wait is bounded; what it starts it stops, by PID.
"""

import hashlib
import hmac
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = int(os.environ.get("COUNT", "500"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("FRONTDESK_BIN", os.path.join(TARGET, "release", "frontdesk"))
TOKEN = "bench-token"
SECRET = b"demo-website-secret"
BOUND = 10.0


def start(data):
    process = subprocess.Popen(
        [BIN, "run", "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", data,
         "--admin-token", TOKEN, "--dialplan", os.path.join(ROOT, "dialplans", "clinic.toml")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, RUST_LOG="warn", NO_COLOR="1"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("http-listening "):
            host, port = line.split()[1].rsplit(":", 1)
            return process, (host, int(port))
        if process.poll() is not None:
            break
    process.kill()
    sys.exit("frontdesk did not start")


def request(addr, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(*addr, timeout=BOUND)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def wait_health(addr):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(addr, "GET", "/api/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("frontdesk not healthy in 30 s")


def stream(addr, token, events):
    sock = socket.create_connection(addr, timeout=None)
    sock.sendall(f"GET /agent/events HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
                 .encode())
    name = None
    for raw in sock.makefile("rb"):
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == "leads":
            events.put((time.monotonic(), json.loads(line[6:])["leads"]))
            name = None


def percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(share * len(ordered) + 0.5)) - 1))]


def main():
    data = tempfile.mkdtemp(prefix="frontdesk-lead-offer-")
    process, addr = start(data)
    try:
        wait_health(addr)
        status, login = request(addr, "POST", "/agent/login",
                                json.dumps({"user": "1004", "password": "demo-1004"}),
                                {"Content-Type": "application/json"})
        assert status == 200, login
        events = queue.Queue()
        threading.Thread(target=stream, args=(addr, login["token"], events), daemon=True).start()
        events.get(timeout=BOUND)  # the first (empty) list
        latencies = []
        from_post = []
        for i in range(COUNT):
            body = json.dumps({"name": "Ana Diaz", "phone": "+1312555%04d" % (i % 10000),
                               "email": None, "message": "my knee hurts", "postal_code": "60605",
                               "campaign": "fall-ortho", "consent": {"call": True}}).encode()
            sent = time.monotonic()
            t = str(int(time.time()))
            mac = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
            status, answer = request(addr, "POST", "/api/leads", body, {
                "Content-Type": "application/json", "X-Frontdesk-Source": "website",
                "X-Frontdesk-Signature": f"t={t},v1={mac}"})
            created = time.monotonic()
            assert status == 201, answer
            lead = answer["lead"]["id"]
            deadline = created + BOUND
            while True:
                at, leads = events.get(timeout=max(0.0, deadline - time.monotonic()))
                if any(l["id"] == lead and l.get("offer_until") for l in leads):
                    # Negative: the offer reached the page before the
                    # client had read the 201 (the desk offers as the
                    # intake answers).
                    latencies.append(at - created)
                    from_post.append(at - sent)
                    break
            status, _ = request(addr, "POST", f"/api/leads/{lead}/outcome",
                                json.dumps({"outcome": "duplicate"}),
                                {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            while True:
                _, leads = events.get(timeout=BOUND)
                if not any(l["id"] == lead for l in leads):
                    break
        for label, values in (("201 read -> agent's leads event", latencies),
                              ("POST sent -> agent's leads event", from_post)):
            ms = [value * 1000 for value in values]
            print(f"{label}: {len(ms)} offers, p50 {percentile(ms, 0.5):.2f} ms, "
                  f"p90 {percentile(ms, 0.9):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
                  f"max {max(ms):.2f} ms, before the 201: {sum(v < 0 for v in ms)}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
