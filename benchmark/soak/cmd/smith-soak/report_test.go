package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smith/benchmark/soak"
	"smith/internal/harness"
)

// console writes a console log the way smith-soak run -print-result
// prints a result in the VM.
func console(t *testing.T, dir string, rep *Report) string {
	t.Helper()
	var text strings.Builder
	text.WriteString("boot noise\nsoak: PASS\n")
	if err := harness.EncodeResult(&text, harness.ResultSoak, rep); err != nil {
		t.Fatal(err)
	}
	text.WriteString("SMITH-VM-RESULT status=0\n")
	path := filepath.Join(dir, "console.log")
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportWritesTheDoc(t *testing.T) {
	dir := t.TempDir()
	res := &soak.Result{Ops: 1234, Delivered: 1200, Missing: 34, ExplainedRing: 30, ExplainedAgent: 4, Records: 1300, Duplicates: 60}
	rep := &Report{Kernel: "6.1.0-test", Duration: 61, EventsPerSec: 20.2, Result: res, Pass: true,
		FaultCounts: map[string]int{"agent-sigkill": 2}, Faults: []Fault{{Kind: "agent-sigkill", Start: 3, End: 5}}}
	path := console(t, dir, rep)
	doc := filepath.Join(dir, "DOC.md")
	os.WriteFile(doc, []byte("# Doc\n\nbefore\n"+docBegin+"\nold figures\n"+docEnd+"\nafter\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"report", "-console", path, "-o", filepath.Join(dir, "r.json"), "-doc", doc}, &out, &errOut); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut.String())
	}
	got, _ := os.ReadFile(doc)
	for _, want := range []string{"before\n" + docBegin, docEnd + "\nafter", "| tagged syscalls | 1234 (20/s)", "**PASS**",
		"| **unexplained losses** | **0** |", "| agent-sigkill | 3.0 | 5.0 |", "agent-sigkill 2"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("doc lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "old figures") {
		t.Errorf("old section kept:\n%s", got)
	}
	if !strings.Contains(out.String(), "soak: PASS") {
		t.Errorf("summary: %s", out.String())
	}

	// The saved result gives the same section.
	first := string(got)
	os.WriteFile(doc, []byte("# Doc\n\nbefore\n"+docBegin+"\n"+docEnd+"\nafter\n"), 0o644)
	if code := dispatch([]string{"report", "-result", filepath.Join(dir, "r.json"), "-doc", doc}, &out, &errOut); code != 0 {
		t.Fatalf("report -result: exit %d: %s", code, errOut.String())
	}
	if again, _ := os.ReadFile(doc); string(again) != first {
		t.Errorf("report -result wrote\n%s\nwant\n%s", again, first)
	}

	// A failed run fails the report too.
	rep.Pass = false
	res.Unexplained = 1
	res.Problems = []string{"udp 127.0.0.9:7 is missing"}
	path = console(t, dir, rep)
	out.Reset()
	if code := dispatch([]string{"report", "-console", path}, &out, &errOut); code != 1 {
		t.Fatalf("report of a failed run: exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "FAIL: udp 127.0.0.9:7 is missing") {
		t.Errorf("summary does not name the problem: %s", out.String())
	}
}

func TestReportWithoutResultFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	os.WriteFile(path, []byte("kernel panic\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"report", "-console", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no "+harness.ResultBegin(harness.ResultSoak)) {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
