#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kernels.sh VER...  fetch a Debian kernel image, its headers and its kbuild
# tools into $SMITH_CACHE/kernels/VER/ and print where they are.
#
#   VER     5.10        bullseye            linux-image-5.10.0-N-amd64-unsigned
#           6.1         bookworm            linux-image-6.1.0-N-amd64(-unsigned)
#           6.12        bookworm-backports  linux-image-6.12.X+deb12-amd64-unsigned
#           6.1-rt      bookworm            linux-image-6.1.0-N-rt-amd64(-unsigned)
#           6.1-arm64   bookworm            linux-image-6.1.0-N-arm64(-unsigned)
#           6.12-arm64  bookworm-backports  linux-image-6.12.X+deb12-arm64-unsigned
#
# kernels.sh --known    prints every VER above
# kernels.sh --default  prints the VERs `make test` builds and boots (the
#                       default of KERNELS): all of them
#
# This is the one list of kernels: the Makefile, test.sh and lib.sh ask it,
# and the scenarios' "# kernels:" lines select from it by pattern
# (scripts/vm/test.sh).
#
# An -arm64 kernel comes with its arm64 headers and the host's own
# linux-kbuild of the same version (its tools run on the build machine);
# the module is cross-built (ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-),
# and the arm64 busybox-static of bookworm is unpacked beside it for the
# guest's initramfs.
#
# For each VER, stdout gets shell assignments (eval them):
#   SMITH_KVER      kernel release (uname -r in the guest)
#   SMITH_KPKG      Debian package version resolved (e.g. 6.1.158-1)
#   SMITH_VMLINUZ   the compressed kernel image (bzImage) as packaged
#   SMITH_VMLINUX   the same kernel uncompressed, booted through its PVH
#                   entry point (empty if it could not be made): this skips
#                   the firmware's boot path and the in-guest decompression,
#                   seconds of emulated CPU per boot
#   SMITH_KBUILD    headers build dir: make -C $SMITH_KBUILD M=... modules
#   SMITH_KMODULES  the kernel's own modules (/lib/modules/$SMITH_KVER)
#   SMITH_KCC       the compiler to build modules with (make CC=...), empty
#                   when the headers' own choice works
#   SMITH_KARCH     the kernel's Debian architecture (amd64, arm64)
#   SMITH_KMAKE     extra make arguments for a cross build (ARCH=...
#                   CROSS_COMPILE=...), empty for a native one
#   SMITH_BUSYBOX   a static busybox for the guest, empty: the host's
#   SMITH_BUSYBOX_PKG  its Debian package version, empty: the host's
#
# The newest revision with every package needed is found with apt-cache
# through a private apt configuration under $SMITH_CACHE/apt: its own
# sources list, lists and package cache, so the system's apt setup is left
# untouched.  The mirror is the one the system's apt sources use for Debian,
# or $SMITH_DEBIAN_MIRROR.  A kernel already extracted is used as it is,
# without touching the network; SMITH_KERNEL_REFRESH=1 resolves the newest
# revision again.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

KNOWN_KERNELS="5.10 6.1 6.12 6.1-rt 6.1-arm64 6.12-arm64"
DEFAULT_KERNELS=$KNOWN_KERNELS
case ${1:-} in
--known) echo "$KNOWN_KERNELS"; exit 0 ;;
--default) echo "$DEFAULT_KERNELS"; exit 0 ;;
esac

