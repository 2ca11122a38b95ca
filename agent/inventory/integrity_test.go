// SPDX-License-Identifier: GPL-2.0

package inventory

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"smith/heartbeat/api"
	"smith/internal/testfs"
)

// The file_integrity task on a root with one tampered package file: one
// item for it, the counts in the summary and facts.
func TestFileIntegrityTask(t *testing.T) {
	root := t.TempDir()
	put := func(p, text string) { testfs.WriteFile(t, filepath.Join(root, p), text) }
	sum := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	put("var/lib/dpkg/info/openssh-server.md5sums", sum("sshd binary")+"  usr/sbin/sshd\n"+sum("banner")+"  usr/share/openssh/banner\n")
	put("usr/sbin/sshd", "sshd binary with a backdoor")
	put("usr/share/openssh/banner", "banner")
	tasks := &Tasks{Root: root, IntegrityRate: 1 << 20}
	items, summary, facts, err := tasks.Run(context.Background(), api.TaskFileIntegrity)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("%d items, want 1: %+v", len(items), items)
	}
	got := fields(items[0])
	for k, v := range map[string]string{"package": "openssh-server", "path": "/usr/sbin/sshd", "change": "digest",
		"manager": "dpkg", "expected_md5": sum("sshd binary"), "actual_md5": sum("sshd binary with a backdoor")} {
		if got[k] != v {
			t.Errorf("item %s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(summary, "dpkg: 1 packages, 2 files, 1 changed, 0 missing: /usr/sbin/sshd (digest)") {
		t.Errorf("summary %q", summary)
	}
	if facts["changed"] != "1" || facts["files"] != "2" || facts["incomplete"] != "false" || facts["manager"] != "dpkg" {
		t.Errorf("facts %v", facts)
	}
	if !api.TaskFileIntegrity.Known() {
		t.Error("file_integrity is not a known task kind")
	}
	// No package database: an error, not an empty success.
	if _, _, _, err := (&Tasks{Root: t.TempDir()}).Run(context.Background(), api.TaskFileIntegrity); err == nil {
		t.Error("no database: no error")
	}
}
