# SPDX-License-Identifier: GPL-2.0
# The hook-cost and transport benchmarks of `make bench` (never part of
# make test): benchmark/cmd/smith-bench-guest runs all of it in this one
# boot; its JSON result is printed gzip'd and base64'd between
# SMITH-BENCH-JSON markers, and `smith-bench vmresult` takes it from the
# console log.  Its flags come from /guest/bench-args (scripts/mk/bench.mk).
# test-vm: no
# timeout: 5400
! grep -q '^smith ' /proc/modules || rmmod smith
args=$(cat /guest/bench-args 2>/dev/null || true)
status=0
# shellcheck disable=SC2086 # args is a list of flags
smith-bench-guest -out /tmp/bench.json -module /smith.ko \
	-hookloop /guest/hookloop -noop /guest/noop $args || status=$?
if [ -s /tmp/bench.json ]; then
	echo "SMITH-BENCH-JSON-BEGIN"
	gzip -c /tmp/bench.json | base64
	echo "SMITH-BENCH-JSON-END"
fi
exit $status
