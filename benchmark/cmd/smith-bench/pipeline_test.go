package main

import (
	"context"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/benchmark/internal/results"
	"smith/internal/harness"
)

func TestSampleEventsDecode(t *testing.T) {
	var ev decode.Event
	for i, rec := range sampleEvents() {
		if _, err := decode.Decode(rec, &ev); err != nil {
			t.Fatalf("sample event %d does not decode: %v", i, err)
		}
	}
}

// recount reads back what each step's offsets hold: each sequence
// number once (a number again is a duplicate), a "lost N" record not an
// event, records before the agent's start not its own.
func TestRecountCountsEachSequenceNumberOnce(t *testing.T) {
	b, err := harness.NewBroker(harness.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := harness.Produce(ctx, "", b.ListenAddrs(),
		[]byte(`{"seq":1,"stream":"00ff"}`),                                      // an earlier agent's, another stream
		[]byte(`{"seq":1,"stream":"00aa"}`), []byte(`{"seq":2,"stream":"00aa"}`), // step 1: offsets 1, 2
		[]byte(`{"seq":2,"stream":"00aa"}`), []byte(`{"data_type":"1","seq":3,"stream":"00aa"}`), []byte(`{"seq":4,"stream":"00aa"}`), // step 2: 3 to 5
	); err != nil {
		t.Fatal(err)
	}
	a := &agent{end0: 1, brokers: b.ListenAddrs()}
	steps := []results.RateStep{{Sent: 2, Received: 2, Seconds: 1}, {Sent: 1, Received: 3, Seconds: 1}}
	if err := a.recount(steps, [][2]uint64{{1, 3}, {3, 6}}); err != nil {
		t.Fatal(err)
	}
	if s1, s2 := steps[0], steps[1]; s1.Received != 2 || s1.Duplicates != 0 || s2.Received != 1 || s2.Duplicates != 1 || s2.Carried != 1 {
		t.Fatalf("step 1 %+v, step 2 %+v; want 2 and 0, then 1 and 1 duplicate", s1, s2)
	}
}
