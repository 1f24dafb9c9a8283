#!/usr/bin/env python3
"""A flood from one source, for bench/flood.sh (issue 17).

usage: flood.py SOURCE_IP TARGET_IP TARGET_PORT RATE SECONDS OUT_JSON

Sends RATE SIP requests a second for SECONDS from SOURCE_IP (one UDP
socket), a third each INVITE, REGISTER and OPTIONS, every one a new
transaction (its own branch, Call-ID and From tag), paced in 1 ms slices;
and counts what comes back. Writes OUT_JSON: sent, the requests answered
at least once (by Call-ID), the datagrams received. Loopback only; bounded
by SECONDS plus a 3 s tail for late answers.
"""
import json
import select
import socket
import sys
import time

source, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
rate, seconds, out = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
if not (source.startswith("127.") and target.startswith("127.")):
    sys.exit("flood.py: loopback only")

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind((source, 0))
sock.setblocking(False)
me = "%s:%d" % sock.getsockname()
dest = (target, port)

SDP = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") % (source, source)


def request(n):
    kind = n % 3
    method, uri, to, body = {
        0: ("INVITE", "sip:+15550100@%s:%d" % dest, "sip:+15550100@%s" % target, SDP),
        1: ("REGISTER", "sip:%s:%d" % dest, "sip:1003@%s" % target, ""),
        2: ("OPTIONS", "sip:frontdesk@%s:%d" % dest, "sip:frontdesk@%s" % target, ""),
    }[kind]
    extra = ""
    if method == "INVITE":
        extra = "Contact: <sip:flood@%s>\r\nContent-Type: application/sdp\r\n" % me
    elif method == "REGISTER":
        extra = "Contact: <sip:1003@%s>\r\nExpires: 60\r\n" % me
    return ("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKf%d;rport\r\n"
            "From: <sip:flood@%s>;tag=f%d\r\nTo: <%s>\r\nCall-ID: f%d@flood\r\n"
            "CSeq: 1 %s\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s"
            % (method, uri, me, n, source, n, to, n, method, extra, len(body), body)).encode()


answered = set()
received = 0
sent = 0
start = time.monotonic()
end = start + seconds
tail = end + 3.0
buffer = bytearray(65536)


def drain():
    global received
    while True:
        try:
            length = sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        received += 1
        text = bytes(buffer[:length])
        at = text.find(b"\r\nCall-ID: ")
        if at >= 0:
            answered.add(text[at + 11:text.find(b"\r\n", at + 11)])


while True:
    now = time.monotonic()
    if now >= tail:
        break
    if now < end:
        due = int((now - start) * rate)
        while sent < due:
            try:
                sock.sendto(request(sent), dest)
            except (BlockingIOError, InterruptedError):
                break
            sent += 1
    drain()
    select.select([sock], [], [], 0.001)

json.dump({"sent": sent, "answered": len(answered), "received": received,
           "seconds": seconds, "rate": rate}, open(out, "w"))
print("flood: sent %d, answered %d (%.2f %%), datagrams back %d"
      % (sent, len(answered), 100.0 * len(answered) / max(sent, 1), received))
