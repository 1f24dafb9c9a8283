#!/usr/bin/env bash
# docker-compose.yml and the Dockerfile, checked without a Docker engine
# (none runs on CI machines, so the images are never built here):
#   1. Debian's `docker-compose config` accepts the file;
#   2. every build target it names is a stage of the Dockerfile;
#   3. every SIPp scenario the sipp service runs is in tests/sipp/;
#   4. every flag the frontdesk service passes is one `frontdesk run` takes,
#      and the dialplan it serves passes `frontdesk check`.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
  echo "compose.sh: $*" >&2
  exit 1
}

command -v docker-compose >/dev/null || fail "docker-compose is not installed (tests/run installs Debian's)"
docker-compose -f docker-compose.yml config -q || fail "docker-compose config refused docker-compose.yml"
# The cluster profile (issue 24): Kamailio, Redis, PostgreSQL, three nodes.
docker-compose -f docker-compose.yml --profile cluster config -q ||
  fail "docker-compose config refused docker-compose.yml's cluster profile"
cluster=$(docker-compose -f docker-compose.yml --profile cluster config --services)
for service in kamailio redis postgres node1 node2 node3; do
  grep -qx "$service" <<<"$cluster" || fail "the cluster profile has no $service"
done
[[ -f deploy/kamailio/kamailio.cfg && -f deploy/kamailio/dispatcher.list ]] ||
  fail "the cluster profile mounts deploy/kamailio, which lacks kamailio.cfg or dispatcher.list"
config=$(docker-compose -f docker-compose.yml config)

for target in $(sed -n 's/^ *target: *\([a-z-]*\) *$/\1/p' <<<"$config" | sort -u); do
  grep -Eq "^FROM .* AS $target\$" Dockerfile || fail "build target '$target' is not a stage of the Dockerfile"
done

scenarios=$(grep -o '/scenarios/[A-Za-z0-9_-]*\.xml' docker-compose.yml | sort -u)
[[ -n $scenarios ]] || fail "the sipp service runs no scenario"
for scenario in $scenarios; do
  [[ -f tests/sipp/${scenario#/scenarios/} ]] || fail "$scenario is not in tests/sipp/"
done

# tests/run passes the binary its test build made; alone, cargo builds one.
if [[ -n ${FRONTDESK_BIN:-} ]]; then
  frontdesk=("$FRONTDESK_BIN")
else
  frontdesk=(cargo run --quiet --locked -p frontdesk --bin frontdesk --)
fi
help=$("${frontdesk[@]}" run --help)
flags=$(sed -n '/^  frontdesk:/,/^  [a-z]/p' <<<"$config" | grep -o -- '- --[a-z-]*' | sed 's/^- //' | sort -u)
[[ -n $flags ]] || fail "the frontdesk service passes no flags?"
for flag in $flags; do
  grep -q -- "$flag" <<<"$help" || fail "frontdesk run takes no $flag"
done
"${frontdesk[@]}" check dialplans/clinic.toml >/dev/null || fail "dialplans/clinic.toml does not pass frontdesk check"

echo "compose.sh: docker-compose.yml and Dockerfile are consistent (images not built: no Docker engine here)"
