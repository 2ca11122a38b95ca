package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"smith/benchmark/soak"
	"smith/internal/harness"
)

// Markers of the generated section of the doc.
const (
	docBegin = "<!-- soak-report-begin: written by smith-soak report, do not edit -->"
	docEnd   = "<!-- soak-report-end -->"
)

func reportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smith-soak report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	console := fs.String("console", "", "VM console log holding the result")
	result := fs.String("result", "", "a result JSON written before (-o), instead of -console")
	out := fs.String("o", "", "write the result JSON here")
	doc := fs.String("doc", "", "replace the generated section of this Markdown file with the run's figures")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*console == "") == (*result == "") {
		fmt.Fprintln(stderr, "smith-soak report: one of -console and -result is required")
		return 2
	}
	var raw []byte
	var err error
	if *console != "" {
		raw, err = extract(*console)
	} else {
		raw, err = os.ReadFile(*result)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smith-soak report: %v\n", err)
		return 1
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		fmt.Fprintf(stderr, "smith-soak report: result: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := os.WriteFile(*out, raw, 0o644); err != nil {
			fmt.Fprintf(stderr, "smith-soak report: %v\n", err)
			return 1
		}
	}
	printSummary(stdout, &rep)
	if *doc != "" {
		if err := writeDoc(*doc, &rep); err != nil {
			fmt.Fprintf(stderr, "smith-soak report: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "soak: figures written to %s\n", *doc)
	}
	if !rep.Pass {
		return 1
	}
	return 0
}

// extract takes the result smith-soak run -print-result wrote to the VM
// console (the last complete block, harness.DecodeResult).
func extract(console string) ([]byte, error) {
	f, err := os.Open(console)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := harness.DecodeResult(f, harness.ResultSoak)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", console, err)
	}
	// Indented, as run -o writes it.
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("%s: result: %w", console, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeDoc(path string, rep *Report) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, ok := strings.Cut(string(text), docBegin)
	if !ok {
		return fmt.Errorf("%s: no line %q to write after", path, docBegin)
	}
	_, after, ok := strings.Cut(rest, docEnd)
	if !ok {
		return fmt.Errorf("%s: no line %q", path, docEnd)
	}
	var b strings.Builder
	b.WriteString(docBegin + "\n\n")
	b.WriteString(docSection(rep))
	b.WriteString("\n" + docEnd)
	return os.WriteFile(path, []byte(before+b.String()+after), 0o644)
}

func docSection(rep *Report) string {
	res := rep.Result
	if res == nil {
		res = &soak.Result{}
	}
	var b strings.Builder
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "Run of %s on kernel %s (QEMU, software emulation, 2 virtual CPUs): **%s**.\n\n", rep.Started, rep.Kernel, verdict)
	b.WriteString("| figure | value |\n| --- | --- |\n")
	row("load duration", "%.0f s", rep.Duration)
	row("tagged syscalls", "%d (%.0f/s): %s", res.Ops, rep.EventsPerSec, kinds(res.OpsByKind))
	row("events in Kafka", "%d distinct (%.0f/s, untagged activity included)", res.Events, float64(res.Events)/max(rep.Duration, 1))
	row("settings", "ring %d KiB, spool bound %s, rates %g exec/s, %g connect/s, %g module loads/s",
		rep.RingBytes>>10, rep.SpoolBytes, rep.ExecRate, rep.ConnRate, rep.ModRate)
	row("faults injected", "%s", kinds(rep.FaultCounts))
	row("delivered as performed", "%d", res.Delivered)
	row("Kafka records / duplicates", "%d / %d (same sequence number, same event)", res.Records, res.Duplicates)
	row("calls restarted by the kernel", "%d (interrupted pass reported with ERESTARTSYS, then the real one)", res.Restarted)
	row("missing, explained by ring drops", "%d (%d lost records in Kafka, N sum %d; module dropped_full %d)",
		res.ExplainedRing, res.LostRecords, res.LostTotal, res.Counters.RingDroppedFull)
	row("missing, explained by ring drops whose lost record the agent dropped", "%d", res.ExplainedHidden)
	row("missing, explained by agent drops", "%d (%d sequence numbers never delivered; agent spool_full %d)",
		res.ExplainedAgent, res.SeqGaps, res.Counters.AgentSpoolFull)
	row("missing, explained by kretprobe misses", "%d (module hook_missed %d)", res.ExplainedHookMiss, res.Counters.HookMissed)
	ringDrops := res.Counters.RingDroppedFull + res.Counters.RingDroppedTooLarge + res.Counters.RingDroppedFault
	agentDrops := res.Counters.AgentSpoolFull + res.Counters.AgentTooLarge + res.Counters.AgentDecode + res.Counters.AgentSink
	row("counted drops (all events, tagged or not)", "%d: ring %d (module dropped_*), hook misses %d, agent %d (spool_full %d, message_too_large %d)",
		ringDrops+res.Counters.HookMissed+agentDrops, ringDrops, res.Counters.HookMissed, agentDrops, res.Counters.AgentSpoolFull, res.Counters.AgentTooLarge)
	row("**unexplained losses**", "**%d**", res.Unexplained)
	problems := append(append([]string(nil), rep.Problems...), res.Problems...)
	if len(problems) > 0 {
		b.WriteString("\nProblems:\n\n")
		for _, p := range problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	if len(rep.Faults) > 0 {
		b.WriteString("\nFaults, in seconds since the load started:\n\n| fault | from | to | detail |\n| --- | --- | --- | --- |\n")
		for _, f := range rep.Faults {
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %s |\n", f.Kind, f.Start, f.End, f.Detail)
		}
	}
	return b.String()
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
