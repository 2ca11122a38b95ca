#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh VER SCENARIO  boot Debian kernel VER in QEMU (software emulation:
# qemu-system-x86_64, or qemu-system-aarch64 for an -arm64 kernel)
# with the test initramfs and run scripts/vm/scenarios/SCENARIO.sh in it.
#
# Exit status: the scenario's; 1 also when the guest timed out, panicked,
# stalled (soft lockup, RCU stall, hung task: stopped 10 s after the report),
# printed an Oops, or its kernel log holds a WARNING, BUG, lockdep, KASAN,
# UBSAN or "scheduling while atomic" report (scripts/vm/dmesg-allow.txt
# lists the known-harmless boot lines).
#
# Everything lands in out/vm/VER/SCENARIO/: console.log (the whole serial
# console), dmesg.log (the guest's kernel log at the end), result
# (status, kernel release, boot and run times), initramfs.cpio.
#
# Environment:
#   SMITH_VM_TIMEOUT    seconds before the guest is killed (default: the
#                       scenario's "# timeout: N" line, else 300)
#   SMITH_GUEST_DIR     files for /guest in the VM (default out/guest, for
#                       an -arm64 kernel out/guest-arm64)
#   SMITH_VM_QUIET=1    do not stream the console while it runs
#   SMITH_VM_MEM, SMITH_VM_SMP   guest memory (1G) and CPUs (2)
#   SMITH_VM_APPEND     extra kernel command line
#   SMITH_VM_BZIMAGE=1  boot the compressed image through the firmware
#                       instead of the uncompressed one (PVH entry)
#   SMITH_VM_TCG_THREAD single (default) or multi: QEMU's TCG threading
#   SMITH_VM_ICOUNT=1   the guest clock counts instructions (QEMU -icount
#                       shift=0,sleep=off: 1 ns per instruction, idle time
#                       skipped); single-threaded TCG; make bench uses it
#   SMITH_VM_QEMU_EXTRA more QEMU arguments, split at spaces (the instruction
#                       profile's -plugin, benchmark/profile/README.md)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: $0 VER SCENARIO (scenarios: $(cd "$VM_DIR/scenarios" && for f in ./*.sh; do f=${f#./}; printf "%s " "${f%.sh}"; done))"
ver=$1 scenario=$2
script=$VM_DIR/scenarios/$scenario.sh
[ -f "$script" ] || die "no scenario $script"

# "# timeout: N" in the scenario sets its default time limit.
timeout=${SMITH_VM_TIMEOUT:-$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$script" | head -n1)}
timeout=${timeout:-300}

kernel_env "$ver"
guest=${SMITH_GUEST_DIR:-$(guest_dir "$SMITH_KARCH")}
case $SMITH_KARCH in
amd64) qemu_bin=qemu-system-x86_64 qemu_pkg=qemu-system-x86 ;;
arm64) qemu_bin=qemu-system-aarch64 qemu_pkg=qemu-system-arm ;;
*) die "kernel $ver: no QEMU known for architecture $SMITH_KARCH" ;;
esac
qemu=$(command -v "$qemu_bin") || die "$qemu_bin not found (scripts/deps.sh installs $qemu_pkg)"
# The uncompressed kernel boots through its PVH entry point, seconds of
# emulated CPU faster than the bzImage; SMITH_VM_BZIMAGE=1 boots the latter.
# shellcheck disable=SC2153 # kernel_env sets it
image=$SMITH_VMLINUZ
if [ -z "${SMITH_VM_BZIMAGE:-}" ] && [ -n "${SMITH_VMLINUX:-}" ] && [ -f "$SMITH_VMLINUX" ]; then
	image=$SMITH_VMLINUX
fi
dir=$SMITH_OUT/vm/$ver/$scenario
mkdir -p "$dir"
# Two runs of one kernel and scenario would share the log directory: the
# second waits for the first.
exec 7>"$dir/.lock"
if ! flock -n 7; then
	log "$ver $scenario: waiting for another run of it to finish"
	flock 7
fi
rm -f "$dir/console.log" "$dir/console.boot-failure.log" "$dir/dmesg.log" "$dir/result"

initrd=$dir/initramfs.cpio
guest_dirs=()
[ -d "$guest" ] && guest_dirs+=("$guest")
"$VM_DIR/initramfs.sh" "$ver" "$initrd" "${guest_dirs[@]}"

