package main

import (
	"testing"

	"smith/agent/decode"
)

func TestSampleEventsDecode(t *testing.T) {
	var ev decode.Event
	for i, rec := range sampleEvents() {
		if _, err := decode.Decode(rec, &ev); err != nil {
			t.Fatalf("sample event %d does not decode: %v", i, err)
		}
	}
}
