// SPDX-License-Identifier: GPL-2.0

package tcptest

import (
	"io"
	"net"
	"testing"
	"time"
)

// A connect to the listener succeeds, and the connection is closed from
// the listener's side: a read on it ends.
func TestListenAcceptsAndCloses(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read from an accepted connection: %d, %v; want EOF", n, err)
		}
		c.Close()
	}
}

// Serve hands every connection to its handler and returns once the
// listener is closed.
func TestServeHandsEachConnectionAndEndsWithTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan net.Conn)
	done := make(chan struct{})
	go func() {
		Serve(ln, func(c net.Conn) { got <- c })
		close(done)
	}()
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		(<-got).Close()
	}
	ln.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after the listener closed")
	}
}

func TestListenReportsWhatFailed(t *testing.T) {
	if _, err := Listen("tcp", "127.0.0.1:-1"); err == nil {
		t.Fatal("listen on port -1 succeeded")
	}
}
