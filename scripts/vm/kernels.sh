#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kernels.sh VER...  fetch a Debian kernel image, its headers and its kbuild
# tools into $SMITH_CACHE/kernels/VER/ and print where they are.
#
#   VER     5.10    bullseye            linux-image-5.10.0-N-amd64-unsigned
#           6.1     bookworm            linux-image-6.1.0-N-amd64(-unsigned)
#           6.12    bookworm-backports  linux-image-6.12.X+deb12-amd64-unsigned
#           6.1-rt  bookworm            linux-image-6.1.0-N-rt-amd64(-unsigned)
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

APT_DIR=$SMITH_CACHE/apt
KDIR=$SMITH_CACHE/kernels
KEYRING=${SMITH_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# Package lists older than this are refreshed before resolving a kernel.
LISTS_MAX_AGE_MIN=${SMITH_APT_LISTS_MAX_AGE_MIN:-360}

APT_OPTS=()
setup_apt() {
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	local m
	m=$(mirror)
	# Suites hold the three kernels: bullseye (5.10), bookworm (6.1),
	# bookworm-backports (6.12).
	local opts="[arch=amd64 signed-by=$KEYRING]"
	cat >"$APT_DIR/sources.list.new" <<-EOF
		deb $opts $m bullseye main
		deb $opts $m bookworm main
		deb $opts $m bookworm-backports main
	EOF
	mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null
		-o Dir::Etc::PreferencesParts=/dev/null
		-o "Dir::State::Lists=$APT_DIR/lists"
		-o "Dir::Cache=$APT_DIR/cache"
		-o Dir::State::status=/dev/null
		-o APT::Architecture=amd64
		-o APT::Architectures=amd64
		-o Acquire::Languages=none
		-o APT::Sandbox::User=root
	)
	# Only the Packages indices are needed, not the extras the system's
	# apt.conf.d may enable (AppStream metadata and icons, command-not-found).
	local t
	for t in DEP-11 DEP-11-icons-small DEP-11-icons DEP-11-icons-hidpi CNF Contents-deb; do
		APT_OPTS+=(-o "Acquire::IndexTargets::deb::$t::DefaultEnabled=false")
	done
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

# Candidate version of a package, empty when the archive does not have it.
pkg_version() {
	apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null |
		awk '$1 == "Version:" { print $2; exit }'
}

# resolve VER: set ABI, PKG_VERSION and PKGS (name=version...) to the newest
# revision whose every package is in the archive.
resolve() {
	local ver=$1 prefix flavour common kbuild abis abi img
	case $ver in
	5.10)   prefix=5.10.0- flavour=amd64 common=common ;;
	6.1)    prefix=6.1.0- flavour=amd64 common=common ;;
	6.1-rt) prefix=6.1.0- flavour=rt-amd64 common=common-rt ;;
	6.12)   prefix=6.12. flavour=amd64 common=common ;;
	*) die "unknown kernel '$ver' (known: $(known_kernels))" ;;
	esac
	# ABI names (5.10.0-N, 6.12.X+deb12) that have headers for the flavour,
	# newest first.
	abis=$(apt-cache "${APT_OPTS[@]}" pkgnames "linux-headers-$prefix" |
		sed -n "s/^linux-headers-\(${prefix//./\\.}[0-9][^-]*\(-[0-9]*\)\{0,1\}\)-$flavour\$/\1/p" |
		sort -rV)
	[ -n "$abis" ] || die "no linux-headers-$prefix*-$flavour in the archive"
	for abi in $abis; do
		PKG_VERSION=$(pkg_version "linux-headers-$abi-$flavour")
		case $ver in
		6.12) kbuild=linux-kbuild-$abi ;;
		*) kbuild=linux-kbuild-${ver%-rt} ;;
		esac
		img=
		for cand in "linux-image-$abi-$flavour-unsigned" "linux-image-$abi-$flavour"; do
			[ "$(pkg_version "$cand")" = "$PKG_VERSION" ] && { img=$cand; break; }
		done
		[ -n "$img" ] || { log "$abi: no image at $PKG_VERSION, trying older"; continue; }
		local p ok=1
		for p in "linux-headers-$abi-$common" "$kbuild"; do
			[ "$(pkg_version "$p")" = "$PKG_VERSION" ] || { ok=; break; }
		done
		[ -n "$ok" ] || { log "$abi: $p missing at $PKG_VERSION, trying older"; continue; }
		KVER=$abi-$flavour
		PKGS=("$img=$PKG_VERSION" "linux-headers-$abi-$flavour=$PKG_VERSION"
			"linux-headers-$abi-$common=$PKG_VERSION" "$kbuild=$PKG_VERSION")
		return
	done
	die "no revision of kernel $ver has image, headers and kbuild in the archive"
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
	local ver=$1 dir=$KDIR/$1
	if [ -z "${SMITH_KERNEL_REFRESH:-}" ] && [ -f "$dir/kernel.env" ]; then
		print_env "$dir" "$ver"
		return
	fi
	setup_apt
	update_lists
	resolve "$ver"
	if [ -f "$dir/kernel.env" ] && grep -qx "SMITH_KPKG=$PKG_VERSION" "$dir/kernel.env" &&
		grep -qx "SMITH_KVER=$KVER" "$dir/kernel.env"; then
		print_env "$dir" "$ver"
		return
	fi
	log "$ver: fetching ${PKGS[*]}"
	local tmp=$dir.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp/debs" "$tmp/root"
	(cd "$tmp/debs" && apt-get "${APT_OPTS[@]}" -q download "${PKGS[@]}" >&2) ||
		die "$ver: apt-get download ${PKGS[*]} failed"
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
	local cc=
	[ "$ver" = 5.10 ] && cc=gcc
	cat >"$tmp/kernel.env" <<-EOF
		SMITH_KVER=$KVER
		SMITH_KPKG=$PKG_VERSION
		SMITH_VMLINUZ=$dir/root/boot/vmlinuz-$KVER
		SMITH_KBUILD=$dir/root$build
		SMITH_KMODULES=$dir/root/lib/modules/$KVER
		SMITH_KCC=$cc
	EOF
	[ -f "$tmp/root/boot/vmlinuz-$KVER" ] || die "$ver: vmlinuz-$KVER missing from the image package"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	print_env "$dir" "$ver"
}

[ $# -ge 1 ] || die "usage: $0 VER... (known: $(known_kernels))"
mkdir -p "$KDIR"
# Several builds may ask for kernels at once: one fetch at a time.
exec 9>"$KDIR/.lock"
flock 9
for v in "$@"; do
	fetch "$v"
done
