# SPDX-License-Identifier: GPL-2.0
# smith-agent against the real module: a known exec and connect scenario,
# checked field by field in the smith and ecs formats (agent/vmtest).
# kernels: 5.10 6.1 6.12 6.1-arm64 6.12-arm64
# timeout: 600
/guest/agent-vmtest.test -test.v
