#!/usr/bin/env python3
"""INVITE -> final answer times from a loopback capture (pcap, as dumpcap
writes it on lo), for the bench scripts (callflow.sh, webhooks.sh).

Usage: sip_answers.py CAPTURE.pcap PORT [--times]

Prints a JSON summary; with --times, each 200's INVITE -> 200 in ms, one
per line (to pool several runs' calls).
"""
# Each caller's new INVITE (to the daemon's port, first copy) to its first
# final answer from the daemon, from the kernel's capture timestamps.
import json, re, struct, sys
path, port = sys.argv[1], int(sys.argv[2])
times = sys.argv[3:] == ["--times"]
data = open(path, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
linktype = struct.unpack(endian + "I", data[20:24])[0]
invites, finals = {}, {}
off = 24
callid = re.compile(rb"\r\n(?:Call-ID|i)\s*:\s*([^\r\n]+)", re.I)
cseq = re.compile(rb"\r\nCSeq\s*:\s*\d+\s+(\w+)", re.I)
while off + 16 <= len(data):
    sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    t = sec + frac / (1e9 if nano else 1e6)
    l2 = 14 if linktype == 1 else (16 if linktype == 113 else 0)
    ip = pkt[l2:]
    if len(ip) < 28 or ip[0] >> 4 != 4:
        continue
    ihl = (ip[0] & 15) * 4
    sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
    sip = ip[ihl + 8:]
    m = callid.search(sip)
    c = cseq.search(sip)
    if not m or not c or c.group(1).upper() != b"INVITE":
        continue
    cid = m.group(1).strip()
    if sip.startswith(b"INVITE ") and dport == port and sport != port:
        invites.setdefault(cid, t)
    elif sip.startswith(b"SIP/2.0 ") and sport == port:
        code = int(sip[8:11])
        if code >= 200:
            finals.setdefault(cid, (t, code))
def pct(v, q):
    return round(v[min(len(v) - 1, int(q * len(v)))], 2) if v else None
if times:
    for c, t in invites.items():
        if c in finals and finals[c][1] == 200 and finals[c][0] >= t:
            print(f"{1000 * (finals[c][0] - t):.3f}")
    sys.exit(0)
out = {}
for code in (200, 503):
    ms = sorted(1000 * (finals[c][0] - t) for c, t in invites.items() if c in finals and finals[c][1] == code and finals[c][0] >= t)
    out[str(code)] = {"n": len(ms), "p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "max_ms": pct(ms, 1.0),
                      "over_50ms": sum(1 for x in ms if x > 50)}
out["invites"] = len(invites)
out["unanswered"] = sum(1 for c in invites if c not in finals)
print(json.dumps(out))
