#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build-module.sh VER  build the kernel module against Debian kernel VER
# (see kernels.sh; an -arm64 one is cross-built) with W=1, then check every source with sparse (C=2), and
# fail if either prints a warning or error about our sources.
#
# The sources of kernel/ (or $SMITH_MODULE_SRC) are copied to
# out/kernel-VER/ and built there, so several kernels build side by side
# without clobbering each other.  The result is out/kernel-VER/*.ko; the
# compiler and sparse output is kept in out/kernel-VER/build.log and
# out/kernel-VER/sparse.log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 VER (known: $(known_kernels))"
ver=$1
src=${SMITH_MODULE_SRC:-$SMITH_ROOT/kernel}
dst=$SMITH_OUT/kernel-$ver

[ -f "$src/Kbuild" ] || [ -f "$src/Makefile" ] ||
	die "$src has no Kbuild or Makefile: nothing to build"
kernel_env "$ver"
# Flags of a calling make (-n, -k, jobserver) must not leak into the
# kernel build, nor a target architecture meant for the Go build
# (make build ARCH=arm64): the kernel's comes from SMITH_KMAKE.
unset MAKEFLAGS MFLAGS MAKELEVEL ARCH CROSS_COMPILE

# One build of a kernel's tree at a time; initramfs.sh reads the .ko files
# under the same lock.
mkdir -p "$SMITH_OUT"
exec 8>"$SMITH_OUT/.kernel-$ver.lock"
flock 8
rm -rf "$dst"
mkdir -p "$dst"
# Only the C side: Go files under kernel/ (guest tests) would become a
# stray package under out/ for go vet ./... and go test ./... .
tar -C "$src" --exclude='*.go' -cf - . | tar -C "$dst" -xf -
# Objects copied from an in-tree build would be reused: start clean.
find "$dst" \( -name '*.o' -o -name '*.ko' -o -name '.*.cmd' -o -name '*.mod' \
	-o -name '*.mod.c' -o -name modules.order -o -name Module.symvers \) -delete

# The module reports the tree's version (scripts/version.sh).
kmake=(make -C "$SMITH_KBUILD" M="$dst" SMITH_VERSION="$("$SMITH_ROOT/scripts/version.sh" 2>/dev/null || echo unknown)")
[ -n "$SMITH_KCC" ] && kmake+=(CC="$SMITH_KCC")
# A cross build (arm64 on an amd64 host): ARCH= and CROSS_COMPILE=.
# shellcheck disable=SC2206 # SMITH_KMAKE is a list of VAR=value words
[ -n "$SMITH_KMAKE" ] && kmake+=($SMITH_KMAKE)
jobs=$(nproc)

# A diagnostic about one of our files: "<path>:<line>:[<col>:] warning|error:"
# where the path is inside the copied tree (absolute, or relative to it), or
# a modpost complaint about our module.  Diagnostics from the kernel's own
# headers are shown but do not fail the build.
ours() {
	grep -E "^($dst/|\./|[^/ :]+\.[ch]:)[^ :]*:[0-9]+(:[0-9]+)?: (warning|error):|^(WARNING|ERROR): modpost:" "$1" || true
}

check() {
	local what=$1 logf=$2 rc=$3 found
	found=$(ours "$logf")
	if [ "$rc" != 0 ] || [ -n "$found" ]; then
		echo "---- $what for $ver ($SMITH_KVER), full log $logf" >&2
		if [ -n "$found" ]; then
			echo "$found" >&2
		else
			tail -n 40 "$logf" >&2
		fi
		die "$what for kernel $ver failed"
	fi
	if grep -qiE 'warning:' "$logf"; then
		log "$what for $ver: warnings outside our sources (see $logf):"
		grep -iE 'warning:' "$logf" | sort -u | head -n 5 >&2
	fi
}

log "$ver: building $src for $SMITH_KVER with W=1 in $dst"
rc=0
"${kmake[@]}" -j"$jobs" W=1 modules >"$dst/build.log" 2>&1 || rc=$?
check "W=1 build" "$dst/build.log" "$rc"
ls "$dst"/*.ko >/dev/null 2>&1 || die "$ver: the build produced no .ko in $dst"

# C=2 runs sparse over every source, built or not.
command -v sparse >/dev/null || die "sparse is not installed (scripts/deps.sh installs it)"
log "$ver: sparse (C=2)"
rc=0
"${kmake[@]}" -j"$jobs" W=1 C=2 modules >"$dst/sparse.log" 2>&1 || rc=$?
check "sparse check" "$dst/sparse.log" "$rc"

log "$ver: ok: $(cd "$dst" && echo *.ko)"
