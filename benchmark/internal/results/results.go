// Package results defines the JSON files the benchmark programs write and
// the report reads: one per VM boot (hook cost and transports, per kernel)
// and one for the host (Go benchmarks and the Kafka pipeline).
package results

import (
	"encoding/json"
	"fmt"
	"os"
)

// Machine says where figures were measured.
type Machine struct {
	CPU    string `json:"cpu"`    // lscpu "Model name" of the host
	Kernel string `json:"kernel"` // uname -r where the code ran
	CPUs   int    `json:"cpus"`   // CPUs (vCPUs in the VM) available
	Where  string `json:"where"`  // "host", or how the VM ran (QEMU TCG)
	// HostLoad is the host's 1-minute load average when the run ended:
	// the machine may be shared.
	HostLoad string `json:"host_load,omitempty"`
}

// Hook-cost configurations, measured side by side in one VM boot.
const (
	ConfigNone    = "none"    // (a) module not loaded
	ConfigLoaded  = "loaded"  // (b) module loaded, no reader ever attached
	ConfigShm     = "shm"     // (c) shm transport, a reader consuming
	ConfigNetlink = "netlink" // (d) netlink transport, a reader consuming
	ConfigAgent   = "agent"   // (e) shm transport, smith-agent consuming (default config, events to a file)
)

// Configs lists the configurations in report order.
var Configs = []string{ConfigNone, ConfigLoaded, ConfigShm, ConfigNetlink, ConfigAgent}

// LoopRun is one run of a guest syscall loop (benchmark/guest/hookloop.c).
type LoopRun struct {
	Config   string  `json:"config"`
	Op       string  `json:"op"` // "exec" or "connect"
	Round    int     `json:"round"`
	N        int     `json:"n"`
	MeanNs   float64 `json:"mean_ns"` // elapsed / N: the loop's per-op cost
	MedianNs float64 `json:"median_ns"`
	P95Ns    float64 `json:"p95_ns"`
	P99Ns    float64 `json:"p99_ns"`
	MaxNs    float64 `json:"max_ns"`
	// Records the module wrote (or sent) and dropped during the run.
	Records uint64 `json:"records"`
	Dropped uint64 `json:"dropped"`
	// Ring bytes the reader had not consumed when the loop ended (shm):
	// the cost of reading them falls outside the timed loop.
	PendingBytes uint64 `json:"pending_bytes,omitempty"`
	// ReaderNs is the on-CPU time of the reader's threads (the agent's:
	// /proc/PID/task/*/schedstat) from the loop's start until it had
	// consumed every record of the loop: under icount, its instructions,
	// those of the records read after the timed loop included.
	ReaderNs uint64 `json:"reader_ns,omitempty"`
}

// StepCost is one step of the record builder in one hook, summed over a
// pass of the loops with a module built with SMITH_STEPS=1.
type StepCost struct {
	Hook    string `json:"hook"`
	Step    string `json:"step"`
	Calls   uint64 `json:"calls"`
	TotalNs uint64 `json:"total_ns"`
}

// IdleWakeups is how often a reader woke up per second with no events.
type IdleWakeups struct {
	Reader    string  `json:"reader"` // "shm" (sleeps ended, shm.ReaderStats.Wakeups) or "agent" (voluntary context switches, all threads)
	Seconds   float64 `json:"seconds"`
	Wakeups   uint64  `json:"wakeups"`
	PerSecond float64 `json:"per_second"`
}

// HookLatency is the module's own histogram of time spent in one hook
// (SMITH_IOC_GET_LATENCY) in one round of a configuration.
type HookLatency struct {
	Config   string `json:"config"`
	Hook     string `json:"hook"`
	Round    int    `json:"round"`
	Count    uint64 `json:"count"`
	MedianNs uint64 `json:"median_ns"`
	P95Ns    uint64 `json:"p95_ns"`
	P99Ns    uint64 `json:"p99_ns"`
	MaxNs    uint64 `json:"max_ns"`
}

// Samples are the per-iteration times of one loop run, for the CDF chart.
type Samples struct {
	Config string    `json:"config"`
	Op     string    `json:"op"`
	Ns     []float64 `json:"ns"`
}

