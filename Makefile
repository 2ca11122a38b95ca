# SPDX-License-Identifier: GPL-2.0
#
# Smith top-level Makefile.  The two commands that matter:
#   make demo   boot a VM with the module and the agent, print live events
#   make test   every test: Go, cross-language, module builds, VM tests
# Both install what they need first (scripts/deps.sh).

SHELL := /bin/bash
GO ?= go
# Kernels the module is built and tested against: the default list of
# scripts/vm/kernels.sh, the one list of kernels; the scenarios'
# "# kernels:" lines select from it (only hooks runs on PREEMPT_RT).
KERNELS ?= $(shell scripts/vm/kernels.sh --default)
# Downloads and kernel trees are cached here across runs.
export SMITH_CACHE ?= $(HOME)/.cache/smith
OUT := $(CURDIR)/out
BIN := $(CURDIR)/bin
export CGO_ENABLED ?= 0

.PHONY: all deps build test test-go clean help

all: build

help:
	@echo "make demo   boot the 6.1 VM with module and agent, print live JSON events"
	@echo "make test   all tests (Go, cross-language ring, module builds, VM tests)"
	@echo "make build  static binaries into bin/ (ARCH=arm64: bin/linux-arm64/)"
	@echo "make packages  .deb and .rpm of smith-dkms, smith-agent, smith-console into out/packages/"
	@echo "make bench  benchmarks, written to docs/BENCHMARKS.md"
	@echo "make deps   install build and test dependencies (apt, Go modules)"

deps:
	@scripts/deps.sh

# The version both binaries, the packages and the module report: the
# nearest tag and commit (scripts/version.sh, its one definition).
VERSION ?= $(shell scripts/version.sh 2>/dev/null || echo dev)
VERSION_LDFLAGS = -X main.version=$(VERSION) -X smith/heartbeat/cli.Version=$(VERSION)

# make build ARCH=arm64 (a GOARCH: amd64, arm64) builds for that
# architecture into bin/linux-ARCH/ instead.
BUILD_BIN = $(BIN)$(if $(ARCH),/linux-$(ARCH))
build:
	@mkdir -p $(BUILD_BIN)
	$(if $(ARCH),GOOS=linux GOARCH=$(ARCH) )$(GO) build -trimpath -ldflags "$(VERSION_LDFLAGS)" -o $(BUILD_BIN)/ ./agent/cmd/smith-agent ./heartbeat/cmd/smith-console

# Run in order (not in parallel): the VM stages are CPU-heavy.
test: deps
	@set -e; for t in $(TEST_TARGETS); do $(MAKE) --no-print-directory $$t; done

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Go unit, cross-language and fuzz-seed tests, plus static checks (the
# guest-only files behind the vmtest tag are checked too).  Every host
# package runs under the race detector (it needs cgo); the guest tests
# (vmtest tag) cannot: they are static binaries in an initramfs without
# libc (docs/TESTING.md).
test-go:
	$(GO) vet ./...
	$(GO) vet -tags vmtest ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags vmtest ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting" >&2; exit 1; }
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# Each area adds its targets and its part of `make test` in a fragment:
#   scripts/mk/vm.mk         test-kernel, test-vm, demo (kernel builds, QEMU)
#   scripts/mk/*.mk          others as they come (bench, soak, ...)
# A fragment appends to TEST_TARGETS to join `make test`.
TEST_TARGETS := test-go
include $(sort $(wildcard scripts/mk/*.mk))

clean:
	rm -rf $(OUT) $(BIN)
