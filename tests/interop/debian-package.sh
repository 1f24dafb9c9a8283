#!/usr/bin/env bash
# The Debian package (issue 27), installed for real on this machine:
#   1. deploy/debian/build-deb.sh packages the test build's daemon;
#   2. dpkg -i: the frontdesk user, /var/lib/frontdesk (0700, its own),
#      /etc/frontdesk with a dialplan whose demo passwords were replaced,
#      an admin token; the unit passes `systemd-analyze verify` and has
#      its sandbox;
#   3. the unit's own ExecStart (ports moved off 5060/8080) runs as the
#      frontdesk user under the package's paths: it serves, reloads on
#      SIGHUP as ExecReload sends it, writes its journal in the state
#      directory and drains on SIGTERM with exit 0;
#   4. dpkg --purge (also in a trap, whatever fails) removes the files,
#      the user, the configuration and the state.
# No systemd runs in CI, so the unit is verified and its command run, not
# started by systemd.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "debian-package.sh: $*" >&2
  exit 1
}

if dpkg-query -W -f='${Status}' frontdesk 2>/dev/null | grep -q 'ok installed'; then
  fail "a frontdesk package is installed on this machine already: not touching it"
fi
if [[ -n ${FRONTDESK_BIN:-} ]]; then
  binary=$FRONTDESK_BIN
else
  cargo build --quiet --locked -p frontdesk --bin frontdesk
  binary=target/debug/frontdesk
fi

work=$(mktemp -d)
daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]]; then kill -9 "$daemon_pid" 2>/dev/null || true; fi
  dpkg --purge frontdesk >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

deb=$(deploy/debian/build-deb.sh --binary "$binary" --out "$work" --fast)
dpkg -i "$deb" >"$work/install.log" 2>&1 || fail "dpkg -i failed: $(cat "$work/install.log")"

# What the install made.
getent passwd frontdesk >/dev/null || fail "no frontdesk user"
[[ $(stat -c '%U %a' /var/lib/frontdesk) == "frontdesk 700" ]] ||
  fail "/var/lib/frontdesk is $(stat -c '%U %a' /var/lib/frontdesk), not frontdesk 700"
[[ -f /etc/frontdesk/clinic.toml ]] || fail "no /etc/frontdesk/clinic.toml"
grep -q 'password = "demo-' /etc/frontdesk/clinic.toml && fail "the installed dialplan kept the demo's public passwords"
grep -q 'demo-website-secret' /etc/frontdesk/clinic.toml && fail "the installed dialplan kept the demo's web-form secret"
[[ $(stat -c '%U:%G %a' /etc/frontdesk/frontdesk.env) == "root:frontdesk 640" ]] ||
  fail "frontdesk.env is $(stat -c '%U:%G %a' /etc/frontdesk/frontdesk.env)"
token=$(sed -n 's/^FRONTDESK_ADMIN_TOKEN=//p' /etc/frontdesk/frontdesk.env)
[[ ${#token} -ge 32 ]] || fail "no admin token in frontdesk.env"
runuser -u frontdesk -- /usr/bin/frontdesk check /etc/frontdesk/clinic.toml >/dev/null ||
  fail "the installed dialplan does not pass frontdesk check"

unit=/lib/systemd/system/frontdesk.service
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify warns: $verify"
for directive in 'User=frontdesk' 'StateDirectory=frontdesk' 'ProtectSystem=strict' 'ProtectHome=yes' \
  'NoNewPrivileges=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=$' 'RestrictAddressFamilies=' \
  'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -q "^${directive}" "$unit" || fail "the unit lacks ${directive}"
done

# The unit's command, as the package's user, on free ports.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
opts=$(sed -n 's/^FRONTDESK_OPTS="\(.*\)"$/\1/p' /etc/frontdesk/frontdesk.env)
[[ $opts == *"--sip 127.0.0.1:5060"* ]] || fail "a fresh install does not keep SIP on loopback: FRONTDESK_OPTS=$opts"
# systemd splits an unquoted $VAR on white space, as read -a does.
read -r -a command <<<"${exec_start//\$FRONTDESK_OPTS/$opts}"
for i in "${!command[@]}"; do
  case ${command[$i]} in
    --sip | --http) command[i + 1]=127.0.0.1:0 ;;
  esac
done
command+=(--rtp-ports 39000-39099)
# setpriv execs the daemon itself (runuser would stay its parent and
# keep the signals this script sends for itself).
FRONTDESK_ADMIN_TOKEN=$token setpriv --reuid frontdesk --regid frontdesk --init-groups -- "${command[@]}" \
  >"$work/stdout" 2>"$work/stderr" &
daemon_pid=$!
http=
for _ in $(seq 1 300); do
  http=$(sed -n 's/^http-listening //p' "$work/stdout")
  [[ -n $http ]] && break
  kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited: $(cat "$work/stderr")"
  sleep 0.1
done
[[ -n $http ]] || fail "the daemon did not listen within 30 s: $(cat "$work/stderr")"
[[ $(curl -sf "http://$http/api/health") == *'"ok"'* ]] || fail "/api/health"
curl -sf -H "Authorization: Bearer $token" "http://$http/api/agents" | grep -q '"agents"' ||
  fail "the admin API refused the package's token"
[[ $(stat -c %U /var/lib/frontdesk/journal.db) == frontdesk ]] || fail "no journal in /var/lib/frontdesk"
kill -HUP "$daemon_pid"
for _ in $(seq 1 100); do
  grep -Eq 'dialplan [^ ]+ reloaded' "$work/stderr" && break
  sleep 0.1
done
grep -Eq 'dialplan [^ ]+ reloaded' "$work/stderr" || fail "SIGHUP (ExecReload) did not reload: $(tail -5 "$work/stderr")"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
[[ $status == 0 ]] || fail "SIGTERM: exit $status: $(tail -5 "$work/stderr")"

dpkg --purge frontdesk >"$work/purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$work/purge.log")"
getent passwd frontdesk >/dev/null && fail "purge left the frontdesk user"
for path in /usr/bin/frontdesk "$unit" /var/lib/frontdesk /etc/frontdesk; do
  [[ -e $path ]] && fail "purge left $path"
done
echo "debian-package.sh: installed, served under the package's paths as its user, reloaded, drained and purged"
