// SPDX-License-Identifier: GPL-2.0

package pipeline

import (
	"testing"
	"time"
)

// The pool gives back the batch put last, waits for one when none is
// free, and stops waiting when told to.
func TestBatchPoolLastInFirstOut(t *testing.T) {
	bp := newBatchPool(3, nil)
	a, b, c := bp.tryGet(), bp.tryGet(), bp.tryGet()
	if a == nil || b == nil || c == nil || bp.tryGet() != nil {
		t.Fatal("a pool of 3 did not give exactly 3 batches")
	}
	bp.put(a)
	bp.put(c)
	if got := bp.tryGet(); got != c {
		t.Fatal("not the batch put last")
	}
	if got := bp.tryGet(); got != a {
		t.Fatal("not the batch put before")
	}
	stop := make(chan struct{})
	close(stop)
	if bp.get(stop, nil) != nil {
		t.Fatal("get returned a batch from an empty pool")
	}
	if bp.waitFree(1, stop, nil) {
		t.Fatal("waitFree true with no batch free")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		bp.put(b)
	}()
	if got := bp.get(nil, nil); got != b {
		t.Fatal("get did not wait for the batch put back")
	}
	bp.put(a)
	bp.put(b)
	go bp.put(c)
	if !bp.waitFree(3, nil, time.After(10*time.Second)) {
		t.Fatal("waitFree did not see all 3 back")
	}
}
