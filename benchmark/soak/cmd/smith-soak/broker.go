package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"smith/internal/harness"
)

// brokerCmd runs a one-node kfake cluster until SIGTERM or SIGINT.  Its
// log lives in -data, so stopping the process and starting another on the
// same port and directory is a broker going down and coming back with
// what it had acknowledged: clients see refused connections in between,
// as they would with a real broker.
func brokerCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("smith-soak broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 9092, "loopback port to listen on")
	data := fs.String("data", "", "directory of the broker's log (required)")
	topic := fs.String("topic", harness.Topic, "topic created at start (one partition)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "smith-soak broker: -data is required")
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	c, err := harness.NewBroker(harness.BrokerOptions{Topic: *topic, Port: *port, DataDir: *data, SyncWrites: true})
	if err != nil {
		fmt.Fprintf(stderr, "smith-soak broker: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "smith-soak broker: listening on %v, data in %s\n", c.ListenAddrs(), *data)
	<-sig
	c.Close()
	return 0
}
