#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# smith-console: /usr/bin/smith-console, smith-console.service running as
# its own system user, /etc/smith/smith-console.toml.  It is not started on a
# first install: it needs the fleet token and the console password first.

on_preinstall() {
	if ! getent passwd smith-console >/dev/null; then
		say "creating system user smith-console"
		useradd --system --user-group --home-dir /var/lib/smith-console --no-create-home \
			--shell /usr/sbin/nologin --comment "Smith console" smith-console
	fi
}

on_install() {
	unit_enable smith-console.service
	daemon_reload
	say "put SMITH_FLEET_TOKEN=... and SMITH_CONSOLE_PASSWORD=... in /etc/smith/smith-console.env (mode 0600), then: systemctl start smith-console"
}

on_upgrade() {
	unit_enable smith-console.service
	if systemd_running && systemctl is-active --quiet smith-console.service; then
		systemctl daemon-reload
		systemctl restart smith-console.service
		say "smith-console restarted"
	fi
}

on_remove() {
	if systemd_running; then
		systemctl stop smith-console.service
	fi
	unit_disable smith-console.service
	daemon_reload
}

on_abort_remove() {
	unit_enable smith-console.service
}
