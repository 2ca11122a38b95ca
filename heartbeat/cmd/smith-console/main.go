// Command smith-console is the Smith heartbeat server, web console and
// fleet CLI; see heartbeat/cli and docs/CONSOLE.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"smith/heartbeat/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
