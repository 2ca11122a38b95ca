// SPDX-License-Identifier: GPL-2.0

// Package testfs writes the files a test needs (a fake /proc, a package
// database, a config), creating their directories, and the ring files
// the agent's kernel-free source reads (Ring), and reads back the records
// of a ring (Records).
package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes text to path, creating its directories; any error
// fails the test.
func WriteFile(tb testing.TB, path, text string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}
