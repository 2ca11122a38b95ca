// SPDX-License-Identifier: GPL-2.0

package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smith/agent/config"
)

// A log file moved away (logrotate) is written again at its path after
// reopen; the moved one keeps what came before.
func TestReopenAfterTheFileMoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.log")
	var stderr bytes.Buffer
	log, closeLog, reopen, err := Open(config.Log{Level: "info", Format: "json", File: path}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("after")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"msg":"before"`) || strings.Contains(string(old), "after") {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), `"msg":"after"`) || strings.Contains(string(cur), "before") {
		t.Errorf("reopened file: %q", cur)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr got %q with a log file", stderr.String())
	}
}

// A bad level is refused, naming the key.
func TestBadLevel(t *testing.T) {
	if _, _, _, err := Open(config.Log{Level: "loud"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("err = %v, want a log.level error", err)
	}
}
