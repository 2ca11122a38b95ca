// SPDX-License-Identifier: GPL-2.0

// Package harness is what the end-to-end tests and benchmarks share to run
// Smith from the outside: the agent started from a configuration rendered
// from agent/config's types and waited for, a kfake Kafka broker, a
// reader of its topic (from an offset on; each sequence number counted
// once: SeqCounter) and records produced to it (Produce), a Prometheus scraper that looks series up by
// agent/metrics' names, /proc samplers of a process's CPU time, memory and
// wake-ups, a free loopback port, the repository's scripts run as a user
// would (RunScript), events looked up by dotted path (Lookup), and the
// channel by which a program in the test VM hands its JSON result to the
// host through the console (EncodeResult, DecodeResult).
//
// Its users: the agent's tests (agent/cmd/smith-agent, agent/vmtest), the
// soak (benchmark/soak/cmd/smith-soak), the benchmarks
// (benchmark/cmd/smith-bench, smith-bench-guest) and the console load test
// (heartbeat/loadtest); the encoder's and the console's tests use Lookup
// and RunScript; tests of the agent and the console poll with WaitFor.
package harness