# TCG only: KVM is not available (and nested guests hang).  Single-threaded
# TCG by default: Debian bookworm's QEMU 7.2 in multi-threaded mode can run
# stale translated code after the guest patches its own text (kprobe and
# tracepoint registration while other CPUs execute it), which shows up as a
# spurious "Oops: int3" during module load/unload cycles; one host thread
# for all virtual CPUs keeps code modification coherent, and on a busy
# 2-core host it is not slower.  SMITH_VM_TCG_THREAD=multi brings the
# other mode back.
# no_timer_check: on a busy host the emulated CPU can be too slow for the
# kernel's IO-APIC timer check, which then panics at boot ("IO-APIC + timer
# doesn't work"); virtual machines commonly skip it.
#
# arm64: the "virt" board with a Cortex-A57 (ARMv8.0), its PL011 UART as
# the console.  -cpu max would emulate pointer authentication and more,
# which makes the same boot about four times slower under TCG.
case $SMITH_KARCH in
amd64)
	machine=(-machine q35 -cpu max)
	cmdline="console=ttyS0 no_timer_check" ;;
arm64)
	machine=(-machine virt -cpu cortex-a57)
	cmdline="console=ttyAMA0" ;;
esac
cmdline+=" panic=-1 oops=panic loglevel=4 SMITH_SCENARIO=$scenario ${SMITH_VM_APPEND:-}"
# shellcheck disable=SC2054 # commas inside QEMU option values
qemu_args=(
	"${machine[@]}" -accel "tcg,thread=${SMITH_VM_TCG_THREAD:-single}"
	-smp "${SMITH_VM_SMP:-2}" -m "${SMITH_VM_MEM:-1G}"
	-nodefaults -nographic -no-reboot
	-monitor none -serial "file:$dir/console.log"
	-kernel "$image" -initrd "$initrd" -append "$cmdline"
)
if [ -n "${SMITH_VM_ICOUNT:-}" ]; then
	[ "${SMITH_VM_TCG_THREAD:-single}" = single ] || die "SMITH_VM_ICOUNT needs single-threaded TCG (SMITH_VM_TCG_THREAD=single)"
	qemu_args+=(-icount shift=0,sleep=off)
fi
if [ -n "${SMITH_VM_QEMU_EXTRA:-}" ]; then
	read -r -a extra <<<"$SMITH_VM_QEMU_EXTRA"
	qemu_args+=("${extra[@]}")
fi
echo "$qemu ${qemu_args[*]}" >"$dir/qemu.cmd"

