# Shell helpers the load scripts share (sourced, not run): a process's CPU
# ticks and RSS from /proc, a free loopback UDP port, the last value of a
# SIPp -trace_stat column.

# user + system clock ticks of PID $1 (empty once it is gone); the comm
# field may hold spaces, so everything up to its ") " is cut first.
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

# VmRSS of PID $1, in KiB (empty once it is gone).
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# A UDP port on 127.0.0.1 free at the time of asking.
free_port() {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
