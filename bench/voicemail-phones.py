#!/usr/bin/env python3
"""Callers' phones for bench/voicemail.sh: one UDP socket (every call's SDP
names it) that speaks on every call.

usage: voicemail-phones.py PORT SECONDS

Every packet frontdesk sends here names a call's RTP port (its source);
from then on this sends that port a 20 ms PCMU packet every 20 ms (its own
SSRC, sequence and timestamp per call; a loud 400 Hz-ish pattern, so that
no recording ends on silence), until SECONDS have passed. Prints the calls
spoken to and the packets sent, as JSON. Loopback only; bounded by SECONDS.
"""
import json
import math
import socket
import struct
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])


def ulaw(sample):
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


payload = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 400 * i / 8000))) for i in range(160))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind(("127.0.0.1", port))
sock.setblocking(False)
calls = {}  # source -> [ssrc, sequence, timestamp]
sent = 0
end = time.monotonic() + seconds
tick = time.monotonic()
while time.monotonic() < end:
    while True:
        try:
            _, source = sock.recvfrom(2048)
        except BlockingIOError:
            break
        if source not in calls:
            calls[source] = [0x10000 + len(calls), 0, 0]
    for source, state in calls.items():
        ssrc, sequence, timestamp = state
        header = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        try:
            sock.sendto(header + payload, source)
            sent += 1
        except OSError:
            pass
        state[1] += 1
        state[2] += 160
    tick += 0.02
    delay = tick - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(json.dumps({"calls_spoken_to": len(calls), "packets_sent": sent}))
