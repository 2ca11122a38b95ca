# SPDX-License-Identifier: GPL-2.0
# make demo: load the module, run smith-agent printing JSON events to
# stdout, make some processes and connections for it to see, stop it.
# test-vm: no
# kernels: 6.1
# timeout: 600
echo "demo: kernel $(uname -r), loading /smith.ko"
insmod /smith.ko
ls -l /dev/smith
echo "demo: module parameters:"
for p in /sys/module/smith/parameters/*; do
	echo "  ${p##*/} = $(cat "$p" 2>/dev/null)"
done

if [ -x /guest/smith-agent ]; then
	mkdir -p /tmp/smith
	cat >/tmp/smith/agent.toml <<-CONF
		[agent]
		state_dir = "/tmp/smith"
		pid_file = "/tmp/smith/smith.pid"
		[log]
		file = ""
		[metrics]
		listen = ""
	CONF
	echo "demo: smith-agent, events as JSON lines:"
	/guest/smith-agent -config /tmp/smith/agent.toml &
	agent=$!
	sleep 2
	# Something for the hooks to see: execs, a refused TCP connect over
	# IPv4 and IPv6, a UDP connect.
	ls / >/dev/null
	uname -a >/dev/null
	nc -w 1 127.0.0.1 9 </dev/null 2>/dev/null || true
	nc -w 1 ::1 9 </dev/null 2>/dev/null || true
	nc -u -w 1 127.0.0.1 53 </dev/null 2>/dev/null || true
	sleep 2
	kill -TERM "$agent"
	wait "$agent" || echo "demo: smith-agent exited with $?"
fi

if [ -d /sys/kernel/debug/smith ]; then
	echo "demo: /sys/kernel/debug/smith:"
	for f in /sys/kernel/debug/smith/*; do
		[ -f "$f" ] && { echo "== ${f##*/}"; cat "$f"; }
	done
fi
rmmod smith
echo "demo: module unloaded"