KDIR=$SMITH_CACHE/kernels
KEYRING=${SMITH_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# Package lists older than this are refreshed before resolving a kernel.
LISTS_MAX_AGE_MIN=${SMITH_APT_LISTS_MAX_AGE_MIN:-360}

# setup_apt ARCH: point APT_OPTS at the private apt configuration for
# Debian architecture ARCH ($SMITH_CACHE/apt for amd64, apt-ARCH for the
# others) and refresh its package lists when they are missing or stale.
APT_OPTS=()
setup_apt() {
	local arch=$1 suites
	APT_DIR=$SMITH_CACHE/apt
	# Suites hold the kernels: bullseye (5.10), bookworm (6.1),
	# bookworm-backports (6.12); arm64 is tested from 6.1 on.
	suites="bullseye bookworm bookworm-backports"
	if [ "$arch" != amd64 ]; then
		APT_DIR=$SMITH_CACHE/apt-$arch
		suites="bookworm bookworm-backports"
	fi
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	local m s
	m=$(mirror)
	local opts="[arch=$arch signed-by=$KEYRING]"
	for s in $suites; do
		echo "deb $opts $m $s main"
	done >"$APT_DIR/sources.list.new"
	mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null
		-o Dir::Etc::PreferencesParts=/dev/null
		-o "Dir::State::Lists=$APT_DIR/lists"
		-o "Dir::Cache=$APT_DIR/cache"
		-o Dir::State::status=/dev/null
		-o "APT::Architecture=$arch"
		-o "APT::Architectures=$arch"
		-o Acquire::Languages=none
		-o APT::Sandbox::User=root
	)
	# Only the Packages indices are needed, not the extras the system's
	# apt.conf.d may enable (AppStream metadata and icons, command-not-found).
	local t
	for t in DEP-11 DEP-11-icons-small DEP-11-icons DEP-11-icons-hidpi CNF Contents-deb; do
		APT_OPTS+=(-o "Acquire::IndexTargets::deb::$t::DefaultEnabled=false")
	done
	update_lists
}

# Refresh the private package lists when they are missing or stale.
update_lists() {
	local stamp=$APT_DIR/lists/.updated
	if [ -f "$stamp" ] && [ -z "$(find "$stamp" -mmin +"$LISTS_MAX_AGE_MIN")" ] &&
		[ "$(cat "$stamp")" = "$(cat "$APT_DIR/sources.list")" ]; then
		return
	fi
	log "updating private package lists ($APT_DIR)"
	apt-get "${APT_OPTS[@]}" -q update >&2 || die "apt-get update failed (mirror $(mirror))"
	cp "$APT_DIR/sources.list" "$stamp"
}

# pkg_version PKG [OPTS_ARRAY]: the candidate version of a package in the
# configuration of OPTS_ARRAY (default APT_OPTS), empty when the archive
# does not have it.
pkg_version() {
	local -n opts=${2:-APT_OPTS}
	apt-cache "${opts[@]}" show --no-all-versions "$1" 2>/dev/null |
		awk '$1 == "Version:" { print $2; exit }'
}

