# SPDX-License-Identifier: GPL-2.0
# The instruction profile of the hook-cost loops (benchmark/profile/,
# never part of make test): smith-bench-guest -mark runs each loop of each
# configuration at two lengths between markers that the tbcount QEMU
# plugin snapshots.  Its flags come from /guest/profile-args
# (benchmark/profile/run.sh).
# test-vm: no
# timeout: 3600
! grep -q '^smith ' /proc/modules || rmmod smith
args=$(cat /guest/profile-args 2>/dev/null || true)
# shellcheck disable=SC2086 # args is a list of flags
smith-bench-guest -out /tmp/profile.json -module /smith.ko \
	-hookloop /guest/hookloop -noop /guest/noop -mark /guest/profmark $args
