#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# smith-dkms: the module's sources under /usr/src/smith-$SMITH_VERSION,
# built by DKMS for every kernel whose headers are installed, and loaded
# by smith-module.service (or modprobe where systemd is not running).

# Every DKMS version of smith but ours, one per line.
other_versions() {
	st=$(dkms status -m smith)
	echo "$st" | awk -v mine="$SMITH_VERSION" '
		{ sub(/^smith[\/,] */, ""); v = $0; sub(/[,:].*/, "", v); if (v != "" && v != mine && !seen[v]++) print v }'
}

dkms_build() {
	olds=$(other_versions)
	for old in $olds; do
		say "removing DKMS smith/$old"
		dkms remove -m smith -v "$old" --all
	done
	if [ ! -d "/var/lib/dkms/smith/$SMITH_VERSION" ]; then
		dkms add -m smith -v "$SMITH_VERSION"
	fi
	built=0
	for build in /lib/modules/*/build; do
		[ -e "$build/Makefile" ] || continue
		k=${build%/build}
		k=${k##*/}
		say "building smith/$SMITH_VERSION for kernel $k with DKMS"
		dkms install -m smith -v "$SMITH_VERSION" -k "$k"
		built=$((built + 1))
	done
	if [ "$built" = 0 ]; then
		say "no kernel headers installed (/lib/modules/*/build): smith is not built yet;" \
			"install the headers of your kernel (linux-headers-$(uname -r), kernel-devel) and DKMS builds it"
	fi
}

# load_module install|upgrade: load the module just built; on upgrade
# replace a loaded old one.  With systemd, smith-module.service does it;
# restarting it stops smith-agent first and starts it again after
# (smith-agent.service Requires= it).
load_module() {
	unit_enable smith-module.service
	why=$(why_no_module)
	if [ -n "$why" ]; then
		say "module not loaded: $why"
		return 0
	fi
	if systemd_running; then
		systemctl daemon-reload
		if [ "$1" = upgrade ] && module_loaded; then
			say "replacing the loaded module: restarting smith-module.service (and smith-agent with it)"
			systemctl restart smith-module.service
		else
			systemctl start smith-module.service
		fi
	else
		say "systemd is not running: loading the module with modprobe"
		if [ "$1" = upgrade ] && module_loaded; then
			modprobe -r smith || die "cannot unload the old module (in use: stop smith-agent first), the new one loads at the next modprobe smith"
		fi
		modprobe smith
	fi
	module_loaded || die "the module did not load (see dmesg)"
	say "module loaded: smith $(cat /sys/module/smith/version)"
}

on_install() {
	dkms_build
	load_module install
}

on_upgrade() {
	dkms_build
	load_module upgrade
}

# deb: the old package removes its DKMS build while its sources are still
# there; the new one adds and builds its own in on_upgrade.
on_pre_upgrade() {
	if [ -d "/var/lib/dkms/smith/$SMITH_VERSION" ]; then
		dkms remove -m smith -v "$SMITH_VERSION" --all
	fi
}

# Stop (smith-agent first, then the module), and leave everything in place
# when the module does not unload: removing the files of a loaded module
# would leave a module nobody can rebuild or unload cleanly.
on_remove() {
	if systemd_running; then
		systemctl stop smith-module.service
	elif module_loaded; then
		say "systemd is not running: unloading the module with modprobe -r"
		modprobe -r smith || die "the module is in use (stop smith-agent and what else holds /dev/smith); nothing was removed"
	fi
	if module_loaded; then
		die "the module is still loaded (in use: stop smith-agent and what else holds /dev/smith, then remove again); nothing was removed"
	fi
	unit_disable smith-module.service
	if [ -d "/var/lib/dkms/smith/$SMITH_VERSION" ]; then
		dkms remove -m smith -v "$SMITH_VERSION" --all
	fi
}

on_abort_remove() {
	unit_enable smith-module.service
}
