# SPDX-License-Identifier: GPL-2.0
# make demo: load the module, start smith-agent on it and print the JSON
# events of activity generated in the guest, live.  Not part of make
# test-vm (the agent scenario checks the same path field by field).
# test-vm: no
# kernels: 6.1
# timeout: 600
echo "demo: kernel $(uname -r), loading /smith.ko"
insmod /smith.ko
ls -l /dev/smith
if [ -d /sys/module/smith/parameters ]; then
	echo "demo: module parameters:"
	for p in /sys/module/smith/parameters/*; do
		echo "  ${p##*/} = $(cat "$p" 2>/dev/null)"
	done
fi

mkdir -p /tmp/demo
cat >/tmp/demo/agent.toml <<'CONF'
[agent]
format = "smith"
state_dir = "/tmp/demo/state"
pid_file = "/tmp/demo/smith.pid"
[log]
file = "/tmp/demo/agent.log"
[output]
sinks = ["stdout"]
[metrics]
listen = "127.0.0.1:9464"
CONF
echo "demo: starting smith-agent (JSON events below, one per line)"
echo "----------------------------------------------------------------------"
smith-agent -config /tmp/demo/agent.toml &
agent=$!
sleep 1

# Activity for the hooks: execs, a refused and an accepted connect, and a
# module load.
ls / >/dev/null
sh -c 'echo "hello from a shell" >/dev/null'
cat /etc/hostname >/dev/null 2>&1 || true
# connect: refused (nothing on port 1), then accepted (the agent's metrics)
nc -w 1 127.0.0.1 1 </dev/null 2>/dev/null || true
printf 'GET /metrics HTTP/1.0\r\n\r\n' | nc -w 1 127.0.0.1 9464 >/dev/null 2>&1 || true
if [ -e /smith_hooktest.ko ]; then
	insmod /smith_hooktest.ko && rmmod smith_hooktest
fi
sleep 1

kill -TERM "$agent"
wait "$agent" || echo "demo: smith-agent exited with $?"
echo "----------------------------------------------------------------------"
echo "demo: agent log:"
cat /tmp/demo/agent.log
if [ -d /sys/kernel/debug/smith ]; then
	echo "demo: /sys/kernel/debug/smith:"
	for f in /sys/kernel/debug/smith/*; do
		[ -f "$f" ] && { echo "== ${f##*/}"; cat "$f"; }
	done
fi
rmmod smith
echo "demo: done"
