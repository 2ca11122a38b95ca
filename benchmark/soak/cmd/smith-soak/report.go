package main

import "io"

func reportCmd(args []string, stdout, stderr io.Writer) int { return 0 }
