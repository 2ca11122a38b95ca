#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# smith-agent: /usr/bin/smith-agent and smith-agent.service.  smith-dkms
# (a dependency, configured first) has built and loaded the module.

start_agent() {
	if ! systemd_running; then
		say "systemd is not running: smith-agent not started; run it with: smith-agent -config /etc/smith/smith-agent.toml"
		return 0
	fi
	why=$(why_no_module)
	if [ -n "$why" ]; then
		say "smith-agent not started: $why"
		return 0
	fi
	systemctl daemon-reload
	systemctl "$1" smith-agent.service
	say "smith-agent ${1}ed"
}

on_install() {
	unit_enable smith-agent.service
	start_agent start
}

on_upgrade() {
	unit_enable smith-agent.service
	start_agent restart
}

on_remove() {
	if systemd_running; then
		systemctl stop smith-agent.service
	elif [ -f /run/smith.pid ] && kill -0 "$(cat /run/smith.pid)" 2>/dev/null; then
		die "systemd is not running and smith-agent runs (pid $(cat /run/smith.pid)): stop it first, then remove again"
	fi
	unit_disable smith-agent.service
	daemon_reload
}

on_abort_remove() {
	unit_enable smith-agent.service
}
