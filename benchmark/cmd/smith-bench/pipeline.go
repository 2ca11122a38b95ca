package main

import "fmt"

func cmdPipeline(args []string) error {
	return fmt.Errorf("not available yet")
}