# The firmware's terminal escapes and the serial line's CRs, removed.
clean_console() { sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' -e 's/\r/\n/g'; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

stall_re='soft lockup - CPU#[0-9]+ stuck for|rcu: INFO: rcu_[a-z]+ detected stalls|rcu_[a-z]+ self-detected stall|blocked for more than [0-9]+ seconds'

# boot_guest: run QEMU once; sets rc (QEMU's exit status), boot (host seconds
# until the scenario started, empty if it never did) and total.
boot_guest() {
	start=$(date +%s.%N)
	: >"$dir/console.log"
	timeout -k 5 "$timeout" "$qemu" "${qemu_args[@]}" </dev/null >"$dir/qemu.out" 2>&1 &
	qpid=$!
	tailpid=
	if [ -z "${SMITH_VM_QUIET:-}" ]; then
		# The kernel log dump at the end goes to dmesg.log, not the terminal.
		tail -n +1 -f --pid="$qpid" "$dir/console.log" | clean_console |
			awk '/SMITH-VM-DMESG-BEGIN/ { skip = 1 } !skip { print; fflush() } /SMITH-VM-DMESG-END/ { skip = 0 }' &
		tailpid=$!
	fi
	boot='' stalled='' n=0 stall_seen=''
	while kill -0 "$qpid" 2>/dev/null; do
		if [ -z "$boot" ] && grep -aq 'SMITH-VM-BEGIN' "$dir/console.log"; then
			boot=$(secs_since "$start")
		fi
		# A stalled guest kernel never finishes: once it reports a soft
		# lockup, RCU stall or hung task, give it 10 s more to print the
		# backtraces, then stop it instead of waiting for the timeout.
		n=$((n + 1))
		if [ $((n % 20)) = 0 ]; then
			if [ -z "$stall_seen" ] && grep -aqE "$stall_re" "$dir/console.log"; then
				stall_seen=$n
			elif [ -n "$stall_seen" ] && [ $((n - stall_seen)) -ge 200 ]; then
				stalled=1
				kill "$qpid" 2>/dev/null || true
			fi
		fi
		sleep 0.05
	done
	rc=0
	wait "$qpid" || rc=$?
	if [ -n "$tailpid" ]; then wait "$tailpid" 2>/dev/null || true; fi
	total=$(secs_since "$start")
}

log "$ver ($SMITH_KVER) $scenario: booting, timeout ${timeout}s, logs in $dir"
boot_guest
# A guest that died before /init started the scenario failed in the
# unmodified Debian kernel's own boot (emulation on a loaded host), not in
# anything under test: boot once more, keeping the first console log.
if [ "$rc" != 124 ] && [ "$rc" != 137 ] && ! grep -aq 'SMITH-VM-BEGIN' "$dir/console.log"; then
	mv "$dir/console.log" "$dir/console.boot-failure.log"
	log "$ver $scenario: the kernel did not boot to /init (console in $dir/console.boot-failure.log); booting again"
	grep -aE 'Kernel panic|BUG:|Oops' "$dir/console.boot-failure.log" | head -n 3 >&2 || true
	boot_guest
fi

clean_console <"$dir/console.log" >"$dir/console.log.tmp" && mv "$dir/console.log.tmp" "$dir/console.log"
# What is known already, for the table of test.sh even if checks fail below.
printf 'kernel=%s\npackage=%s\nscenario=%s\nstatus=harness-failure\nboot_host_s=%s\ntotal_host_s=%s\n' \
	"$SMITH_KVER" "$SMITH_KPKG" "$scenario" "${boot:-?}" "$total" >"$dir/result"
console=$dir/console.log
what="kernel $ver ($SMITH_KVER), scenario $scenario"

last_lines() {
	echo "---- last lines of $console:" >&2
	tail -n "${1:-30}" "$console" >&2
	echo "----" >&2
}

if [ -n "$stalled" ]; then
	last_lines 40
	die "$what: the guest kernel stalled (soft lockup, RCU stall or hung task), guest stopped"
fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	last_lines 40
	die "$what: timed out after ${timeout}s (SMITH_VM_TIMEOUT), guest killed"
fi
if [ "$rc" != 0 ]; then
	cat "$dir/qemu.out" >&2
	die "$what: qemu failed (exit $rc), command in $dir/qemu.cmd"
fi

result=$(grep -a -o 'SMITH-VM-RESULT .*' "$console" | tail -n1 || true)
sed -n '/SMITH-VM-DMESG-BEGIN/,/SMITH-VM-DMESG-END/p' "$console" | sed '1d;$d' >"$dir/dmesg.log"
if [ -z "$result" ]; then
	last_lines 60
	if grep -aqE 'Kernel panic|Oops|BUG:|general protection fault' "$console"; then
		die "$what: kernel panic or Oops before the scenario finished"
	fi
	die "$what: the guest stopped without a result line"
fi
if ! grep -q SMITH-VM-DMESG-END "$console"; then
	last_lines 40
	die "$what: the guest's kernel log did not come back complete"
fi
status=$(sed -n 's/.* status=\([0-9]*\).*/\1/p' <<<"$result")
[ -n "$status" ] || die "$what: malformed result line: $result"
begin_up=$(grep -a -o 'SMITH-VM-BEGIN .*' "$console" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' | head -n1)
end_up=$(sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$result")

cat >"$dir/result" <<EOF
kernel=$SMITH_KVER
package=$SMITH_KPKG
image=$(basename "$image")
scenario=$scenario
status=$status
boot_host_s=${boot:-?}
boot_guest_s=${begin_up:-?}
scenario_guest_s=$(awk -v a="${begin_up:-0}" -v b="${end_up:-0}" 'BEGIN { printf "%.2f", b - a }')
total_host_s=$total
EOF

# Kernel reports that fail the run whatever the scenario said.
bad='WARNING:|BUG:|Oops|Call Trace:|scheduling while atomic|lockdep|possible (recursive|circular) locking|inconsistent lock state|KASAN|UBSAN|general protection fault|Kernel panic|kernel BUG|refcount_t:|list_(add|del) corruption|stack-protector|watchdog: BUG|hung_task|blocked for more than'
allow=$VM_DIR/dmesg-allow.txt
reports=$(grep -aE "$bad" "$dir/dmesg.log" | { if [ -s "$allow" ]; then grep -avEf <(grep -v '^#' "$allow" | grep .); else cat; fi; } || true)
if [ -n "$reports" ]; then
	echo "---- kernel reports in $dir/dmesg.log:" >&2
	echo "$reports" | head -n 40 >&2
	echo "----" >&2
	die "$what: the guest kernel reported problems (scenario status $status)"
fi

if [ "$status" != 0 ]; then
	log "$what: FAIL (status $status), console in $console"
	exit "$status"
fi
log "$what: PASS (boot ${boot:-?}s host / ${begin_up:-?}s guest, total ${total}s)"
