package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"smith/benchmark/internal/results"
)

// The markers scripts/vm/scenarios/bench.sh prints around the gzip'd,
// base64'd result of smith-bench-guest.
const (
	jsonBegin = "SMITH-BENCH-JSON-BEGIN"
	jsonEnd   = "SMITH-BENCH-JSON-END"
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
	vm.Machine.HostLoad = loadAverage()
	return results.Write(*out, vm)
}

// extractVMResult finds the last marked result in a console log.
func extractVMResult(r io.Reader) (*results.VM, error) {
	var (
		b64    strings.Builder
		inside bool
		found  string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasSuffix(line, jsonBegin):
			inside = true
			b64.Reset()
		case line == jsonEnd && inside:
			inside = false
			found = b64.String()
		case inside:
			b64.WriteString(line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read console: %w", err)
	}
	if found == "" {
		return nil, fmt.Errorf("no complete %s ... %s block: the benchmark wrote no result", jsonBegin, jsonEnd)
	}
	gz, err := base64.StdEncoding.DecodeString(found)
	if err != nil {
		return nil, fmt.Errorf("benchmark result: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("benchmark result: %w", err)
	}
	var vm results.VM
	if err := json.NewDecoder(zr).Decode(&vm); err != nil {
		return nil, fmt.Errorf("benchmark result: %w", err)
	}
	return &vm, nil
}
