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

# The Debian mirror from the system's apt sources (deb822 *.sources files or
# one-line *.list files): the first "deb" entry for a Debian release suite.
system_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no" &&
				    suites ~ /(^| )(bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)( |$)/ &&
				    uri != "") { print uri; found = 1; exit }
				types = suites = uri = enabled = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^[ \t]*#/ { next }
			tolower($1) == "types:"   { $1 = ""; types = $0 }
			tolower($1) == "suites:"  { $1 = ""; suites = $0 }
			tolower($1) == "uris:"    { uri = $2 }
			tolower($1) == "enabled:" { enabled = tolower($2) }
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI SUITE COMPONENTS...
		sed -e 's/\[[^]]*\]//' "$f" | awk '
			$1 == "deb" && $3 ~ /^(bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)$/ { print $2 }'
	done
}

mirror() {
	if [ -n "${SMITH_DEBIAN_MIRROR:-}" ]; then
		echo "$SMITH_DEBIAN_MIRROR"
		return
	fi
	local m
	m=$(system_mirror | head -n1)
	[ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list{,.d/}: set SMITH_DEBIAN_MIRROR to the Debian archive URI"
	echo "$m"
}