// TransportCost is one timed SMITH_IOC_EMIT_TEST call: the producer's cost
// per record with a reader consuming.
type TransportCost struct {
	Transport   string  `json:"transport"`
	Round       int     `json:"round"`
	RecordLen   int     `json:"record_len"`
	Records     uint64  `json:"records"`
	ElapsedNs   uint64  `json:"elapsed_ns"`
	NsPerRecord float64 `json:"ns_per_record"`
	Received    uint64  `json:"received"`
	Dropped     uint64  `json:"dropped"`
}

// RateStep is one step of a rising offered load: what was offered, what
// arrived at the consumer and what was dropped on the way.
type RateStep struct {
	Transport string  `json:"transport"` // shm, netlink, or the pipeline's sink
	Offered   float64 `json:"offered_per_s"`
	Achieved  float64 `json:"achieved_per_s"` // what the producer managed to offer
	Carried   float64 `json:"carried_per_s"`  // what arrived, per second
	Sent      uint64  `json:"sent"`
	Received  uint64  `json:"received"`
	Dropped   uint64  `json:"dropped"`
	Seconds   float64 `json:"seconds"`
	// Stalled is how long the producer did not run (seconds, the
	// pipeline's): the events of that time were not offered.
	Stalled float64 `json:"stalled_s,omitempty"`
	// Duplicates is the pipeline's events that arrived again under a
	// sequence number already delivered (not in Received).
	Duplicates uint64 `json:"duplicates,omitempty"`
}

// Storm is the syscall storm: several processes connect as fast as they
// can, with a reader consuming; how many records per second the hooks
// produce and the transport carries, and what it drops.
type Storm struct {
	Transport string  `json:"transport"`
	Procs     int     `json:"procs"`
	Calls     uint64  `json:"calls"` // connects made
	Seconds   float64 `json:"seconds"`
	Records   uint64  `json:"records"` // records the module produced
	Received  uint64  `json:"received"`
	Dropped   uint64  `json:"dropped"`
}

// VM is everything one VM boot measured.
type VM struct {
	Machine    Machine         `json:"machine"`
	Module     string          `json:"module"` // module version (SMITH_IOC_GET_INFO)
	Rounds     int             `json:"rounds"`
	Loops      []LoopRun       `json:"loops"`
	Latency    []HookLatency   `json:"latency"`
	Samples    []Samples       `json:"samples"`
	Cost       []TransportCost `json:"cost"`
	Saturation []RateStep      `json:"saturation"`
	Storms     []Storm         `json:"storms"`
	Idle       []IdleWakeups   `json:"idle,omitempty"`
	Steps      []StepCost      `json:"steps,omitempty"`
	// Clock is "instructions" when the guest clock counted executed
	// instructions (QEMU -icount shift=0,sleep=off), else "ns".
	Clock string `json:"clock,omitempty"`
	// AgentSink is the sink of configuration (e)'s smith-agent: "stdout"
	// (its default configuration, the runner discarding the output) or
	// "file" (a file in the guest's tmpfs).
	AgentSink string   `json:"agent_sink,omitempty"`
	Notes     []string `json:"notes"` // what could not be measured, and why
}

// GoBench is one benchmark of `go test -bench`, over -count runs.
type GoBench struct {
	Package string               `json:"package"`
	Name    string               `json:"name"`
	Runs    []map[string]float64 `json:"runs"` // unit -> value: ns/op, B/op, allocs/op, records/s, ...
}

// Steady is the agent's cost at a steady offered rate.
type Steady struct {
	Rate       float64   `json:"rate_per_s"`
	Seconds    float64   `json:"seconds"`
	CPUPercent []float64 `json:"cpu_percent"` // of one core, per run
	RSSMiB     []float64 `json:"rss_mib"`     // peak VmHWM, per run
	Delivered  []uint64  `json:"delivered"`
	Dropped    []uint64  `json:"dropped"`
}

// Host is everything measured on the host.
type Host struct {
	Machine  Machine    `json:"machine"`
	GoBench  []GoBench  `json:"go_bench"`
	Pipeline []RateStep `json:"pipeline"`
	Steady   *Steady    `json:"steady,omitempty"`
	Notes    []string   `json:"notes"`
}

// Write stores v as indented JSON at path.
func Write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// Read loads a results file written by Write into v.
func Read(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode results %s: %w", path, err)
	}
	return nil
}
