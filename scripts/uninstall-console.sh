#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# uninstall-console.sh: stop smith-console and remove what
# scripts/install-console.sh installed.
#
#   scripts/uninstall-console.sh [--prefix DIR] [--root DIR] [--purge]
#
#   --prefix DIR   as given to install-console.sh (default /usr/local)
#   --root DIR     remove from DIR instead of / (no services touched)
#   --purge        also remove the configuration, the secrets, the host
#                  registry (/var/lib/smith-console: every enrolled host's
#                  credential is lost) and the audit log
set -euo pipefail
# shellcheck source=scripts/lib/install-common.sh
. "$(dirname "$0")/lib/install-common.sh"
parse_options "--purge" "$@"

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now smith-console.service 2>/dev/null || true
fi
rm -f "$root/etc/systemd/system/smith-console.service" "$root$prefix/bin/smith-console" \
	"$root$prefix/share/doc/smith/CONSOLE.md" "$root$prefix/share/doc/smith/HEARTBEAT.md"
rmdir "$root$prefix/share/doc/smith" 2>/dev/null || true
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
if ((purge)); then
	# DynamicUser keeps the state in /var/lib/private, behind a symlink.
	rm -rf "$root/etc/smith/smith-console.toml" "$root/etc/smith/smith-console.env" \
		"$root/var/lib/smith-console" "$root/var/lib/private/smith-console" \
		"$root/var/log/smith-console" "$root/var/log/private/smith-console"
	rmdir "$root/etc/smith" 2>/dev/null || true
	say "removed, configuration, secrets, registry and audit log included"
else
	say "removed; kept /etc/smith/smith-console.{toml,env} and /var/lib/smith-console (--purge removes them)"
fi
