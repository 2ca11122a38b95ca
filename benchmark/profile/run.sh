#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh [VER]  the instruction profile of the hook-cost loops on kernel VER
# (default 6.1, amd64 only): builds the tbcount QEMU plugin, the guest's
# programs (each at its own text address, so that user-space counts can be
# told apart) and the module, boots the profile scenario under
# -icount shift=0,sleep=off with one vCPU, nokaslr and norandmaps, and
# writes the per-symbol table (benchmark/profile/symbolize.py) to
# out/profile/VER/report.txt.  See benchmark/profile/README.md.
#
# Environment: PROFILE_ARGS, the flags of smith-bench-guest -mark
# (default below: configurations none, shm and agent; exec 80, connect
# 4000, so the windows differ by 60 and 3000 operations).
set -euo pipefail
cd "$(dirname "$0")/../.."
ver=${1:-6.1}
case $ver in *-arm64) echo "run.sh: amd64 kernels only" >&2; exit 2 ;; esac
out=$PWD/out/profile/$ver
guest=$out/guest
mkdir -p "$guest"
PROFILE_ARGS=${PROFILE_ARGS:--configs none,shm,agent -exec-n 80 -connect-n 4000 -idle-seconds 0 -skip-transports}

cc=${CC:-gcc}
$cc -shared -fPIC -O2 -Wall -Wextra -fvisibility=hidden -o "$out/tbcount.so" benchmark/profile/tbcount.c
$cc -static -O2 -Wall -Wextra -o "$guest/profmark" benchmark/profile/profmark.c
# Text addresses: hookloop 0x20000000, noop 0x30000000, smith-agent
# 0x10000000; smith-bench-guest, busybox and profmark keep 0x400000.
$cc -static -O2 -Wall -Wextra -Wl,-Ttext-segment=0x20000000 -o "$guest/hookloop" benchmark/guest/hookloop.c
$cc -static -O2 -Wall -Wextra -Wl,-Ttext-segment=0x30000000 -o "$guest/noop" benchmark/guest/noop.c
CGO_ENABLED=0 go build -trimpath -o "$guest/smith-bench-guest" ./benchmark/cmd/smith-bench-guest
CGO_ENABLED=0 go build -trimpath -ldflags=-T=0x10001000 -o "$guest/smith-agent" ./agent/cmd/smith-agent
echo "$PROFILE_ARGS -agent /guest/smith-agent -clock instructions" >"$guest/profile-args"

SMITH_OUT=$out/build scripts/vm/build-module.sh "$ver"
SMITH_OUT=$out/build SMITH_GUEST_DIR=$guest SMITH_VM_QUIET=1 \
	SMITH_VM_ICOUNT=1 SMITH_VM_SMP=1 SMITH_VM_TCG_THREAD=single \
	SMITH_VM_APPEND="nokaslr norandmaps" \
	SMITH_VM_QEMU_EXTRA="-plugin $out/tbcount.so,out=$out/counts.txt" \
	scripts/vm/run.sh "$ver" profile
python3 benchmark/profile/symbolize.py -console "$out/build/vm/$ver/profile/console.log" \
	-counts "$out/counts.txt" -guest "$guest" >"$out/report.txt"
echo "run.sh: report in $out/report.txt"
