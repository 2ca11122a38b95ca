# SPDX-License-Identifier: GPL-2.0
# make demo: load the module, run smith-agent printing JSON events to
# stdout, make some processes and connections for it to see, stop it.
# test-vm: no
# kernels: 6.1
# timeout: 600
stats=/sys/kernel/debug/smith/stats
# Shell builtins only: the demo's own polling should not show up as execs.
modstat() {
	while read -r k v; do
		[ "$k" = "$1" ] && { echo "$v"; return; }
	done <"$stats"
}
# wait_stat NAME VALUE: up to 30 s for a module counter to show VALUE.
wait_stat() {
	i=0
	while [ "$(modstat "$1")" != "$2" ]; do
		i=$((i + 1)); [ $i -ge 300 ] && return 1; sleep 0.1
	done
}
# wait_caught_up: up to 30 s for the reader to reach the producer.
wait_caught_up() {
	i=0
	while [ "$(modstat producer_pos)" != "$(modstat consumer_pos)" ]; do
		i=$((i + 1)); [ $i -ge 300 ] && return 1; sleep 0.1
	done
}

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
	# The module records from the moment a reader attaches: wait for that
	# rather than guess how long the agent takes to start.
	wait_stat recording 1 || echo "demo: the agent did not attach within 30 s"
	# Something for the hooks to see: execs (one of a missing file), and a
	# refused TCP connect over IPv4 and over IPv6.
	# Explicit paths: busybox's shell would run its own applets in process
	# or through /proc/self/exe, and the demo should show ordinary execs.
	/bin/ls / >/dev/null
	/bin/uname -a >/dev/null
	/bin/sh -c '/bin/echo "an argument with spaces" >/dev/null'
	/bin/nonexistent-command 2>/dev/null || true
	nc -w 1 127.0.0.1 9 </dev/null 2>/dev/null || true
	nc -w 1 ::1 9 </dev/null 2>/dev/null || true
	# Stop once the agent has consumed everything the module wrote (what
	# it had not would stay in the ring for its next start, not be lost).
	wait_caught_up || echo "demo: the agent is still behind after 30 s"
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
