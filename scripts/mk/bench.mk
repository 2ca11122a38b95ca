# SPDX-License-Identifier: GPL-2.0
#
# make bench: the benchmarks of docs/BENCHMARKS.md (never part of make test;
# they report, they never gate).
#
#   bench-vm      per kernel of BENCH_KERNELS: build the module, boot the VM
#                 with the bench scenario (hook cost and transports)
#   bench-host    the Go benchmarks of shm/ and agent/, the pipeline into a
#                 kfake broker, agent CPU and RSS at a steady rate
#   bench-report  docs/BENCHMARKS.md sections and docs/bench-*.png charts
#                 (BENCH_SECTIONS=Pipeline: only that one, e.g. after
#                 make bench-host alone; the other sections stay)
#
# Everything lands in out/bench/ first (the VM runs in out/bench/vm/, apart
# from the test harness's out/vm/).  The CPU-heavy steps run one after the
# other under nice.  A step that fails does not stop the others; make bench
# fails at the end if any did, after writing what was measured.

# Every kernel but 6.1-rt, which only the hooks scenario tests.  The
# guest's programs are built for each architecture of BENCH_KERNELS
# (out/bench/guest for amd64, out/bench/guest-arm64 for arm64: the C loops
# with aarch64-linux-gnu-gcc and its static libc).
BENCH_KERNELS ?= $(filter-out %-rt,$(KERNELS))
BENCH_ARCHS := $(sort $(foreach k,$(BENCH_KERNELS),$(if $(filter %-arm64,$(k)),arm64,amd64)))
bench_cc = $(if $(filter arm64,$(1)),aarch64-linux-gnu-gcc,$(CC))
bench_guest = $(BENCH_OUT)/guest$(if $(filter arm64,$(1)),-arm64)
BENCH_OUT := $(OUT)/bench
BENCH_NICE ?= nice -n 10
# Flags of smith-bench-guest in the VM (see its -h).  Loops long against
# the reader's 100 ms wake-up bound, so that its batches fall inside them.
BENCH_VM_ARGS ?= -rounds 3 -exec-n 400 -connect-n 4000 -latency-n 300 -emit-count 4096 -emit-len 256 -storm-procs 2 -storm-n 2000
# 1: the guest clock counts instructions (QEMU -icount shift=0,sleep=off)
# on one vCPU, the headline of docs/BENCHMARKS.md; empty: wall-clock TCG
# with two vCPUs.
BENCH_ICOUNT ?= 1
# Flags of smith-bench gobench and pipeline.
BENCH_GO_PKGS ?= ./shm/... ./agent/...
BENCH_GO_ARGS ?= -count 5 -benchtime 1s
BENCH_PIPELINE_ARGS ?=
# Titles of the sections bench-report rewrites, comma-separated (empty:
# all of them and the header).
BENCH_SECTIONS ?=

.PHONY: bench bench-tool bench-guest bench-vm bench-host bench-report

