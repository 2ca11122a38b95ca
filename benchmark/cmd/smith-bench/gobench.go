package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"smith/benchmark/internal/results"
)

// runGoBench runs the Go benchmarks of pkgs (their own, in shm/ and
// agent/: this program only collects their figures) count times each and
// returns them parsed.
func runGoBench(goBin string, pkgs []string, count int, benchtime string) ([]results.GoBench, error) {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem",
		"-count", strconv.Itoa(count), "-benchtime", benchtime}
	args = append(args, pkgs...)
	cmd := exec.Command(goBin, args...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return parseGoBench(&out)
}

// parseGoBench reads `go test -bench` output: "pkg: P" lines name the
// package of the benchmark lines after them, and each benchmark line is
// "BenchmarkName-CPUS  N  V unit  V unit ...".
func parseGoBench(r io.Reader) ([]results.GoBench, error) {
	var (
		list  []results.GoBench
		index = map[string]int{}
		pkg   string
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		run := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: value %q: %w", line, f[i], err)
			}
			run[f[i+1]] = v
		}
		key := pkg + "." + name
		i, ok := index[key]
		if !ok {
			i = len(list)
			index[key] = i
			list = append(list, results.GoBench{Package: pkg, Name: name})
		}
		list[i].Runs = append(list[i].Runs, run)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return list, nil
}
