#!/usr/bin/env bash
# Builds frontdesk's Debian package with dpkg-deb from a built binary:
#   cargo build --release --locked && deploy/debian/build-deb.sh
# writes dist/frontdesk_<version>_<arch>.deb. Options:
#   --binary PATH   the frontdesk binary to package (default target/release/frontdesk)
#   --out DIR       where the .deb goes (default dist/)
#   --fast          no compression (tests package a debug build; not for shipping)
# Chosen over cargo-deb: no extra tool to install from crates.io, and the
# maintainer scripts and the unit are plain files here, readable as they ship.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=target/release/frontdesk
out=dist
compress=(-Zxz)
while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) compress=(-Znone); shift ;;
    *) echo "build-deb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x $binary ]] || { echo "build-deb.sh: no binary at $binary (cargo build --release --locked first)" >&2; exit 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

install -D -m 0755 "$binary" "$root/usr/bin/frontdesk"
install -D -m 0644 deploy/debian/frontdesk.service "$root/lib/systemd/system/frontdesk.service"
install -d "$root/usr/share/frontdesk/examples" "$root/usr/share/frontdesk/prompts" "$root/usr/share/doc/frontdesk"
install -m 0644 dialplans/clinic.toml dialplans/riverside-branches.toml "$root/usr/share/frontdesk/examples/"
install -m 0644 dialplans/prompts/*.wav "$root/usr/share/frontdesk/prompts/"
install -m 0644 README.md "$root/usr/share/doc/frontdesk/README.md"
install -D -m 0644 deploy/prometheus/frontdesk-rules.yml "$root/usr/share/doc/frontdesk/examples/prometheus/frontdesk-rules.yml"
install -m 0644 deploy/prometheus/prometheus.yml "$root/usr/share/doc/frontdesk/examples/prometheus/"
install -D -m 0644 deploy/grafana/frontdesk.json "$root/usr/share/doc/frontdesk/examples/grafana/frontdesk.json"
cat > "$root/usr/share/doc/frontdesk/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: frontdesk
License: MIT or Apache-2.0
COPYRIGHT
# The dialplan names its prompts relative to its folder.
install -d -m 0750 "$root/etc/frontdesk"
ln -s /usr/share/frontdesk/prompts "$root/etc/frontdesk/prompts"

install -d "$root/DEBIAN"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"

# The shared libraries the binary links, as dpkg-shlibdeps finds them.
mkdir -p "$work/src/debian"
printf 'Source: frontdesk\n\nPackage: frontdesk\nArchitecture: any\n' > "$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/frontdesk" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
installed=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: frontdesk
Version: $version
Architecture: $arch
Maintainer: frontdesk developers <frontdesk@localhost>
Installed-Size: $installed
Depends: ${depends:+$depends, }adduser
Section: comm
Priority: optional
Description: SIP call router and IVR for healthcare clinics
 frontdesk answers a clinic's calls, gives the emergency notice, learns what
 the patient needs, picks the department's queue and the best available
 agent, rings them and bridges the audio. Every inquiry is a lead with an
 owner, a response timer and an outcome.
 .
 This package runs it as a sandboxed systemd service (frontdesk.service)
 as the frontdesk user, with its dialplan in /etc/frontdesk and its journal
 in /var/lib/frontdesk.
CONTROL

mkdir -p "$out"
deb="$out/frontdesk_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >/dev/null
echo "$deb"
