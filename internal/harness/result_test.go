// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"encoding/json"
	"strings"
	"testing"
)

func block(t *testing.T, kind string, v any) string {
	t.Helper()
	var b strings.Builder
	if err := EncodeResult(&b, kind, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func decodeN(t *testing.T, log, kind string) (int, error) {
	t.Helper()
	raw, err := DecodeResult(strings.NewReader(log), kind)
	if err != nil {
		return 0, err
	}
	var v struct{ N int }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoded %q: %v", raw, err)
	}
	return v.N, nil
}

func TestResultRoundTripsInWrappedLines(t *testing.T) {
	v := map[string]any{"N": 7, "notes": strings.Repeat("x", 3000)}
	enc := block(t, ResultBench, v)
	lines := strings.Split(strings.TrimSpace(enc), "\n")
	if len(lines) < 4 || lines[0] != "SMITH-BENCH-JSON-BEGIN" || lines[len(lines)-1] != "SMITH-BENCH-JSON-END" {
		t.Fatalf("block: %q", enc)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if len(l) > 76 {
			t.Fatalf("line of %d columns", len(l))
		}
	}
	// A console prefixes the begin line with its own noise.
	log := "boot noise\n[  1.0] x " + enc + "after\n"
	raw, err := DecodeResult(strings.NewReader(log), ResultBench)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil || got["N"] != 7.0 || len(got["notes"].(string)) != 3000 {
		t.Fatalf("got %v (%v)", got, err)
	}
}

// Of several blocks the last complete one counts: a checkpoint is followed
// by a fuller one, and a block cut off by a dying guest leaves the one
// before it.
func TestResultTakesTheLastCompleteBlock(t *testing.T) {
	one, two, three := block(t, ResultBench, map[string]int{"N": 1}), block(t, ResultBench, map[string]int{"N": 2}), block(t, ResultBench, map[string]int{"N": 3})
	cut := three[:len(three)/2]
	soak := block(t, ResultSoak, map[string]int{"N": 9})
	for name, tc := range map[string]struct {
		log  string
		want int
	}{
		"last of two":        {one + "noise\n" + two, 2},
		"cut-off third":      {one + two + cut, 2},
		"other kind ignored": {one + soak, 1},
		"soak":               {one + soak + "SMITH-VM-RESULT status=0\n", 9},
	} {
		kind := ResultBench
		if name == "soak" {
			kind = ResultSoak
		}
		n, err := decodeN(t, tc.log, kind)
		if err != nil || n != tc.want {
			t.Errorf("%s: got %d, %v; want %d", name, n, err, tc.want)
		}
	}
}

func TestResultFailsWithoutACompleteBlock(t *testing.T) {
	for name, tc := range map[string]struct{ log, want string }{
		"no block":  {"booted\nSMITH-VM-RESULT status=1\n", "wrote no result"},
		"truncated": {"SMITH-BENCH-JSON-BEGIN\nH4sIAAAA\n", "not complete"},
		"corrupt":   {"SMITH-BENCH-JSON-BEGIN\n!!!!\nSMITH-BENCH-JSON-END\n", "result: "},
		"not gzip":  {"SMITH-BENCH-JSON-BEGIN\neyJOIjoxfQ==\nSMITH-BENCH-JSON-END\n", "result: "},
	} {
		if _, err := DecodeResult(strings.NewReader(tc.log), ResultBench); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}
