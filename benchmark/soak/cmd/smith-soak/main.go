// Command smith-soak is the soak test of docs/RELIABILITY.md.
//
//	smith-soak run [flags]     in the test VM: module, broker, agent, load,
//	                           faults, then reconcile what reached Kafka
//	smith-soak broker [flags]  a Kafka protocol broker (kfake) that keeps its
//	                           log in a directory, so a restart keeps the data
//	smith-soak report [flags]  on the host: take the result out of the VM's
//	                           console log, print it, update the doc
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `Usage: smith-soak COMMAND [flags]

Commands:
  run      (in the test VM) load the module, start a broker and smith-agent,
           run the tagged load while injecting faults, reconcile Kafka
  broker   a kfake broker on a loopback port with its data in a directory
  report   take the result from a VM console log, print it, write the doc

Run "smith-soak COMMAND -h" for the flags of a command.
`

func main() { os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr)) }

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "broker":
		return brokerCmd(args[1:], stderr)
	case "report":
		return reportCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "smith-soak: unknown command %q\n%s", args[0], usage)
	return 2
}
