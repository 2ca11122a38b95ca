package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"smith/benchmark/internal/results"
	"smith/internal/harness"
)

func cmdVMResult(args []string) error {
	fs := flag.NewFlagSet("vmresult", flag.ExitOnError)
	console := fs.String("console", "", "the VM's console.log")
	out := fs.String("o", "", "write the result to this JSON `file`")
	fs.Parse(args)
	if *console == "" || *out == "" {
		return fmt.Errorf("-console and -o are required")
	}
	f, err := os.Open(*console)
	if err != nil {
		return fmt.Errorf("read VM console: %w", err)
	}
	defer f.Close()
	vm, err := extractVMResult(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *console, err)
	}
	// The VM run has just ended: how busy the host was is worth knowing.
	vm.Machine.HostLoad = harness.LoadAverage()
	return results.Write(*out, vm)
}

// extractVMResult takes the last complete result block of
// smith-bench-guest from a console log (harness.DecodeResult).
func extractVMResult(r io.Reader) (*results.VM, error) {
	raw, err := harness.DecodeResult(r, harness.ResultBench)
	if err != nil {
		return nil, fmt.Errorf("benchmark %w", err)
	}
	var vm results.VM
	if err := json.Unmarshal(raw, &vm); err != nil {
		return nil, fmt.Errorf("benchmark result: %w", err)
	}
	return &vm, nil
}
