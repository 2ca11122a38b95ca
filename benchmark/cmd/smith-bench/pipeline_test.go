package main

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"smith/agent/decode"
)

func TestMetricByLabelSumsOnlyTheNamedMetric(t *testing.T) {
	text := `# HELP smith_events_dropped_total Events lost, by reason.
# TYPE smith_events_dropped_total counter
smith_events_dropped_total{reason="ring_full"} 12
smith_events_dropped_total{reason="spool_full"} 3
smith_events_dropped_total_extra 100
smith_events_sent_total 999
`
	m, total, err := metricByLabel(bufio.NewScanner(strings.NewReader(text)), "smith_events_dropped_total")
	if err != nil {
		t.Fatal(err)
	}
	if total != 15 || m[`{reason="ring_full"}`] != 12 || len(m) != 2 {
		t.Errorf("total %d, by label %v; want 15 from two reasons", total, m)
	}
}

func TestSampleEventsDecode(t *testing.T) {
	var ev decode.Event
	for i, rec := range sampleEvents() {
		if _, err := decode.Decode(rec, &ev); err != nil {
			t.Fatalf("sample event %d does not decode: %v", i, err)
		}
	}
}

func TestProcParsersReadThisProcess(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("procCPU: %v", err)
	}
	if mib, err := procHWM(os.Getpid()); err != nil || mib <= 0 {
		t.Errorf("procHWM = %v, %v; want a positive size", mib, err)
	}
}