# resolve VER: set KVER, PKG_VERSION, PKGS (the kernel's architecture) and
# HOST_PKGS (the build machine's: kbuild when cross-building), name=version
# each, to the newest revision whose every package is in the archive.
# APT_OPTS must be the kernel architecture's, HOST_APT_OPTS the host's.
resolve() {
	local ver=$1 base=${1%-arm64} arch prefix flavour common kbuild abis abi img
	arch=$(kernel_arch "$ver")
	case $base in
	5.10)   prefix=5.10.0- flavour=$arch common=common ;;
	6.1)    prefix=6.1.0- flavour=$arch common=common ;;
	6.1-rt) prefix=6.1.0- flavour=rt-$arch common=common-rt ;;
	6.12)   prefix=6.12. flavour=$arch common=common ;;
	esac
	# ABI names (5.10.0-N, 6.12.X+deb12) that have headers for the flavour,
	# newest first.
	abis=$(apt-cache "${APT_OPTS[@]}" pkgnames "linux-headers-$prefix" |
		sed -n "s/^linux-headers-\(${prefix//./\\.}[0-9][^-]*\(-[0-9]*\)\{0,1\}\)-$flavour\$/\1/p" |
		sort -rV)
	[ -n "$abis" ] || die "no linux-headers-$prefix*-$flavour in the archive"
	for abi in $abis; do
		PKG_VERSION=$(pkg_version "linux-headers-$abi-$flavour")
		case $base in
		6.12) kbuild=linux-kbuild-$abi ;;
		*) kbuild=linux-kbuild-${base%-rt} ;;
		esac
		img=
		for cand in "linux-image-$abi-$flavour-unsigned" "linux-image-$abi-$flavour"; do
			[ "$(pkg_version "$cand")" = "$PKG_VERSION" ] && { img=$cand; break; }
		done
		[ -n "$img" ] || { log "$abi: no image at $PKG_VERSION, trying older"; continue; }
		local p ok=1
		[ "$(pkg_version "linux-headers-$abi-$common")" = "$PKG_VERSION" ] || { ok=; p=linux-headers-$abi-$common; }
		# kbuild holds programs run during the build: the host's.
		[ -z "$ok" ] || [ "$(pkg_version "$kbuild" HOST_APT_OPTS)" = "$PKG_VERSION" ] || { ok=; p="$kbuild ($HOST_ARCH)"; }
		[ -n "$ok" ] || { log "$abi: $p missing at $PKG_VERSION, trying older"; continue; }
		KVER=$abi-$flavour
		PKGS=("$img=$PKG_VERSION" "linux-headers-$abi-$flavour=$PKG_VERSION"
			"linux-headers-$abi-$common=$PKG_VERSION")
		HOST_PKGS=("$kbuild=$PKG_VERSION")
		BUSYBOX_VERSION=
		if [ "$arch" != "$HOST_ARCH" ]; then
			# The guest cannot run the host's busybox.
			BUSYBOX_VERSION=$(pkg_version busybox-static)
			[ -n "$BUSYBOX_VERSION" ] || die "no busybox-static for $arch in the archive"
			PKGS+=("busybox-static=$BUSYBOX_VERSION")
		fi
		return
	done
	die "no revision of kernel $ver has image, headers and kbuild in the archive"
}

# Kernel make arguments and GNU triplet of Debian architecture $1.
kernel_make_arch() {
	case $1 in
	amd64) echo "ARCH=x86 CROSS_COMPILE=x86_64-linux-gnu-" ;;
	arm64) echo "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" ;;
	*) die "no cross build for architecture $1" ;;
	esac
}

