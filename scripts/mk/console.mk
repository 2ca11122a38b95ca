# SPDX-License-Identifier: GPL-2.0
#
# smith-console: heartbeat server, web console and CLI (heartbeat/,
# docs/CONSOLE.md).  Its tests run in test-go (go test ./...), the browser
# test included.
#   make console        static bin/smith-console with the version stamped
#   make bench-console  simulated agents against one console (default 10,000
#                       agents, 30 s interval, 60 s); figures for the
#                       "## Console" section of docs/BENCHMARKS.md.  Takes
#                       about one core for the whole run; never in make test.
#                       More agents than the open-file limit allows one
#                       connection each: CONSOLE_LOAD_ARGS="-agents 50000
#                       -conns 4000 -interval 30s -duration 60s" (they share
#                       4,000 connections).

CONSOLE_LOAD_ARGS ?= -agents 10000 -interval 30s -duration 60s

#   make install-console / uninstall-console
#                       the hardened systemd service (scripts/install-console.sh)

.PHONY: console bench-console install-console uninstall-console

console:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(VERSION_LDFLAGS)" \
		-o $(BIN)/smith-console ./heartbeat/cmd/smith-console

install-console: console
	scripts/install-console.sh

uninstall-console:
	scripts/uninstall-console.sh

bench-console: console
	@mkdir -p $(OUT)
	$(GO) build -trimpath -o $(OUT)/console-loadtest ./heartbeat/loadtest
	nice -n 10 $(OUT)/console-loadtest -console-bin $(BIN)/smith-console $(CONSOLE_LOAD_ARGS)
