#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# initramfs.sh VER OUTPUT [GUEST_DIR...]  build the test VM's initramfs for
# kernel VER as an uncompressed newc cpio archive (the kernel unpacks it
# faster than it would decompress it under emulation).  It holds:
#
#   /bin/busybox and its applet links     from busybox-static (the host's,
#                                         or for a foreign-architecture
#                                         kernel the one kernels.sh fetched)
#   /init                                 scripts/vm/init
#   /*.ko                                 out/kernel-VER/*.ko (build-module.sh)
#   /guest/                               every file of each GUEST_DIR
#   /scenarios/*.sh                       scripts/vm/scenarios/
#   /etc/{passwd,group,hosts,...}         enough for Go programs and tests
#
# The kernel's own modules are not needed: Debian builds the serial
# console, devtmpfs, IPv6, debugfs and kprobes into the kernel image.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: $0 VER OUTPUT [GUEST_DIR...]"
ver=$1 output=$2
shift 2

host_busybox=$(command -v busybox) || die "busybox not found (scripts/deps.sh installs busybox-static)"
# A dynamically linked busybox cannot run in the initramfs.
case $(ldd "$host_busybox" 2>&1 || true) in *"not a dynamic"*) ;; *) false ;; esac ||
	die "$host_busybox is not static: install busybox-static"
kernel_env "$ver"
busybox=$host_busybox
if [ -n "$SMITH_BUSYBOX" ]; then
	busybox=$SMITH_BUSYBOX
	[ -f "$busybox" ] || die "$busybox missing: SMITH_KERNEL_REFRESH=1 scripts/vm/kernels.sh $ver"
	# The guest's busybox cannot run here to list its applets: the host's
	# lists them, the same Debian version built with the same options.
	host_pkg=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
	[ "$host_pkg" = "$SMITH_BUSYBOX_PKG" ] ||
		log "note: host busybox-static $host_pkg, guest $SMITH_BUSYBOX_PKG: applet links may differ"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/smith-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,guest,scenarios}
cp "$busybox" "$stage/bin/busybox"
for applet in $("$host_busybox" --list-full); do
	[ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
install -m 0755 "$VM_DIR/init" "$stage/init"

cat >"$stage/etc/passwd" <<-EOF
	root:x:0:0:root:/root:/bin/sh
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$stage/etc/group" <<-EOF
	root:x:0:
	nogroup:x:65534:
EOF
cat >"$stage/etc/hosts" <<-EOF
	127.0.0.1	localhost smith-vm
	::1		localhost ip6-localhost ip6-loopback
EOF
echo "hosts: files dns" >"$stage/etc/nsswitch.conf"
echo smith-vm >"$stage/etc/hostname"
: >"$stage/etc/resolv.conf"

mkdir -p "$SMITH_OUT"
(
	flock -s 8
	kos=("$SMITH_OUT/kernel-$ver"/*.ko)
	if [ -e "${kos[0]}" ]; then
		cp "${kos[@]}" "$stage/"
	else
		log "warning: no module in $SMITH_OUT/kernel-$ver (run build-module.sh $ver)"
	fi
) 8>"$SMITH_OUT/.kernel-$ver.lock"

for d in "$@"; do
	[ -d "$d" ] || die "guest directory $d does not exist"
	cp -a "$d/." "$stage/guest/"
done
cp "$VM_DIR"/scenarios/*.sh "$stage/scenarios/" 2>/dev/null || true

mkdir -p "$(dirname "$output")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$output.tmp.$$"
mv "$output.tmp.$$" "$output"
log "$ver: $output ($(du -h "$output" | cut -f1))"
