# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the VM harness scripts; sourced, not run.

SMITH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMITH_CACHE=${SMITH_CACHE:-${HOME:-/root}/.cache/smith}
SMITH_OUT=${SMITH_OUT:-$SMITH_ROOT/out}
VM_DIR=$SMITH_ROOT/scripts/vm

log() { echo "${0##*/}: $*" >&2; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# Kernels the harness knows: the name used on the command line and in
# $(KERNELS), and how to find it in Debian's archive.
known_kernels() { echo "5.10 6.1 6.12 6.1-rt"; }

# kernel_env VER: the variables kernels.sh prints (SMITH_KVER, SMITH_VMLINUZ,
# SMITH_KBUILD, SMITH_KMODULES, SMITH_KCC, ...), fetching the kernel first if
# it is not in the cache yet.
kernel_env() {
	local out
	out=$("$VM_DIR/kernels.sh" "$1") || die "cannot get kernel $1"
	eval "$out"
}
