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
//
// `make bench` (scripts/mk/bench.mk) runs all of it; docs/BENCHMARKS.md says
// what each figure means.  Benchmarks report, they never gate: nothing here
// runs in `make test` except the unit tests of the internal packages.
package benchmark
