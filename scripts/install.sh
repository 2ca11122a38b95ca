#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# install.sh: install the smith module and smith-agent on this host, then
# load the module and start the agent (in that order).
#
#   scripts/install.sh [--prefix DIR] [--root DIR] [--no-module] [--no-start]
#
#   --prefix DIR   where the binary and docs go (default /usr/local)
#   --root DIR     install into DIR instead of / (packaging, tests); implies
#                  --no-start and --no-module
#   --no-module    install only the agent (the module is managed elsewhere)
#   --no-start     install, but do not load the module or start the agent
#
# The module is installed with DKMS when dkms is present (rebuilt on kernel
# upgrades), else built once against /lib/modules/$(uname -r)/build; its
# version is git describe's.  Run again on a newer tree, it upgrades:
# the agent stops, the old module is unloaded, the new one loads, the
# agent starts.  The packages (docs/PACKAGES.md) are the first way.  The
# binary comes from bin/linux-ARCH/smith-agent or bin/smith-agent (make
# build), the first built for this machine's architecture (x86_64 or
# arm64), and is built here when neither is.
# An existing /etc/smith/smith-agent.toml is kept.  scripts/uninstall.sh
# undoes all of it.
set -euo pipefail
# shellcheck source=scripts/lib/install-common.sh
. "$(dirname "$0")/lib/install-common.sh"
parse_options "--no-module --no-start" "$@"
need_root

# This machine's architecture: its Go name and its ELF e_machine number.
case $(uname -m) in
x86_64) goarch=amd64 elf_machine=62 ;;
aarch64 | arm64) goarch=arm64 elf_machine=183 ;;
*) die "unsupported architecture $(uname -m) (smith runs on x86_64 and arm64)" ;;
esac
# Does binary $1 run here: an ELF file for this machine's architecture?
runs_here() {
	[ -x "$1" ] && [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] &&
		[ "$(od -An -tu2 -j 18 -N 2 "$1" | tr -d ' \n')" = "$elf_machine" ]
}

# The binary: SMITH_AGENT_BIN, else make build's for this architecture
# (bin/linux-ARCH/ from make build ARCH=..., or bin/), else built here.
if [ -n "${SMITH_AGENT_BIN:-}" ]; then
	bin=$SMITH_AGENT_BIN
	runs_here "$bin" || die "$bin is not an executable for $(uname -m)"
else
	bin=
	for b in "$src/bin/linux-$goarch/smith-agent" "$src/bin/smith-agent"; do
		if runs_here "$b"; then bin=$b; break; fi
		[ -e "$b" ] && say "skipping $b: not built for $(uname -m)"
	done
	if [ -z "$bin" ]; then
		say "building smith-agent for $goarch"
		go_build "bin/linux-$goarch/smith-agent" ./agent/cmd/smith-agent build "$goarch"
		bin=$src/bin/linux-$goarch/smith-agent
	fi
fi

install_dirs
install -m 0755 "$bin" "$root$prefix/bin/smith-agent"
say "binary: $prefix/bin/smith-agent"
install_config 0600 "$src/agent/smith-agent.toml" smith-agent.toml "set kafka.brokers and heartbeat.url there"
install -m 0644 "$src/docs/AGENT.md" "$src/docs/EVENTS.md" "$root$prefix/share/doc/smith/"
install_units smith-module.service smith-agent.service
say "systemd units: smith-module.service, smith-agent.service"

# The module's version: this tree's (scripts/version.sh; the packages
# convert the same to their version), or SMITH_VERSION.  It is the DKMS
# version and what the loaded module reports (/sys/module/smith/version).
ver=${SMITH_VERSION:-$("$src/scripts/version.sh" 2>/dev/null || :)}
if ((module)); then
	[ -n "$ver" ] || die "no version: $src is not a git checkout; set SMITH_VERSION"
	if command -v dkms >/dev/null; then
		say "module: DKMS smith/$ver"
		# Every registered version goes first, this one included: DKMS
		# skips building a version it already built.
		registered=$(dkms_versions)
		for old in $registered; do
			say "module: removing DKMS smith/$old"
			dkms remove -m smith -v "$old" --all
			rm -rf "/usr/src/smith-$old"
		done
		rm -rf "/usr/src/smith-$ver"
		mkdir -p "/usr/src/smith-$ver"
		tar -C "$src/kernel" --exclude='*.go' -cf - . | tar -C "/usr/src/smith-$ver" -xf -
		sed -i "s/^PACKAGE_VERSION=.*/PACKAGE_VERSION=\"$ver\"/" "/usr/src/smith-$ver/dkms.conf"
		dkms add -m smith -v "$ver"
		dkms install -m smith -v "$ver"
	else
		kdir=/lib/modules/$(uname -r)/build
		[ -d "$kdir" ] || die "no kernel headers at $kdir: install linux-headers-$(uname -r) or dkms"
		say "module: building against $kdir"
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		cp -r "$src/kernel/." "$tmp/"
		make -C "$kdir" M="$tmp" SMITH_VERSION="$ver" modules >/dev/null
		install -D -m 0644 "$tmp/smith.ko" "/lib/modules/$(uname -r)/extra/smith.ko"
		depmod -a
	fi
fi

if ((start)); then
	# An upgrade replaces a loaded module: the agent stops first (the
	# module refuses to unload while /dev/smith is open), then the old
	# module goes, then both start again.
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl enable smith-module.service smith-agent.service
		if ((module)) && [ -d /sys/module/smith ]; then
			say "replacing the loaded module $(cat /sys/module/smith/version)"
			systemctl stop smith-agent.service smith-module.service
		fi
	else
		stop_unmanaged_agent
	fi
	if ((module)) && [ -d /sys/module/smith ]; then
		modprobe -r smith || die "the old module is in use (by what holds /dev/smith); the new one is installed and loads once it is unloaded"
	fi
	if [ -d /run/systemd/system ]; then
		# The agent requires the module: starting it loads the module first.
		systemctl restart smith-agent.service
		say "started: $(systemctl is-active smith-module.service) module, $(systemctl is-active smith-agent.service) agent"
	else
		modprobe smith
		nohup "$prefix/bin/smith-agent" -config /etc/smith/smith-agent.toml >/dev/null 2>&1 &
		say "started without systemd: module loaded, agent pid $!"
	fi
	if ((module)) && [ "$(cat /sys/module/smith/version)" != "$ver" ]; then
		die "the loaded module is $(cat /sys/module/smith/version), not $ver"
	fi
fi
