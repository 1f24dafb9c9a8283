# Shell helpers the load scripts share (sourced, not run): a process's CPU
# ticks and RSS from /proc, a free loopback UDP port, the last value of a
# SIPp -trace_stat column.

# user + system clock ticks of PID $1 (empty once it is gone); the comm
# field may hold spaces, so everything up to its ") " is cut first.
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

# VmRSS of PID $1, in KiB (empty once it is gone).
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# A loopback port free for UDP and for TCP at the time of asking (the daemon listens on both):
# a port free for UDP alone could still be a TCP connection's local port
# (webhooks.sh: "cannot listen for SIP on tcp …: Address already in use"
# right after a run's 20,000 webhook connections).
free_port() {
  python3 -c '
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
'
}

# An even UDP port P with P..P+3 free, above the kernel's ephemeral range
# and every bench's RTP range (61000-64999): SIPp's media port (it binds P
# for audio and P+2 for video), which neither the daemon's random port
# lease nor another program's bind(0) can take meanwhile.
free_media_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randrange(61000, 64996, 2)
    socks = []
    try:
        for p in range(port, port + 4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(port); break
PY
}

# The last cumulative value of column $2 of SIPp's -trace_stat file $1
# (0 when the file or the column is missing).
stat_last() {
  python3 - "$1" "$2" <<'PY'
import csv, sys
try:
    rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
    print(int(float(dict(zip(rows[0], rows[-1]))[sys.argv[2]] or 0)))
except Exception:
    print(0)
PY
}
