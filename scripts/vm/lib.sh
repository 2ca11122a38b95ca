# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the VM harness scripts; sourced, not run.

SMITH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMITH_CACHE=${SMITH_CACHE:-${HOME:-/root}/.cache/smith}
SMITH_OUT=${SMITH_OUT:-$SMITH_ROOT/out}
VM_DIR=$SMITH_ROOT/scripts/vm

log() { echo "${0##*/}: $*" >&2; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

# Kernels the harness knows: the names used on the command line and in
# $(KERNELS); kernels.sh holds the list and how to find each in Debian's
# archive.
known_kernels() { "$VM_DIR/kernels.sh" --known; }

# Debian architecture of kernel VER (a name kernels.sh knows): an -arm64
# name is the arm64 build, every other one amd64.
kernel_arch() {
	case $1 in
	*-arm64) echo arm64 ;;
	*) echo amd64 ;;
	esac
}

# guest_dir ARCH: where guest.sh puts the guest binaries for Debian
# architecture ARCH: out/guest for amd64, out/guest-ARCH for the others.
guest_dir() {
	if [ "$1" = amd64 ]; then
		echo "$SMITH_OUT/guest"
	else
		echo "$SMITH_OUT/guest-$1"
	fi
}

# kernel_env VER: the variables kernels.sh prints (SMITH_KVER, SMITH_VMLINUZ,
# SMITH_KBUILD, SMITH_KMODULES, SMITH_KCC, ...), fetching the kernel first if
# it is not in the cache yet.
kernel_env() {
	local out
	# Caches made before these existed do not set them: native amd64.
	SMITH_KARCH=amd64 SMITH_KMAKE= SMITH_BUSYBOX= SMITH_BUSYBOX_PKG=
	out=$("$VM_DIR/kernels.sh" "$1") || die "cannot get kernel $1"
	eval "$out"
}
