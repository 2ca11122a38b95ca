# SPDX-License-Identifier: GPL-2.0
#
# install-common.sh: what scripts/install.sh, install-console.sh,
# uninstall.sh and uninstall-console.sh share.  Sourced, not run; it sets
#   name    the script's file name, for its messages
#   src     the tree the script runs from
# and parse_options sets
#   prefix  --prefix DIR (default /usr/local)
#   root    --root DIR (default "": /); it implies start=0 and module=0
#   start   0 with --no-start
#   module  0 with --no-module
#   purge   1 with --purge
# shellcheck shell=bash

name=$(basename "$0")
src=$(cd "$(dirname "$0")/.." && pwd)

say() { echo "$name: $*"; }
die() { echo "$name: $*" >&2; exit 1; }

# usage: the script's header comment, from its third line to the first
# line that is not a comment, without the "# ".
usage() { sed -n '3,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }

# parse_options "OPTIONS" ARGS...: the script's arguments.  Every script
# takes --prefix, --root and --help; OPTIONS are the others it takes
# (--no-start, --no-module, --purge).  An unknown one exits 2.
parse_options() {
	local takes=" $1 "
	shift
	prefix=/usr/local root= start=1 module=1 purge=0
	while (($#)); do
		case $1 in
		--prefix) prefix=$2; shift 2; continue ;;
		--root) root=$2; start=0; module=0; shift 2; continue ;;
		-h | --help) usage; exit 0 ;;
		esac
		[[ $takes == *" $1 "* ]] || { echo "$name: unknown option $1 (see --help)" >&2; exit 2; }
		case $1 in
		--no-start) start=0 ;;
		--no-module) module=0 ;;
		--purge) purge=1 ;;
		esac
		shift
	done
}

# need_root: an install into / (no --root) runs as root.
need_root() { [ -n "$root" ] || [ "$(id -u)" = 0 ] || die "must run as root"; }

# go_build OUT PKG TARGET [GOARCH]: build the Go package PKG into OUT
# (relative to the tree), static; when that fails, say to run make TARGET.
go_build() {
	(cd "$src" && env CGO_ENABLED=0 ${4:+"GOARCH=$4"} go build -trimpath -o "$1" "$2") ||
		die "cannot build ${1##*/} (is Go installed?); run make $3 first"
}

# install_dirs: the directories an install writes into.
install_dirs() {
	install -d -m 0755 "$root$prefix/bin" "$root/etc/smith" "$root/etc/systemd/system" "$root$prefix/share/doc/smith"
}

# install_config MODE FILE NAME [NOTE]: FILE as /etc/smith/NAME, unless
# that exists already (it is kept).
install_config() {
	if [ -e "$root/etc/smith/$3" ]; then
		say "keeping the existing /etc/smith/$3"
	else
		install -m "$1" "$2" "$root/etc/smith/$3"
		say "configuration: /etc/smith/$3${4:+ ($4)}"
	fi
}

# install_units UNIT...: scripts/systemd/UNIT into /etc/systemd/system,
# naming the paths under the prefix.
install_units() {
	local unit
	for unit; do
		sed "s|/usr/local|$prefix|g" "$src/scripts/systemd/$unit" >"$root/etc/systemd/system/$unit"
		chmod 0644 "$root/etc/systemd/system/$unit"
	done
}

# dkms_versions: the versions of smith DKMS has registered, one a line
# (fails when dkms status does).
dkms_versions() {
	local st
	st=$(dkms status -m smith) || return
	sed -n 's|^smith[/,] *\([^,:]*\).*|\1|p' <<<"$st" | sort -u
}

# stop_unmanaged_agent [WHY]: stop an agent started without systemd (its
# pid file), waiting up to 30 s; when it does not stop, die, WHY appended.
stop_unmanaged_agent() {
	[ -f /run/smith.pid ] || return 0
	local pid
	pid=$(cat /run/smith.pid)
	kill -0 "$pid" 2>/dev/null || return 0
	say "stopping smith-agent (pid $pid)"
	kill -TERM "$pid"
	for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
	die "smith-agent (pid $pid) did not stop within 30 s${1:-}"
}
