#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test.sh  run every VM scenario on every kernel (make test-vm).
#
#   KERNELS="6.1 6.1-arm64"   kernels to test (default: kernels.sh --default)
#   SCENARIOS="smoke ..."     scenarios to run (default: every
#                             scripts/vm/scenarios/*.sh without "# test-vm: no")
#
# For each kernel: fetch it, build the module (W=1 and sparse), then boot
# each scenario that selects the kernel ("# kernels: ..." in the scenario,
# default all: see runs_on).  Guest binaries are expected in out/guest/ (guest.sh).
# Prints a table of kernel, scenario, result and boot time; fails if any
# build or scenario failed.  Every combination runs even after a failure.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

kernels=${KERNELS:-$("$VM_DIR/kernels.sh" --default)}
if [ -n "${SCENARIOS:-}" ]; then
	scenarios=$SCENARIOS
else
	scenarios=
	for f in "$VM_DIR"/scenarios/*.sh; do
		grep -qE '^# test-vm: *no' "$f" && continue
		scenarios+=" $(basename "$f" .sh)"
	done
fi
[ -n "${scenarios// /}" ] || die "no scenarios in $VM_DIR/scenarios"

# Does scenario $1 run on kernel $2?  Its "# kernels:" line holds shell
# patterns: "6.1 6.12" runs it on those only, "!*-rt" on every kernel but
# the PREEMPT_RT ones; no line, on every kernel.
runs_on() {
	local decl w words in=0 any=0
	decl=$(sed -n 's/^# kernels: *//p' "$VM_DIR/scenarios/$1.sh" | head -n1)
	read -ra words <<<"$decl"
	for w in "${words[@]}"; do
		if [[ $w == '!'* ]]; then
			# shellcheck disable=SC2053 # a pattern, on purpose
			[[ $2 == ${w#!} ]] && return 1
		else
			any=1
			# shellcheck disable=SC2053
			[[ $2 == $w ]] && in=1
		fi
	done
	((in || !any))
}

rows=()
failed=0
start=$(date +%s)
for k in $kernels; do
	if ! "$VM_DIR/build-module.sh" "$k"; then
		rows+=("$k|(module build)|FAIL|-|-")
		failed=1
		continue
	fi
	for s in $scenarios; do
		[ -f "$VM_DIR/scenarios/$s.sh" ] || die "no scenario $VM_DIR/scenarios/$s.sh"
		if ! runs_on "$s" "$k"; then
			rows+=("$k|$s|skipped (kernels: line)|-|-")
			continue
		fi
		res=PASS
		"$VM_DIR/run.sh" "$k" "$s" || { res=FAIL; failed=1; }
		r=$SMITH_OUT/vm/$k/$s/result
		boot=- total=-
		if [ -f "$r" ]; then
			boot=$(sed -n 's/^boot_host_s=//p' "$r")
			total=$(sed -n 's/^total_host_s=//p' "$r")
		fi
		rows+=("$k|$s|$res|$boot|$total")
	done
done

echo
echo "VM tests ($(($(date +%s) - start)) s; logs in out/vm/KERNEL/SCENARIO/):"
{
	echo "kernel|scenario|result|boot s|total s"
	printf '%s\n' "${rows[@]}"
} | awk -F'|' '{ printf "  %-10s %-16s %-8s %7s %8s\n", $1, $2, $3, $4, $5 }'
[ "$failed" = 0 ] || die "some VM tests failed (see above)"
