package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"

	"smith/benchmark/internal/report"
	"smith/benchmark/internal/results"
)

func cmdReport(args []string) error {
	fset := flag.NewFlagSet("report", flag.ExitOnError)
	in := fset.String("in", "out/bench", "`directory` of result files")
	doc := fset.String("doc", "docs/BENCHMARKS.md", "the document to update")
	charts := fset.String("charts", "docs", "`directory` for the PNG charts")
	command := fset.String("command", "make bench", "the command named in the header")
	only := fset.String("sections", "", "comma-separated `titles` of the sections to rewrite (Hook cost, Transports, Pipeline); "+
		"the others and the header stay as they are, and each rewritten section names its run (default: all, and the header)")
	fset.Parse(args)

	input := report.Input{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Command: *command}
	vmFiles, err := filepath.Glob(filepath.Join(*in, "vm-*.json"))
	if err != nil {
		return fmt.Errorf("list VM results: %w", err)
	}
	slices.Sort(vmFiles)
	host := hostMachine()
	for _, f := range vmFiles {
		var vm results.VM
		if err := results.Read(f, &vm); err != nil {
			return err
		}
		// The VM ran here; the guest itself sees only an emulated CPU.
		if vm.Machine.CPU == "" {
			vm.Machine.CPU = host.CPU
		}
		input.VMs = append(input.VMs, vm)
	}
	var h results.Host
	found := false
	for _, name := range []string{"gobench.json", "pipeline.json"} {
		var part results.Host
		err := results.Read(filepath.Join(*in, name), &part)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		found = true
		if h.Machine.CPU == "" {
			h.Machine = part.Machine
		} else if part.Machine.HostLoad != "" {
			h.Machine.HostLoad += ", then " + part.Machine.HostLoad
		}
		h.GoBench = append(h.GoBench, part.GoBench...)
		h.Pipeline = append(h.Pipeline, part.Pipeline...)
		if part.Steady != nil {
			h.Steady = part.Steady
		}
		h.Notes = append(h.Notes, part.Notes...)
	}
	if found {
		input.Host = &h
	}

	out := report.Render(input)
	old, err := os.ReadFile(*doc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", *doc, err)
	}
	if *only != "" {
		if out, err = out.Only(strings.Split(*only, ",")); err != nil {
			return fmt.Errorf("-sections: %w", err)
		}
		// The header's "Last run" is the last full run's; these sections
		// say when they were measured themselves.
		if h := report.Header(string(old)); h != "" {
			out.Header = h
		}
		for i := range out.Sections {
			out.Sections[i].Body = fmt.Sprintf("Run: %s, `%s`.\n\n", input.Date, *command) + out.Sections[i].Body
		}
	}
	for _, c := range out.Charts {
		if err := c.Chart.Save(filepath.Join(*charts, c.File), 7*vg.Inch, 4.5*vg.Inch); err != nil {
			return err
		}
	}
	text := report.Splice(string(old), out.Header, out.Sections)
	if err := os.WriteFile(*doc, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var names []string
	for _, c := range out.Charts {
		names = append(names, c.File)
	}
	fmt.Fprintf(os.Stderr, "smith-bench report: %d VM result(s), host results %v; wrote %s and %s\n",
		len(input.VMs), found, *doc, strings.Join(names, ", "))
	return nil
}
