#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# install-console.sh: install smith-console as a hardened systemd service
# and start it.
#
#   scripts/install-console.sh [--prefix DIR] [--root DIR] [--no-start]
#
#   --prefix DIR   where the binary and docs go (default /usr/local)
#   --root DIR     install into DIR instead of / (packaging, tests); implies
#                  --no-start
#   --no-start     install, but do not start the service
#
# Installs bin/smith-console (make console; built here when missing), the
# unit smith-console.service, /etc/smith/smith-console.toml (kept when it
# exists) and /etc/smith/smith-console.env (mode 0600) with two new random
# secrets when it does not exist yet.  scripts/uninstall-console.sh undoes
# all of it.
set -euo pipefail

prefix=/usr/local
root=
start=1
while (($#)); do
	case $1 in
	--prefix) prefix=$2; shift 2 ;;
	--root) root=$2; start=0; shift 2 ;;
	--no-start) start=0; shift ;;
	-h | --help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install-console.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "install-console.sh: $*"; }
die() { echo "install-console.sh: $*" >&2; exit 1; }

if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
	die "must run as root"
fi

bin=${SMITH_CONSOLE_BIN:-$src/bin/smith-console}
if [ ! -x "$bin" ]; then
	say "building smith-console"
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -o bin/smith-console ./heartbeat/cmd/smith-console) ||
		die "cannot build smith-console (is Go installed?); run make console first"
fi

install -d -m 0755 "$root$prefix/bin" "$root/etc/smith" "$root/etc/systemd/system" "$root$prefix/share/doc/smith"
install -m 0755 "$bin" "$root$prefix/bin/smith-console"
say "binary: $prefix/bin/smith-console"
if [ -e "$root/etc/smith/smith-console.toml" ]; then
	say "keeping the existing /etc/smith/smith-console.toml"
else
	# Readable by the service's transient user; it holds no secret.
	install -m 0644 "$src/heartbeat/smith-console.toml" "$root/etc/smith/smith-console.toml"
	say "configuration: /etc/smith/smith-console.toml"
fi
if [ -e "$root/etc/smith/smith-console.env" ]; then
	say "keeping the existing /etc/smith/smith-console.env"
else
	secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
	(
		umask 077
		{
			echo "# smith-console secrets (docs/CONSOLE.md); agents get the fleet token."
			echo "SMITH_FLEET_TOKEN=$(secret)"
			echo "SMITH_CONSOLE_PASSWORD=$(secret)"
		} >"$root/etc/smith/smith-console.env"
	)
	say "secrets: /etc/smith/smith-console.env (mode 0600; give agents its SMITH_FLEET_TOKEN)"
fi
install -m 0644 "$src/docs/CONSOLE.md" "$src/docs/HEARTBEAT.md" "$root$prefix/share/doc/smith/"
sed "s|/usr/local|$prefix|g" "$src/scripts/systemd/smith-console.service" >"$root/etc/systemd/system/smith-console.service"
chmod 0644 "$root/etc/systemd/system/smith-console.service"
say "systemd unit: smith-console.service"

if ((start)); then
	[ -d /run/systemd/system ] || die "no systemd here: run $prefix/bin/smith-console serve -config /etc/smith/smith-console.toml yourself"
	systemctl daemon-reload
	systemctl enable smith-console.service
	systemctl restart smith-console.service
	say "started: $(systemctl is-active smith-console.service)"
fi
