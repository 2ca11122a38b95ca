# SPDX-License-Identifier: GPL-2.0
# The hook tests (kernel/hooktest): every hooked call the test makes comes
# back as a record checked field by field, through the shm ring and through
# netlink; the storm runs SMITH_STORM_SECONDS (default here 30) and the
# load/unload test SMITH_LOAD_CYCLES cycles (default here 200).
# timeout: 1200
export SMITH_STORM_SECONDS=${SMITH_STORM_SECONDS:-30}
export SMITH_LOAD_CYCLES=${SMITH_LOAD_CYCLES:-200}
/guest/kernel-hooktest.test -test.v -test.timeout 1100s
