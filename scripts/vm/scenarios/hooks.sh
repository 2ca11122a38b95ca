# SPDX-License-Identifier: GPL-2.0
# The hook tests (kernel/hooktest, built as /guest/kernel-hooktest.test):
# every hooked call the test makes comes back as a record checked field by
# field, through the shm ring and through netlink, then the storm and the
# load/unload cycles under load.  The tests load and unload the module
# themselves.
#
# Sizes (override on the guest kernel command line, e.g.
# SMITH_VM_APPEND="SMITH_LOAD_CYCLES=200 SMITH_STORM_SECONDS=60"):
#   SMITH_STORM_SECONDS  each storm's length (default 30, arm64 10)
#   SMITH_LOAD_CYCLES    load/unload cycles under load (default 200, 50 on
#                        arm64 and on the PREEMPT_RT kernel; a cycle takes
#                        about 0.5 s under single-threaded emulation on an
#                        idle host, up to 6 s on a busy one)
# The arm64 kernels run every test too, with shorter storms and fewer
# cycles: two more kernels in make test (docs/TESTING.md); x86_64 runs the
# long ones.  The only scenario on 6.1-rt: the other scenarios' kernels:
# lines leave it out, which keeps the RT kernel's share of make test to
# one boot.
# timeout: 1800
t=/guest/kernel-hooktest.test
[ -x "$t" ] || { echo "hooks: $t missing (build kernel/hooktest with -tags vmtest)"; exit 1; }
! grep -q '^smith ' /proc/modules || rmmod smith
storm=30 cycles=200
[ "$(uname -m)" = aarch64 ] && storm=10 cycles=50
[ "$(cat /sys/kernel/realtime 2>/dev/null)" = 1 ] && cycles=50
export SMITH_STORM_SECONDS=${SMITH_STORM_SECONDS:-$storm}
export SMITH_LOAD_CYCLES=${SMITH_LOAD_CYCLES:-$cycles}
echo "hooks: storm ${SMITH_STORM_SECONDS}s, ${SMITH_LOAD_CYCLES} load/unload cycles"
"$t" -test.v -test.count=1 -test.timeout 1700s
! grep -q '^smith ' /proc/modules || { echo "hooks: smith left loaded"; exit 1; }
