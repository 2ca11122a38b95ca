#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# uninstall.sh: stop smith-agent, unload the module (in that order) and
# remove what scripts/install.sh installed.  When the module does not
# unload (in use), it stops there and removes nothing.
#
#   scripts/uninstall.sh [--prefix DIR] [--root DIR] [--purge]
#
#   --prefix DIR   as given to install.sh (default /usr/local)
#   --root DIR     remove from DIR instead of / (no services touched)
#   --purge        also remove /etc/smith, /var/lib/smith (sequence state
#                  and spool: unsent events are lost) and /var/log/smith*
set -euo pipefail
# shellcheck source=scripts/lib/install-common.sh
. "$(dirname "$0")/lib/install-common.sh"
parse_options "--purge" "$@"

if [ -z "$root" ]; then
	need_root
	units=()
	for u in smith-agent.service smith-module.service; do
		if [ -e "/etc/systemd/system/$u" ]; then units+=("$u"); fi
	done
	if [ -d /run/systemd/system ] && ((${#units[@]})); then
		# Agent first: the module cannot unload while /dev/smith is open.
		systemctl stop "${units[@]}"
	else
		stop_unmanaged_agent "; nothing removed"
	fi
	if [ -d /sys/module/smith ]; then
		modprobe -r smith || die "the module is in use (by what holds /dev/smith); nothing removed"
	fi
	if ((${#units[@]})) && [ -d /run/systemd/system ]; then
		systemctl disable "${units[@]}"
	fi
	if command -v dkms >/dev/null; then
		registered=$(dkms_versions)
		for ver in $registered; do
			dkms remove -m smith -v "$ver" --all
			rm -rf "/usr/src/smith-$ver"
			say "module: DKMS smith/$ver removed"
		done
	fi
	if [ -e "/lib/modules/$(uname -r)/extra/smith.ko" ]; then
		rm -f "/lib/modules/$(uname -r)/extra/smith.ko"
		depmod -a
	fi
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
