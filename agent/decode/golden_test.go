// SPDX-License-Identifier: GPL-2.0

package decode

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/records.golden from AppendEvent's output")

// TestGoldenRecords pins the bytes AppendEvent writes (one record a line,
// in hex), so a change to an offset shows even where building and decoding
// would agree with each other; and decodes each line back.
func TestGoldenRecords(t *testing.T) {
	evs := []*Event{execEvent(), connectEvent(AFInet), connectEvent(AFInet6)}
	var out []byte
	for _, ev := range evs {
		out = append(out, hex.EncodeToString(AppendEvent(nil, ev, RawField{ID: 99, Value: []byte("x")}))...)
		out = append(out, '\n')
	}
	out = append(out, hex.EncodeToString(AppendLost(nil, 12345))...)
	out = append(out, '\n')
	const path = "testdata/records.golden"
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("records differ from %s:\n got %s\nwant %s", path, out, want)
	}
	lines := bytes.Split(bytes.TrimSuffix(want, []byte("\n")), []byte("\n"))
	for i, ev := range evs {
		rec, err := hex.DecodeString(string(lines[i]))
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if k, err := Decode(rec, &got); k != KindEvent || err != nil {
			t.Fatalf("line %d: kind %d, %v", i+1, k, err)
		}
		if got.Skipped != 1 {
			t.Fatalf("line %d: skipped %d fields, want 1", i+1, got.Skipped)
		}
		sameEvent(t, &got, ev)
	}
}
