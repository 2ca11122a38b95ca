# SPDX-License-Identifier: GPL-2.0
#
# The soak test: end-to-end accounting under faults (docs/RELIABILITY.md,
# benchmark/soak/).  One VM boot runs the module, a kfake broker, the agent
# and a tagged load while faults are injected, then reconciles Kafka.
#
#   make test-soak   the short run, part of make test: one fault cycle on
#                    kernel $(SOAK_KERNEL), the VM killed after
#                    $(SOAK_SHORT_TIMEOUT) s
#   make soak        the long run: SOAK_MINUTES of load (default 30), its
#                    figures written into docs/RELIABILITY.md
#
# The result JSON and the console land in out/soak/ (result-short-6.1.json,
# result-long-6.1.json), the VM's other logs in out/vm/KERNEL/soak/.
# SMITH_SKIP_VM=1 skips test-soak as it skips test-vm (for developers; CI
# never sets it).

SOAK_KERNEL ?= 6.1
SOAK_MINUTES ?= 30
# Extra flags of `smith-soak run` (see smith-soak run -h), both runs.
SOAK_ARGS ?=
SOAK_SHORT_ARGS ?= -duration 40s -gap 3s
SOAK_SHORT_TIMEOUT ?= 300
# Guest memory of the long run: kfake keeps the whole topic in memory and
# on the guest's tmpfs, and the reconciler reads it all back.
SOAK_MEM ?= 4G
SOAK_OUT := $(OUT)/soak
SOAK_NICE ?= nice -n 5

.PHONY: soak test-soak soak-guest soak-module

soak-guest:
	@mkdir -p $(SOAK_OUT)/guest
	CGO_ENABLED=0 $(GO) build -trimpath -o $(SOAK_OUT)/guest/ ./benchmark/soak/cmd/smith-soak ./agent/cmd/smith-agent

soak-module:
	@scripts/vm/kernels.sh $(SOAK_KERNEL) >/dev/null
	@scripts/vm/build-module.sh $(SOAK_KERNEL)

# $(call soak_run,NAME,ARGS,TIMEOUT,REPORT-FLAGS,MEMORY): boot the soak
# scenario, keep its console as out/soak/console-NAME-KERNEL.log, take its
# result from it into out/soak/result-NAME-KERNEL.json (fails when the run
# did).
define soak_run
	@echo "$(2)" >$(SOAK_OUT)/guest/soak-args
	@rc=0; \
	SMITH_GUEST_DIR=$(SOAK_OUT)/guest SMITH_VM_TIMEOUT=$(3) SMITH_VM_QUIET=1 SMITH_VM_MEM=$(or $(5),1G) \
		$(SOAK_NICE) scripts/vm/run.sh $(SOAK_KERNEL) soak || rc=1; \
	cp $(OUT)/vm/$(SOAK_KERNEL)/soak/console.log $(SOAK_OUT)/console-$(1)-$(SOAK_KERNEL).log || rc=1; \
	$(SOAK_OUT)/guest/smith-soak report -console $(SOAK_OUT)/console-$(1)-$(SOAK_KERNEL).log \
		-o $(SOAK_OUT)/result-$(1)-$(SOAK_KERNEL).json $(4) || rc=1; \
	if [ $$rc != 0 ]; then \
		echo "soak: FAILED; console: $(SOAK_OUT)/console-$(1)-$(SOAK_KERNEL).log" >&2; \
		grep -a '^soak: \|^---- last\|level=' $(SOAK_OUT)/console-$(1)-$(SOAK_KERNEL).log | tail -n 60 >&2 || true; \
	fi; \
	exit $$rc
endef

test-soak:
	@if [ -n "$$SMITH_SKIP_VM" ]; then \
		echo "test-soak: skipped: SMITH_SKIP_VM=$$SMITH_SKIP_VM is set (the soak test then does not run)"; \
	else \
		$(MAKE) --no-print-directory soak-module soak-guest && \
		$(MAKE) --no-print-directory soak-short-run; \
	fi

.PHONY: soak-short-run
soak-short-run:
	$(call soak_run,short,$(SOAK_SHORT_ARGS) $(SOAK_ARGS),$(SOAK_SHORT_TIMEOUT),)

soak: deps soak-module soak-guest
	$(call soak_run,long,-duration $(SOAK_MINUTES)m $(SOAK_ARGS),$$(( ($(SOAK_MINUTES) + 15) * 60 )),-doc docs/RELIABILITY.md,$(SOAK_MEM))

TEST_TARGETS += test-soak
