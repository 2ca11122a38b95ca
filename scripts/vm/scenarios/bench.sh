# SPDX-License-Identifier: GPL-2.0
# The hook-cost and transport benchmarks of `make bench` (never part of
# make test): benchmark/cmd/smith-bench-guest runs all of it in this one
# boot and prints its JSON result on the console (checkpoints, then the
# whole), gzip'd and base64'd between SMITH-BENCH-JSON markers
# (internal/harness, the VM result channel); `smith-bench vmresult` takes
# the last complete block from the console log.  Its flags come from
# /guest/bench-args (scripts/mk/bench.mk).
# test-vm: no
# timeout: 5400
! grep -q '^smith ' /proc/modules || rmmod smith
args=$(cat /guest/bench-args 2>/dev/null || true)
# shellcheck disable=SC2086 # args is a list of flags
smith-bench-guest -out /tmp/bench.json -module /smith.ko \
	-hookloop /guest/hookloop -noop /guest/noop $args
