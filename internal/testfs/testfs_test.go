// SPDX-License-Identifier: GPL-2.0

package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileMakesDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c.txt")
	WriteFile(t, path, "hello")
	if got, err := os.ReadFile(path); err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
}
