// SPDX-License-Identifier: GPL-2.0

// Package tcptest runs the TCP listeners that tests and load generators
// connect to, where the connect itself is what they exercise (a hooked
// connect, a broker that never answers): someone must accept it, and
// nothing more.
package tcptest

import (
	"fmt"
	"net"
)

// Serve accepts connections on ln and hands each to handle, until ln is
// closed.
func Serve(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c)
	}
}

// Listen listens on network and address and closes every connection it
// accepts, until the listener is closed.
func Listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", network, address, err)
	}
	go Serve(ln, func(c net.Conn) { c.Close() })
	return ln, nil
}