# make_vmlinux DIR: unpack the kernel image's compressed payload into
# DIR/vmlinux.  Debian's kernels have CONFIG_PVH, so QEMU can start the ELF
# directly.  Prints the path, or nothing when it cannot be made.
make_vmlinux() {
	local dir=$1 img cfg magic tool off
	img=$(sed -n 's/^SMITH_VMLINUZ=//p' "$dir/kernel.env")
	cfg=${img/vmlinuz-/config-}
	grep -q '^CONFIG_PVH=y' "$cfg" 2>/dev/null || return 0
	for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${magic%%:*}
		command -v "$tool" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$img" | cut -d: -f1 | head -n 3); do
			tail -c +"$((off + 1))" "$img" | "$tool" -dc 2>/dev/null >"$dir/vmlinux.tmp" || true
			if [ "$(head -c 4 "$dir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				mv "$dir/vmlinux.tmp" "$dir/vmlinux"
				echo "$dir/vmlinux"
				return 0
			fi
		done
	done
	rm -f "$dir/vmlinux.tmp"
	log "note: could not unpack $img; the VM boots the compressed image (slower)"
}

print_env() {
	# Caches made before SMITH_VMLINUX existed get it here, offline.
	if ! grep -q '^SMITH_VMLINUX=' "$1/kernel.env"; then
		echo "SMITH_VMLINUX=$(make_vmlinux "$1")" >>"$1/kernel.env"
	fi
	# shellcheck disable=SC1090,SC1091
	. "$1/kernel.env"
	cat "$1/kernel.env"
	log "$2: kernel $SMITH_KVER, Debian package version $SMITH_KPKG"
}

fetch() {
	local ver=$1 dir=$KDIR/$1 arch
	[[ " $KNOWN_KERNELS " == *" $ver "* ]] || die "unknown kernel '$ver' (known: $KNOWN_KERNELS)"
	if [ -z "${SMITH_KERNEL_REFRESH:-}" ] && [ -f "$dir/kernel.env" ]; then
		print_env "$dir" "$ver"
		return
	fi
	arch=$(kernel_arch "$ver")
	setup_apt "$HOST_ARCH"
	HOST_APT_OPTS=("${APT_OPTS[@]}")
	setup_apt "$arch"
	resolve "$ver"
	if [ -f "$dir/kernel.env" ] && grep -qx "SMITH_KPKG=$PKG_VERSION" "$dir/kernel.env" &&
		grep -qx "SMITH_KVER=$KVER" "$dir/kernel.env"; then
		print_env "$dir" "$ver"
		return
	fi
	log "$ver: fetching ${PKGS[*]} ${HOST_PKGS[*]} ($HOST_ARCH)"
	local tmp=$dir.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp/debs" "$tmp/root"
	(cd "$tmp/debs" && apt-get "${APT_OPTS[@]}" -q download "${PKGS[@]}" >&2 &&
		apt-get "${HOST_APT_OPTS[@]}" -q download "${HOST_PKGS[@]}" >&2) ||
		die "$ver: apt-get download ${PKGS[*]} ${HOST_PKGS[*]} failed"
	local deb
	for deb in "$tmp"/debs/*.deb; do
		dpkg-deb -x "$deb" "$tmp/root"
	done
	rm -rf "$tmp/debs"

	local build=/usr/src/linux-headers-$KVER
	# The arch headers' Makefile includes the common tree by absolute path;
	# point it into the extracted tree.
	[ -f "$tmp/root$build/Makefile" ] || die "$ver: $build/Makefile missing from the headers package"
	sed -i "s|/usr/src/|$dir/root/usr/src/|g" "$tmp/root$build/Makefile"
	# Symlinks into /usr/lib (scripts, tools) may be absolute too.
	local l t
	while IFS= read -r l; do
		t=$(readlink "$l")
		case $t in /usr/*) ln -sfn "$dir/root$t" "$l" ;; esac
	done < <(find "$tmp/root/usr/src" -maxdepth 2 -type l)

	# bullseye's headers name gcc-10, which bookworm does not have; gcc 12
	# builds 5.10 modules fine.  The newer kernels name gcc-12 themselves.
	local cc= kmake= busybox=
	[ "$ver" = 5.10 ] && cc=gcc
	if [ "$arch" != "$HOST_ARCH" ]; then
		kmake=$(kernel_make_arch "$arch")
		busybox=$dir/root/bin/busybox
		[ -x "$tmp/root/bin/busybox" ] || die "$ver: bin/busybox missing from busybox-static ($arch)"
	fi
	cat >"$tmp/kernel.env" <<-EOF
		SMITH_KVER=$KVER
		SMITH_KPKG=$PKG_VERSION
		SMITH_VMLINUZ=$dir/root/boot/vmlinuz-$KVER
		SMITH_KBUILD=$dir/root$build
		SMITH_KMODULES=$dir/root/lib/modules/$KVER
		SMITH_KCC=$cc
		SMITH_KARCH=$arch
		SMITH_KMAKE="$kmake"
		SMITH_BUSYBOX=$busybox
		SMITH_BUSYBOX_PKG=$BUSYBOX_VERSION
	EOF
	[ -f "$tmp/root/boot/vmlinuz-$KVER" ] || die "$ver: vmlinuz-$KVER missing from the image package"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	print_env "$dir" "$ver"
}

HOST_ARCH=$(dpkg --print-architecture)
[ $# -ge 1 ] || die "usage: $0 VER... (known: $KNOWN_KERNELS)"
mkdir -p "$KDIR"
# Several builds may ask for kernels at once: one fetch at a time.
exec 9>"$KDIR/.lock"
flock 9
for v in "$@"; do
	fetch "$v"
done
