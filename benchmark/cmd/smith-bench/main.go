// Command smith-bench runs the host side of `make bench` and writes the
// report.
//
//	smith-bench gobench  [-count N] [-benchtime D] [-o FILE] PKG...
//	    run the Go benchmarks of PKG (shm/, agent/...) and keep their figures
//	smith-bench pipeline -agent BIN [-o FILE] ...
//	    the agent's whole pipeline into a kfake broker at rising rates,
//	    then its CPU and RSS at a steady rate
//	smith-bench vmresult -console LOG -o FILE
//	    take smith-bench-guest's result out of a VM console log
//	smith-bench report   [-in DIR] [-doc FILE] [-charts DIR] [-sections TITLES]
//	    turn the result files of DIR (vm-*.json from the VM runs,
//	    gobench.json, pipeline.json) into the Hook cost, Transports and
//	    Pipeline sections of docs/BENCHMARKS.md and the docs/*.png charts
//	    (-sections: only those, e.g. Pipeline after a host-only run)
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"smith/benchmark/internal/results"
	"smith/internal/harness"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage: smith-bench gobench|pipeline|vmresult|report [flags]

  gobench   run the Go benchmarks of the given packages, keep their figures
  pipeline  the agent's pipeline into a kfake broker at rising rates
  vmresult  take the VM benchmark's result out of its console log
  report    write docs/BENCHMARKS.md sections and docs/*.png charts

"smith-bench COMMAND -h" lists a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gobench":
		err = cmdGoBench(os.Args[2:])
	case "pipeline":
		err = cmdPipeline(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "vmresult":
		err = cmdVMResult(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "smith-bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func cmdGoBench(args []string) error {
	fs := flag.NewFlagSet("gobench", flag.ExitOnError)
	out := fs.String("o", "out/bench/gobench.json", "write the figures to this `file`")
	count := fs.Int("count", 5, "runs of each benchmark")
	benchtime := fs.String("benchtime", "1s", "go test -benchtime of each run")
	goBin := fs.String("go", "go", "the go command")
	fs.Parse(args)
	if fs.NArg() == 0 {
		return fmt.Errorf("no packages given")
	}
	list, err := runGoBench(*goBin, fs.Args(), *count, *benchtime)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("no benchmark results from %s", strings.Join(fs.Args(), " "))
	}
	m := hostMachine()
	m.HostLoad = harness.LoadAverage()
	return results.Write(*out, results.Host{Machine: m, GoBench: list})
}

// hostMachine describes this machine the way lscpu does ("Model name" is
// /proc/cpuinfo's "model name").
func hostMachine() results.Machine {
	cpu := harness.CPUModel()
	if cpu == "" {
		cpu = "unknown"
	}
	return results.Machine{CPU: cpu, Kernel: harness.KernelRelease(), CPUs: runtime.NumCPU(), Where: "host"}
}
