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
# shellcheck source=scripts/lib/install-common.sh
. "$(dirname "$0")/lib/install-common.sh"
parse_options "--no-start" "$@"
need_root

bin=${SMITH_CONSOLE_BIN:-$src/bin/smith-console}
if [ ! -x "$bin" ]; then
	say "building smith-console"
	go_build bin/smith-console ./heartbeat/cmd/smith-console console
fi

install_dirs
install -m 0755 "$bin" "$root$prefix/bin/smith-console"
say "binary: $prefix/bin/smith-console"
# Readable by the service's transient user; it holds no secret.
install_config 0644 "$src/heartbeat/smith-console.toml" smith-console.toml
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
install_units smith-console.service
say "systemd unit: smith-console.service"

if ((start)); then
	[ -d /run/systemd/system ] || die "no systemd here: run $prefix/bin/smith-console serve -config /etc/smith/smith-console.toml yourself"
	systemctl daemon-reload
	systemctl enable smith-console.service
	systemctl restart smith-console.service
	say "started: $(systemctl is-active smith-console.service)"
fi
