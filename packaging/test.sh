#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh V1DIR V2DIR: check the packages make packages wrote into V1DIR
# and V2DIR (the same build as revision 2), then install, upgrade and
# remove the .debs in a throwaway Debian root (make test-packages).
#
#   1. dpkg-deb --info/--contents, lintian (only the tags of
#      packaging/lintian-allow.txt may show), rpm -qp --info, --scripts,
#      --list, --requires and the config flags;
#   2. a bookworm root made with mmdebstrap from the system's Debian
#      mirror (scripts/vm/lib.sh), with dkms and the headers of the 6.1
#      kernel the VM tests use; its tarball is cached in
#      $SMITH_CACHE/packaging/, so later runs need no network;
#   3. in it (chroot): install V1, upgrade to V2, a removal while the
#      module is busy (must fail and keep everything), the removal; then
#      the same with scripts/install.sh and uninstall.sh.
#      DKMS really builds smith.ko there against the 6.1 headers.  The
#      root runs no systemd and cannot load modules: packaging/test/ puts
#      a systemctl and a modprobe on its PATH that record each call and
#      play the units and /sys/module/smith, and a uname that reports the
#      6.1 kernel; the order of the recorded calls is checked.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/../scripts/vm/lib.sh"

[ $# = 2 ] || die "usage: $0 V1DIR V2DIR"
v1dir=$(cd "$1" && pwd)
v2dir=$(cd "$2" && pwd)
here=$SMITH_ROOT/packaging
[ "$(id -u)" = 0 ] || die "needs root (chroot, and files owned by other users in the root)"

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
# check DESC CMD...: one check, counted.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else bad "$desc"; fi
}
has() { grep -qF -- "$2" <<<"$1"; }
hasline() { grep -qxF -- "$2" <<<"$1"; }
lacks() { ! grep -qF -- "$2" <<<"$1"; }
only_line() { [ "$(grep -c . <<<"$1")" = 1 ] && grep -q -- "$2" <<<"$1"; }
not_grep() { ! grep -qE -- "$1" <<<"$2"; }
one() {
	local f
	f=$(compgen -G "$1") || die "no package $1"
	[ "$(wc -l <<<"$f")" = 1 ] || die "more than one package $1"
	echo "$f"
}

t0=$(date +%s)
# Every architecture of PKG_ARCHS is checked as files; the root installs
# the host's own.
arches=${PKG_ARCHS:-amd64}
host_arch=$(dpkg --print-architecture)
has " $arches " " $host_arch " || die "PKG_ARCHS ($arches) lacks this host's architecture $host_arch"

