//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// profile is the instruction profile's run (benchmark/profile/README.md):
// no timing of its own.  For each configuration of -configs and each loop,
// it runs the loop twice, a quarter of its length and then its whole
// length, and executes the marker program (-mark) before the first, between
// them and after the second, each time once the reader has drained the
// ring.  The tbcount QEMU plugin writes a snapshot of its instruction
// counters at each marker; the difference of the two windows over the
// difference of their lengths is the cost of one more operation, with the
// loop's start-up and the marker's own cost cancelled out.
//
// Each marker is announced on stderr ("profile mark K: CONFIG OP PHASE")
// so that the snapshots can be named, and for each configuration with the
// module loaded the text symbols of kallsyms are printed for the
// symbolizer (the kernel's once, the module's each time).
func (b *bench) profile() error {
	for _, op := range []string{"exec", "connect"} {
		if _, _, err := b.loop(op, max(1, b.n(op)/4), false); err != nil {
			return fmt.Errorf("profile, warm-up: %w", err)
		}
	}
	pr := &profiler{b: b}
	for _, config := range splitList(b.o.configs) {
		if err := pr.config(config); err != nil {
			return fmt.Errorf("profile, %s: %w", config, err)
		}
	}
	return nil
}

// profiler is one profile run: the markers executed so far, and whether
// the kernel's symbols were printed.
type profiler struct {
	b       *bench
	marks   int
	printed bool
}

func (pr *profiler) mark(config, op, phase string) error {
	fmt.Fprintf(os.Stderr, "smith-bench-guest: profile mark %d: %s %s %s\n", pr.marks, config, op, phase)
	pr.marks++
	if out, err := exec.Command(pr.b.o.mark).CombinedOutput(); err != nil {
		return fmt.Errorf("marker %s: %w: %s", pr.b.o.mark, err, out)
	}
	return nil
}

// config profiles each loop in one configuration.
func (pr *profiler) config(config string) (err error) {
	b := pr.b
	s, err := b.start(config)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	if b.m.loaded {
		if err := printSymbols(config, !pr.printed); err != nil {
			return err
		}
		pr.printed = true
	}
	if err := b.settle(s); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := pr.mark(config, "warm-up", "-"); err != nil {
		return err
	}
	if err := quiesce(s); err != nil {
		return fmt.Errorf("marker warm-up: %w", err)
	}
	for _, op := range []string{"exec", "connect"} {
		if err := pr.mark(config, op, "start"); err != nil {
			return err
		}
		for _, n := range []int{max(1, b.n(op)/4), b.n(op)} {
			cpu0, timed := readerCPU(s.cons)
			run, _, err := b.loop(op, n, false)
			if err == nil && s.dev != nil {
				err = drain(s.dev)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			reader := "-"
			if cpu1, ok := readerCPU(s.cons); ok && timed {
				reader = fmt.Sprint(cpu1 - cpu0)
			}
			fmt.Fprintf(os.Stderr, "smith-bench-guest: profile %s %s n=%d mean_ns=%.0f reader_ns=%s\n",
				config, op, n, run.MeanNs, reader)
			if err := pr.mark(config, op, fmt.Sprintf("n=%d", n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func printSymbols(config string, all bool) error {
	raw, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		return err
	}
	fmt.Println("SMITH-PROFILE-KALLSYMS-BEGIN " + config)
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.ContainsAny(f[1], "tTwW") {
			continue
		}
		if all || strings.HasSuffix(l, "[smith]") {
			fmt.Println(l)
		}
	}
	fmt.Println("SMITH-PROFILE-KALLSYMS-END " + config)
	return nil
}

// splitList splits a comma-separated list of configurations.
func splitList(list string) []string {
	var v []string
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			v = append(v, c)
		}
	}
	return v
}
