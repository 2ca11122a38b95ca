// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBrokerAndTopicReader(t *testing.T) {
	b, err := NewBroker(BrokerOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.ListenAddrs()...), kgo.DefaultProduceTopic(Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewTopicReader("", b.ListenAddrs()...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := r.End(ctx); err != nil || n != 3 {
		t.Fatalf("end %d, %v", n, err)
	}
	got, err := r.ReadAll(ctx, 20*time.Second)
	if err != nil || len(got) != 3 || string(got[0]) != "r0" || string(got[2]) != "r2" {
		t.Fatalf("read %q, %v", got, err)
	}
}
