# SPDX-License-Identifier: GPL-2.0
# The soak test (docs/RELIABILITY.md): module, kfake broker, smith-agent and
# a tagged load in this one boot, with faults injected (broker restarts,
# agent SIGKILL, spool full, ring saturated, reader detached); at the end
# every tagged syscall is reconciled against Kafka.  smith-soak's flags
# come from /guest/soak-args (scripts/mk/soak.mk: make test-soak, make
# soak).  smith-soak run -print-result prints the result JSON gzip'd and
# base64'd between SMITH-SOAK-JSON markers (internal/harness, the VM
# result channel); `smith-soak report` takes it from the console.
# test-vm: no
# kernels: 6.1
# timeout: 600
args=$(cat /guest/soak-args 2>/dev/null || true)
status=0
# shellcheck disable=SC2086 # args is a list of flags
smith-soak run -o /tmp/soak-result.json -print-result $args || status=$?
if [ "$status" != 0 ]; then
	for f in /tmp/soak/agent.log /tmp/soak/agent.out /tmp/soak/broker.log; do
		[ -f "$f" ] && { echo "---- last lines of $f"; tail -n 40 "$f"; }
	done
fi
exit $status
