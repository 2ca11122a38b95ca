# SPDX-License-Identifier: GPL-2.0
# smith-agent against the real module: a known exec and connect scenario,
# checked field by field in the smith and ecs formats (agent/vmtest).
# kernels: !*-rt
# timeout: 600
/guest/agent-vmtest.test -test.v