# ---- 1. the package files ----
for arch in $arches; do
rpmarch=$([ "$arch" = amd64 ] && echo x86_64 || echo aarch64)
for dir in "$v1dir" "$v2dir"; do
	dkms=$(one "$dir/smith-dkms_*_all.deb")
	agent=$(one "$dir/smith-agent_*_$arch.deb")
	console=$(one "$dir/smith-console_*_$arch.deb")
	ver=$(dpkg-deb -f "$dkms" Version)
	log "checking $ver"
	for d in "$agent" "$console"; do
		check "$(basename "$d"): same version as smith-dkms" [ "$(dpkg-deb -f "$d" Version)" = "$ver" ]
	done
	check "smith-agent depends on smith-dkms (= $ver)" has "$(dpkg-deb -f "$agent" Depends)" "smith-dkms (= $ver)"
	check "smith-dkms depends on dkms" has "$(dpkg-deb -f "$dkms" Depends)" dkms

	info=$(dpkg-deb --info "$agent")
	for s in preinst postinst prerm postrm conffiles md5sums; do
		check "smith-agent has $s" has "$info" " $s "
	done
	check "smith-agent conffiles" [ "$(dpkg-deb --ctrl-tarfile "$agent" | tar -xO ./conffiles)" = /etc/smith/smith-agent.toml ]
	check "smith-console conffiles" [ "$(dpkg-deb --ctrl-tarfile "$console" | tar -xO ./conffiles)" = /etc/smith/smith-console.toml ]

	c=$(dpkg-deb --contents "$dkms")
	for f in dkms.conf Makefile main.c smith_abi.h hooktest/kmod/smith_hooktest.c; do
		check "smith-dkms ships /usr/src/smith-$ver/$f" has "$c" "./usr/src/smith-$ver/$f"
	done
	check "smith-dkms ships no Go file" lacks "$c" ".go"
	check "smith-dkms ships smith-module.service" has "$c" "./usr/lib/systemd/system/smith-module.service"
	conf=$(dpkg-deb --fsys-tarfile "$dkms" | tar -xO "./usr/src/smith-$ver/dkms.conf")
	check "dkms.conf PACKAGE_VERSION is $ver" hasline "$conf" "PACKAGE_VERSION=\"$ver\""

	c=$(dpkg-deb --contents "$agent")
	check "agent binary 0755" grep -qE '^-rwxr-xr-x root/root .* \./usr/bin/smith-agent$' <<<"$c"
	check "agent config 0600" grep -qE '^-rw------- root/root .* \./etc/smith/smith-agent.toml$' <<<"$c"
	check "agent state dir 0700" grep -qE '^drwx------ root/root .* \./var/lib/smith/$' <<<"$c"
	check "agent log dir" grep -qE '^drwxr-x--- root/root .* \./var/log/smith/$' <<<"$c"
	unit=$(dpkg-deb --fsys-tarfile "$agent" | tar -xO ./usr/lib/systemd/system/smith-agent.service)
	check "agent unit runs /usr/bin/smith-agent" hasline "$unit" "ExecStart=/usr/bin/smith-agent -config /etc/smith/smith-agent.toml"
	check "agent unit names no /usr/local" lacks "$unit" /usr/local

	c=$(dpkg-deb --contents "$console")
	check "console config 0640 root:smith-console" grep -qE '^-rw-r----- root/smith-console .* \./etc/smith/smith-console.toml$' <<<"$c"
	unit=$(dpkg-deb --fsys-tarfile "$console" | tar -xO ./usr/lib/systemd/system/smith-console.service)
	check "console unit runs as smith-console" hasline "$unit" "User=smith-console"

	for d in "$dkms" "$agent" "$console"; do
		for s in preinst postinst prerm postrm; do
			body=$(dpkg-deb --ctrl-tarfile "$d" | tar -xO "./$s")
			check "$(basename "$d") $s: sh -n" sh -n <<<"$body"
			check "$(basename "$d") $s: no '|| true'" lacks "$body" "|| true"
		done
	done

	# rpm
	rdkms=$(one "$dir/smith-dkms-*.noarch.rpm")
	ragent=$(one "$dir/smith-agent-*.$rpmarch.rpm")
	rconsole=$(one "$dir/smith-console-*.$rpmarch.rpm")
	rver=${ver%-*}
	rrel=${ver##*-}
	for r in "$rdkms" "$ragent" "$rconsole"; do
		i=$(rpm -qp --info "$r")
		check "$(basename "$r"): Version $rver" grep -qxF "Version     : $rver" <<<"$i"
		check "$(basename "$r"): Release $rrel" grep -qxF "Release     : $rrel" <<<"$i"
		s=$(rpm -qp --scripts "$r")
		for h in preinstall postinstall preuninstall postuninstall; do
			check "$(basename "$r"): $h scriptlet" has "$s" "$h scriptlet"
		done
		check "$(basename "$r"): scripts are the rpm ones" has "$s" "SMITH_FORMAT=rpm"
	done
	check "smith-agent.rpm requires smith-dkms = $ver" hasline "$(rpm -qp --requires "$ragent")" "smith-dkms = $ver"
	check "smith-dkms.rpm requires dkms" hasline "$(rpm -qp --requires "$rdkms")" dkms
	l=$(rpm -qp --list "$rdkms")
	check "smith-dkms.rpm lists dkms.conf" hasline "$l" "/usr/src/smith-$ver/dkms.conf"
	check "smith-agent.rpm lists the binary" hasline "$(rpm -qp --list "$ragent")" /usr/bin/smith-agent
	flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILENAMES}\n]' "$ragent" "$rconsole")
	check "agent config is %config(noreplace) 0600" hasline "$flags" "cn -rw------- /etc/smith/smith-agent.toml"
	check "console config is %config(noreplace) 0640" hasline "$flags" "cn -rw-r----- /etc/smith/smith-console.toml"
done
done
arch=$host_arch
v1=$(dpkg-deb -f "$(one "$v1dir/smith-dkms_*_all.deb")" Version)
v2=$(dpkg-deb -f "$(one "$v2dir/smith-dkms_*_all.deb")" Version)
check "dpkg: $v2 is newer than $v1" dpkg --compare-versions "$v2" gt "$v1"
check "rpm: $v2 is newer than $v1" [ "$(rpm --eval "%{lua: print(rpm.vercmp('$v2', '$v1'))}")" = 1 ]

