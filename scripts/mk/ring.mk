# SPDX-License-Identifier: GPL-2.0
#
# The ring protocol's longer runs (never part of make test: `make test-go`
# already runs the default stress test, the fuzz seeds and the C/Go checks).
#   make ring-stress   the C-producer/Go-reader stress test with
#                      RING_STRESS_RECORDS records per producer thread
#   make ring-fuzz     go test -fuzz FuzzReader for RING_FUZZTIME
# Both run under nice: the machines are shared.

RING_STRESS_RECORDS ?= 5000000
RING_FUZZTIME ?= 10m

.PHONY: ring-stress ring-fuzz

ring-stress:
	SMITH_RING_STRESS_RECORDS=$(RING_STRESS_RECORDS) CGO_ENABLED=1 nice $(GO) test -count=1 -timeout 0 \
		-run 'TestCProducerGoReaderStress' -v ./shm

ring-fuzz:
	nice $(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(RING_FUZZTIME) -parallel 1 ./shm
