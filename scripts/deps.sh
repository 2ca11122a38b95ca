#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what building and testing Smith needs on a Debian bookworm host.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

# Debian packages: one per line, grouped by what needs them.
PACKAGES=(
	# kernel module builds and static checks
	gcc make bc flex bison libelf-dev kmod dwarves sparse
	gcc-aarch64-linux-gnu  # the arm64 module builds (kernels NAME-arm64)
	libc6-dev-arm64-cross  # make bench: the guest's static C loops for arm64
	binutils-arm-linux-gnueabihf  # the AArch32 test program of the arm64 guests
	# the VM harness (qemu-system-arm has qemu-system-aarch64)
	qemu-system-x86 qemu-system-arm busybox-static cpio debian-archive-keyring xz-utils zstd
	chromium  # the console's browser test (heartbeat/web)
	systemd  # systemd-analyze scores the units' hardening (heartbeat/cli)
	redis-server  # the console replicas test (heartbeat/server)
	libc6-dev  # static C programs of the benchmarks (benchmark/guest, libc.a)
	# make test-packages: package checks and the throwaway Debian root
	lintian rpm mmdebstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "deps: need root to install packages: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

go mod download