log "lintian (allowed: $(grep -v '^#' "$here/lintian-allow.txt" | xargs))"
allowed=$(grep -v '^#' "$here/lintian-allow.txt" | paste -sd, -)
lrc=0
lout=$(lintian --tag-display-limit 0 --suppress-tags "$allowed" "$v1dir"/*.deb 2>&1) || lrc=$?
[ -z "$lout" ] || echo "$lout" >&2
check "lintian exits 0" [ "$lrc" = 0 ]
check "lintian: no error or warning outside lintian-allow.txt" not_grep '^[EW]:' "$lout"

# ---- 2. the throwaway root ----
eval "$("$SMITH_ROOT/scripts/vm/kernels.sh" 6.1)"
kver=$SMITH_KVER
cache=$SMITH_CACHE/packaging
base=$cache/bookworm-$kver.tar.zst
if [ ! -f "$base" ]; then
	m=$(mirror)
	log "making the base root $base from $m (once; cached)"
	mkdir -p "$cache"
	mmdebstrap --variant=apt --aptopt='APT::Install-Recommends "false"' \
		--include="dkms,linux-headers-$kver" bookworm "$base.tmp.tar.zst" \
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m bookworm main" >&2 ||
		die "mmdebstrap failed (mirror $m)"
	mv "$base.tmp.tar.zst" "$base"
fi
root=$SMITH_OUT/packages/root
if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" --zstd -xf "$base"
install -m 0755 "$here/test/systemctl" "$here/test/modprobe" "$root/usr/local/sbin/"
sed "s/@KVER@/$kver/" "$here/test/uname" >"$root/usr/local/bin/uname"
chmod 0755 "$root/usr/local/bin/uname"
mkdir -p "$root/pkgs/v1" "$root/pkgs/v2" "$root/run/smith-test" "$root/sys/module"
cp "$v1dir"/*.deb "$root/pkgs/v1/"
cp "$v2dir"/*.deb "$root/pkgs/v2/"
debs() { (cd "$root/pkgs/$1" && printf "/pkgs/$1/%s\n" smith-dkms_*.deb smith-agent_*_"$arch".deb smith-console_*_"$arch".deb); }
# DKMS needs /proc (and /dev/fd through it).
mount -t proc proc "$root/proc"
trap 'umount "$root/proc"' EXIT
# "systemd runs" (lib.sh's test) and "the kernel loads modules".
mkdir -p "$root/run/systemd/system"
: >"$root/run/smith-test/modules"
calls=$root/run/smith-test/calls
: >"$calls"

in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive SMITH_PROC_MODULES=/run/smith-test/modules "$@"
}
# status PKG: dpkg's state of it (installed, config-files, ...).
status() { in_root dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || echo "not-installed"; }
# in_order STEP LINE...: the recorded calls of this step hold the lines
# in this order (others may come between).
in_order() {
	local step=$1 got
	shift
	got=$(awk -v want="$(printf '%s\n' "$@")" '
		BEGIN { n = split(want, w, "\n"); i = 1 }
		i <= n && $0 == w[i] { i++ }
		END { print i - 1 }' "$calls")
	if [ "$got" = $# ]; then
		ok "$step: calls in order: $(printf '%s; ' "$@")"
	else
		bad "$step: calls not in order ($got of $# found in order): $(printf '%s; ' "$@")"
		sed 's/^/    /' "$calls" >&2
	fi
}
ko=/lib/modules/$kver/updates/dkms/smith.ko

# ---- 3a. install V1 ----
log "installing $v1 in $root (DKMS builds smith for $kver)"
out=$(in_root dpkg -i $(debs v1) 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/  | /'
check "install: dpkg -i exits 0" [ "$rc" = 0 ]
for p in smith-dkms smith-agent smith-console; do
	check "install: $p installed" [ "$(status $p)" = installed ]
done
check "install: dkms status: smith/$v1 installed for $kver" grep -q "^smith/$v1, $kver, .*: installed" <<<"$(in_root dkms status -m smith)"
check "install: smith.ko built for $kver" [ -f "$root$ko" ]
check "install: the module's version is $v1" [ "$(in_root modinfo -k "$kver" -F version smith)" = "$v1" ]
check "install: module $v1 loaded" [ "$(cat "$root/sys/module/smith/version")" = "$v1" ]
in_order install "systemctl enable smith-module.service" "systemctl start smith-module.service" "modprobe smith" \
	"unit start smith-module.service" "systemctl enable smith-agent.service" "systemctl start smith-agent.service" \
	"unit start smith-agent.service" "systemctl enable smith-console.service"
check "install: the console is not started (no secrets yet)" [ ! -e "$root/run/smith-test/active-smith-console.service" ]
check "install: the console says what to set" has "$out" "SMITH_FLEET_TOKEN=... and SMITH_CONSOLE_PASSWORD=... in /etc/smith/smith-console.env"
check "install: user smith-console" in_root getent passwd smith-console
check "install: smith-console.toml root:smith-console 0640" [ "$(in_root stat -c '%U:%G %a' /etc/smith/smith-console.toml)" = "root:smith-console 640" ]
check "install: agent config 0600" [ "$(in_root stat -c '%a' /etc/smith/smith-agent.toml)" = 600 ]
check "install: the packaged agent config is valid" in_root smith-agent -check-config -config /etc/smith/smith-agent.toml
echo "# changed by the operator" >>"$root/etc/smith/smith-agent.toml"

# ---- 3b. upgrade to V2 ----
: >"$calls"
log "upgrading to $v2"
out=$(in_root dpkg -i $(debs v2) 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/  | /'
check "upgrade: dpkg -i exits 0" [ "$rc" = 0 ]
for p in smith-dkms smith-agent smith-console; do
	check "upgrade: $p at $v2" [ "$(in_root dpkg-query -W -f='${Version}' $p)" = "$v2" ]
done
st=$(in_root dkms status -m smith)
check "upgrade: dkms status: smith/$v2 installed" grep -q "^smith/$v2, $kver, .*: installed" <<<"$st"
check "upgrade: dkms status: smith/$v1 gone" lacks "$st" "smith/$v1"
check "upgrade: /usr/src/smith-$v1 gone" [ ! -e "$root/usr/src/smith-$v1" ]
check "upgrade: the module's version is $v2" [ "$(in_root modinfo -k "$kver" -F version smith)" = "$v2" ]
in_order upgrade "systemctl restart smith-module.service" "unit stop smith-agent.service" "modprobe -r smith" \
	"unit stop smith-module.service" "modprobe smith" "unit start smith-module.service" "unit start smith-agent.service" \
	"systemctl restart smith-agent.service"
check "upgrade: module $v2 loaded in place of $v1" [ "$(cat "$root/sys/module/smith/version")" = "$v2" ]
check "upgrade: agent running" [ -e "$root/run/smith-test/active-smith-agent.service" ]
check "upgrade: the operator's agent config kept" grep -qxF "# changed by the operator" "$root/etc/smith/smith-agent.toml"

# ---- 3c. removal while the module is busy ----
: >"$calls"
touch "$root/run/smith-test/busy"
log "removing while another process holds the module (must fail)"
out=$(in_root dpkg -r smith-console smith-agent smith-dkms 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/  | /'
check "busy: dpkg -r fails" [ "$rc" != 0 ]
check "busy: says the module is still loaded" has "$out" "the module is still loaded"
in_order busy "systemctl stop smith-agent.service" "unit stop smith-agent.service" "systemctl stop smith-module.service" "modprobe -r smith"
check "busy: smith-dkms still installed" [ "$(status smith-dkms)" = installed ]
check "busy: sources kept" [ -f "$root/usr/src/smith-$v2/dkms.conf" ]
check "busy: DKMS build kept" grep -q "^smith/$v2, $kver, .*: installed" <<<"$(in_root dkms status -m smith)"
check "busy: smith.ko kept" [ -f "$root$ko" ]
check "busy: module still loaded" [ -d "$root/sys/module/smith" ]
check "busy: smith-agent removed (before the module)" [ "$(status smith-agent)" = config-files ]

# ---- 3d. removal without systemd ----
rm -rf "$root/run/systemd/system"
: >"$calls"
log "removing without systemd, still busy (must fail)"
out=$(in_root dpkg -r smith-dkms 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/  | /'
check "no systemd, busy: dpkg -r fails" [ "$rc" != 0 ]
check "no systemd, busy: says the module is in use" has "$out" "the module is in use"
check "no systemd, busy: smith-dkms still installed" [ "$(status smith-dkms)" = installed ]
rm "$root/run/smith-test/busy"
: >"$calls"
log "removing without systemd"
out=$(in_root dpkg -P smith-dkms smith-agent smith-console 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/  | /'
check "remove: dpkg -P exits 0" [ "$rc" = 0 ]
check "remove: says systemd is not running" has "$out" "systemd is not running"
in_order remove "modprobe -r smith"
check "remove: no systemctl start or stop" not_grep '^systemctl (start|stop|restart)' "$(cat "$calls")"
for p in smith-dkms smith-agent smith-console; do
	check "remove: $p purged" [ "$(status $p)" = "not-installed" ]
done
check "remove: module unloaded" [ ! -d "$root/sys/module/smith" ]
check "remove: dkms status empty" [ -z "$(in_root dkms status -m smith)" ]
check "remove: sources gone" [ ! -e "$root/usr/src/smith-$v2" ]
check "remove: smith.ko gone" [ ! -e "$root$ko" ]
check "remove: configuration purged" [ ! -e "$root/etc/smith/smith-agent.toml" ]

# ---- 3e. the second way: scripts/install.sh and uninstall.sh ----
# The same root, the packages gone, systemd "running" again: install
# version 1.0, install 1.1 over it (the loaded module must be replaced),
# uninstall while busy (must fail, removing nothing), uninstall.
mkdir -p "$root/run/systemd/system" "$root/src/bin" "$root/src/docs" "$root/src/agent"
tar -C "$SMITH_ROOT" -cf - kernel scripts | tar -C "$root/src" -xf -
cp "$SMITH_ROOT/agent/smith-agent.toml" "$root/src/agent/"
cp "$SMITH_ROOT/docs/AGENT.md" "$SMITH_ROOT/docs/EVENTS.md" "$root/src/docs/"
cp "$v1dir/bin-$arch/smith-agent" "$root/src/bin/"
script() {
	local what=$1
	shift
	: >"$calls"
	log "scripts: $what"
	out=$(in_root "$@" 2>&1) && rc=0 || rc=$?
	echo "$out" | sed 's/^/  | /'
}
script "install.sh, version 1.0" env SMITH_VERSION=1.0 /src/scripts/install.sh
check "install.sh: exits 0" [ "$rc" = 0 ]
check "install.sh: dkms status: smith/1.0 installed" grep -q "^smith/1\.0, $kver, .*: installed" <<<"$(in_root dkms status -m smith)"
check "install.sh: module 1.0 loaded" [ "$(cat "$root/sys/module/smith/version")" = 1.0 ]
in_order "install.sh" "modprobe smith" "unit start smith-module.service" "unit start smith-agent.service"
script "install.sh, version 1.1 over 1.0" env SMITH_VERSION=1.1 /src/scripts/install.sh
check "install.sh upgrade: exits 0" [ "$rc" = 0 ]
st=$(in_root dkms status -m smith)
check "install.sh upgrade: smith/1.1 installed, 1.0 gone" only_line "$st" "^smith/1\.1, $kver, .*: installed"
check "install.sh upgrade: /usr/src/smith-1.0 gone" [ ! -e "$root/usr/src/smith-1.0" ]
check "install.sh upgrade: module 1.1 loaded in place of 1.0" [ "$(cat "$root/sys/module/smith/version")" = 1.1 ]
in_order "install.sh upgrade" "unit stop smith-agent.service" "modprobe -r smith" "modprobe smith" "unit start smith-agent.service"
touch "$root/run/smith-test/busy"
script "uninstall.sh while the module is busy" /src/scripts/uninstall.sh
check "uninstall.sh busy: fails" [ "$rc" != 0 ]
check "uninstall.sh busy: says the module is in use" has "$out" "the module is in use"
check "uninstall.sh busy: does not say done" lacks "$out" "done"
check "uninstall.sh busy: DKMS build kept" grep -q "^smith/1\.1, $kver, .*: installed" <<<"$(in_root dkms status -m smith)"
check "uninstall.sh busy: sources kept" [ -f "$root/usr/src/smith-1.1/dkms.conf" ]
rm "$root/run/smith-test/busy"
script "uninstall.sh" /src/scripts/uninstall.sh
check "uninstall.sh: exits 0" [ "$rc" = 0 ]
check "uninstall.sh: module unloaded" [ ! -d "$root/sys/module/smith" ]
check "uninstall.sh: dkms status empty" [ -z "$(in_root dkms status -m smith)" ]
check "uninstall.sh: sources gone" [ ! -e "$root/usr/src/smith-1.1" ]

umount "$root/proc"
trap - EXIT
rm -rf "$root"
echo "test-packages: $(($(date +%s) - t0)) s"
echo "packages: $passed passed, $failed failed"
[ "$failed" = 0 ]
