// Package benchmark holds Smith's benchmarks: how much the hooks cost a
// traced program, how many records each transport carries and at what cost
// per record, and how fast the agent's pipeline ships events to Kafka.
//
// The layout:
//
//	guest/                  static C syscall loops run inside the VM
//	cmd/smith-bench-guest   runs the hook-cost and transport benchmarks in
//	                        one VM boot and writes a JSON result file
//	cmd/smith-bench         host side: Go benchmarks of shm/ and agent/, the
//	                        pipeline into a kfake broker, and the report
//	                        (docs/BENCHMARKS.md tables and docs/*.png charts)
//	internal/               result types, statistics, report and charts
//	soak/                   the soak test: end-to-end accounting under
//	                        faults (docs/RELIABILITY.md), and its reconciler
//
// `make bench` (scripts/mk/bench.mk) runs the benchmarks; docs/BENCHMARKS.md
// says what each figure means.  Benchmarks report, they never gate: `make
// test` runs none of them, only the unit tests of the packages here and the
// short soak (`make test-soak`, scripts/mk/soak.mk), which is a test and
// not a benchmark: it fails on an unexplained loss, never on speed.
// What they share with the agent's tests (starting the agent, the kfake
// broker, scraping, /proc samplers, the VM result channel) is
// internal/harness at the repository root.
package benchmark
