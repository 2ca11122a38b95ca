# SPDX-License-Identifier: GPL-2.0
#
# The kernel module's builds and VM tests (scripts/vm/, docs/TESTING.md).
#   make test-kernel    build kernel/ against each of $(KERNELS): W=1 and sparse
#   make test-vm        boot every scenario on each of $(KERNELS) in QEMU
#   make demo           boot the 6.1 VM with the module and show it at work
#   make vm-guest       only build the guest binaries into out/guest/ (and
#                       out/guest-arm64/ when KERNELS has an -arm64 one)
# One kernel or scenario: make test-vm KERNELS=6.1 SCENARIOS=smoke
# SMITH_SKIP_VM=1 skips test-vm (for developers; CI never sets it).

# Default: every scenario not marked "# test-vm: no" (scripts/vm/test.sh).
SCENARIOS ?=

.PHONY: test-kernel test-vm vm-kernels vm-guest demo

vm-kernels:
	@scripts/vm/kernels.sh $(KERNELS) >/dev/null

test-kernel: vm-kernels
	@set -e; for k in $(KERNELS); do scripts/vm/build-module.sh $$k; done

vm-guest:
	@GO=$(GO) scripts/vm/guest.sh $(KERNELS)

test-vm:
	@if [ -n "$$SMITH_SKIP_VM" ]; then \
		echo "test-vm: skipped: SMITH_SKIP_VM=$$SMITH_SKIP_VM is set (the module is then not tested in a VM)"; \
	else \
		$(MAKE) --no-print-directory vm-kernels vm-guest && \
		KERNELS="$(KERNELS)" SCENARIOS="$(SCENARIOS)" scripts/vm/test.sh; \
	fi

demo: deps
	@scripts/vm/kernels.sh 6.1 >/dev/null
	@scripts/vm/build-module.sh 6.1
	@$(MAKE) --no-print-directory vm-guest
	@scripts/vm/run.sh 6.1 demo

TEST_TARGETS += test-kernel test-vm
