#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The shared part of every maintainer script (packaging/main.go puts it
# first, then the package's part, then "smith_main ARGS").  POSIX sh: the
# scripts run under dash on Debian.  SMITH_PKG, SMITH_FORMAT (deb, rpm),
# SMITH_HOOK (preinst, postinst, prerm, postrm) and SMITH_VERSION (this
# package's version-release) are set before it.
#
# The package's part defines any of these; a missing one does nothing:
#   on_preinstall   before the files are unpacked (install and upgrade)
#   on_install      after a first install
#   on_upgrade      after an upgrade (the new package's files are in place)
#   on_pre_upgrade  before an upgrade, in the old package (deb only: rpm
#                   runs the new package's post-install first)
#   on_remove       before the files of a removal go (not on upgrade)
#   on_abort_remove a removal failed in on_remove or later (deb only)
# Nothing here hides an error: a failing step fails the script, and where
# a step cannot run (no systemd, no module support) it is said so.

say() { echo "$SMITH_PKG: $*"; }
die() { echo "$SMITH_PKG: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
call() { if type "$1" 2>/dev/null | grep -q function; then "$@"; fi; }

# smith_main ARGS: map the package manager's arguments to an event.
#   deb: preinst install|upgrade; postinst configure [OLD]; prerm
#        remove|upgrade; postrm remove|purge|upgrade|abort-*
#   rpm: $1 is the number of versions installed after the transaction:
#        %pre/%post 1 install, 2 upgrade; %preun/%postun 0 removal
smith_main() {
	case $SMITH_FORMAT:$SMITH_HOOK:${1:-} in
	deb:preinst:install | deb:preinst:upgrade | rpm:preinst:*) call on_preinstall ;;
	deb:postinst:configure)
		if [ -n "${2:-}" ]; then call on_upgrade "$2"; else call on_install; fi ;;
	deb:postinst:abort-remove) call on_abort_remove ;;
	deb:prerm:remove) call on_remove ;;
	deb:prerm:upgrade) call on_pre_upgrade ;;
	rpm:postinst:1) call on_install ;;
	rpm:postinst:*) call on_upgrade "" ;;
	rpm:prerm:0) call on_remove ;;
	*) ;; # the other hooks and arguments have nothing to do
	esac
}

# systemd_running: systemctl can start and stop units here (the test
# systemd itself uses: not in a chroot, a container without systemd, or a
# host booted with another init).
systemd_running() { [ -d /run/systemd/system ]; }

# unit_enable UNIT: enable it for the next boot (systemctl works offline).
unit_enable() {
	if have systemctl; then
		systemctl enable "$1"
	else
		say "systemctl not found: $1 not enabled (start smith yourself)"
	fi
}

unit_disable() {
	if have systemctl; then systemctl disable "$1"; fi
}

daemon_reload() {
	if systemd_running; then systemctl daemon-reload; fi
}

module_loaded() { [ -d /sys/module/smith ]; }

# The kernel's list of loaded modules, there only where modules can be
# loaded.  packaging/test.sh points SMITH_PROC_MODULES at a file of its
# own: its throwaway root runs on a kernel that cannot load modules.
proc_modules=${SMITH_PROC_MODULES:-/proc/modules}

# why_no_module: empty when the running kernel can load smith, else why
# not (said by the callers, which then leave the module alone).
why_no_module() {
	if [ ! -r "$proc_modules" ]; then
		echo "this system cannot load kernel modules (no $proc_modules: a chroot without /proc, a container, or a kernel without module support)"
	elif ! modinfo -k "$(uname -r)" -F filename smith >/dev/null 2>&1; then
		echo "smith is not built for the running kernel $(uname -r) (are its headers installed? dkms status smith)"
	fi
}
