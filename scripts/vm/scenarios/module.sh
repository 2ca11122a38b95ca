# SPDX-License-Identifier: GPL-2.0
# The module core: device, mmap rules, ioctls, parameters, load/unload
# safety and the netlink transport (kernel/test, built as /guest/kernel-test.test).
# The tests load and unload the module themselves.
# kernels: !*-rt
# timeout: 600
t=/guest/kernel-test.test
[ -x "$t" ] || { echo "module: $t missing (build kernel/test with -tags vmtest)"; exit 1; }
! grep -q '^smith ' /proc/modules || rmmod smith
"$t" -test.v -test.count=1
! grep -q '^smith ' /proc/modules || { echo "module: smith left loaded"; exit 1; }