bench: deps
	@rm -f $(BENCH_OUT)/*.json; rc=0; \
	$(MAKE) --no-print-directory bench-vm || rc=1; \
	$(MAKE) --no-print-directory bench-host || rc=1; \
	$(MAKE) --no-print-directory bench-report || rc=1; \
	[ $$rc = 0 ] || echo "bench: some steps failed (above); the report holds what was measured" >&2; \
	exit $$rc

bench-tool:
	@mkdir -p $(BENCH_OUT)
	$(GO) build -trimpath -o $(BENCH_OUT)/smith-bench ./benchmark/cmd/smith-bench

# The guest's programs: static C loops (no libc start-up differences
# between runs: -static), the Go runner, and its flags.
bench-guest: $(foreach a,$(BENCH_ARCHS),bench-guest-$(a))

bench-guest-%:
	@mkdir -p $(call bench_guest,$*)
	$(call bench_cc,$*) -static -O2 -Wall -Wextra -o $(call bench_guest,$*)/hookloop benchmark/guest/hookloop.c
	$(call bench_cc,$*) -static -O2 -Wall -Wextra -o $(call bench_guest,$*)/noop benchmark/guest/noop.c
	CGO_ENABLED=0 GOARCH=$* $(GO) build -trimpath -o $(call bench_guest,$*)/smith-bench-guest ./benchmark/cmd/smith-bench-guest
	CGO_ENABLED=0 GOARCH=$* $(GO) build -trimpath -o $(call bench_guest,$*)/smith-agent ./agent/cmd/smith-agent
	echo "$(BENCH_VM_ARGS) -agent /guest/smith-agent -steps-module /guest/smith-steps.ko$(if $(BENCH_ICOUNT), -clock instructions)" >$(call bench_guest,$*)/bench-args

# With BENCH_ICOUNT: one vCPU, single-threaded TCG counting instructions
# (DESIGN.md section 9); the loop, the reader and everything else share
# the one CPU, so a loop's time is the whole machine's cost.  Without:
# one host thread per virtual CPU, two vCPUs, wall clock.
ifneq ($(BENCH_ICOUNT),)
bench-vm: export SMITH_VM_ICOUNT := 1
bench-vm: export SMITH_VM_SMP := 1
bench-vm: export SMITH_VM_TCG_THREAD := single
else
bench-vm: export SMITH_VM_TCG_THREAD ?= multi
endif
bench-vm: bench-guest bench-tool
	@rc=0; for k in $(BENCH_KERNELS); do \
		case $$k in *-arm64) g=$(call bench_guest,arm64) ;; *) g=$(call bench_guest,amd64) ;; esac; \
		export SMITH_OUT=$(BENCH_OUT)/vm SMITH_GUEST_DIR=$$g SMITH_VM_QUIET=1; \
		rm -f $(BENCH_OUT)/vm-$$k.json; \
		if ! $(BENCH_NICE) scripts/vm/build-module.sh $$k; then rc=1; continue; fi; \
		rm -f $$g/smith-steps.ko; \
		if SMITH_OUT=$(BENCH_OUT)/vm-steps SMITH_STEPS=1 $(BENCH_NICE) scripts/vm/build-module.sh $$k; then \
			cp $(BENCH_OUT)/vm-steps/kernel-$$k/smith.ko $$g/smith-steps.ko; \
		else rc=1; fi; \
		echo "bench: kernel $$k: VM benchmark running (log: $(BENCH_OUT)/vm/vm/$$k/bench/console.log)"; \
		$(BENCH_NICE) scripts/vm/run.sh $$k bench || rc=1; \
		$(BENCH_OUT)/smith-bench vmresult -console $(BENCH_OUT)/vm/vm/$$k/bench/console.log \
			-o $(BENCH_OUT)/vm-$$k.json || rc=1; \
	done; exit $$rc

bench-host: bench-tool
	@rc=0; \
	$(BENCH_NICE) $(BENCH_OUT)/smith-bench gobench $(BENCH_GO_ARGS) -o $(BENCH_OUT)/gobench.json $(BENCH_GO_PKGS) || rc=1; \
	$(MAKE) --no-print-directory build || rc=1; \
	$(BENCH_NICE) $(BENCH_OUT)/smith-bench pipeline -agent $(BIN)/smith-agent $(BENCH_PIPELINE_ARGS) \
		-o $(BENCH_OUT)/pipeline.json || rc=1; \
	exit $$rc

# The steps that measure the sections of BENCH_SECTIONS, for the report's
# "Run:" line: Hook cost and Transports come from bench-vm, Pipeline from
# bench-host.
bench_sections_steps = $(if $(findstring Hook cost,$(BENCH_SECTIONS))$(findstring Transports,$(BENCH_SECTIONS)),bench-vm )$(if $(findstring Pipeline,$(BENCH_SECTIONS)),bench-host )

bench-report: bench-tool
	$(BENCH_OUT)/smith-bench report -in $(BENCH_OUT) -doc docs/BENCHMARKS.md -charts docs \
		$(if $(BENCH_SECTIONS),-sections "$(BENCH_SECTIONS)" -command "make $(bench_sections_steps)bench-report BENCH_SECTIONS='$(BENCH_SECTIONS)'")
