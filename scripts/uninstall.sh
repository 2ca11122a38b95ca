#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# uninstall.sh: stop smith-agent, unload the module (in that order) and
# remove what scripts/install.sh installed.
#
#   scripts/uninstall.sh [--prefix DIR] [--root DIR] [--purge]
#
#   --prefix DIR   as given to install.sh (default /usr/local)
#   --root DIR     remove from DIR instead of / (no services touched)
#   --purge        also remove /etc/smith, /var/lib/smith (sequence state
#                  and spool: unsent events are lost) and /var/log/smith*
set -euo pipefail

prefix=/usr/local
root=
purge=0
while (($#)); do
	case $1 in
	--prefix) prefix=$2; shift 2 ;;
	--root) root=$2; shift 2 ;;
	--purge) purge=1; shift ;;
	-h | --help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
say() { echo "uninstall.sh: $*"; }

if [ -z "$root" ]; then
	[ "$(id -u)" = 0 ] || { echo "uninstall.sh: must run as root" >&2; exit 1; }
	if [ -d /run/systemd/system ]; then
		# Agent first: the module cannot unload while /dev/smith is open.
		systemctl disable --now smith-agent.service 2>/dev/null || true
		systemctl disable --now smith-module.service 2>/dev/null || true
	else
		if [ -f /run/smith.pid ]; then
			pid=$(cat /run/smith.pid)
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		fi
	fi
	modprobe -r smith 2>/dev/null || rmmod smith 2>/dev/null || true
	ver=$(dkms status smith 2>/dev/null | sed -n 's|^smith[/,] *\([^,:]*\).*|\1|p' | head -n1 || true)
	if [ -n "$ver" ]; then
		dkms remove -m smith -v "$ver" --all || true
		rm -rf "/usr/src/smith-$ver"
		say "module: DKMS smith/$ver removed"
	fi
	rm -f "/lib/modules/$(uname -r)/extra/smith.ko"
	depmod -a 2>/dev/null || true
fi

rm -f "$root/etc/systemd/system/smith-agent.service" "$root/etc/systemd/system/smith-module.service"
[ -n "$root" ] || [ ! -d /run/systemd/system ] || systemctl daemon-reload
rm -f "$root$prefix/bin/smith-agent"
rm -rf "$root$prefix/share/doc/smith"
if ((purge)); then
	rm -rf "$root/etc/smith" "$root/var/lib/smith"
	rm -f "$root/var/log/smith.log"*
	rm -rf "$root/var/log/smith"
	say "configuration, state, spool and logs removed"
else
	say "kept /etc/smith, /var/lib/smith (spool) and logs; --purge removes them"
fi
say "done"
