// SPDX-License-Identifier: GPL-2.0

package inventory

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smith/agent/encode"
	"smith/heartbeat/api"
	"smith/internal/testfs"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, text := range files {
		testfs.WriteFile(t, filepath.Join(root, p), text)
	}
}

func testTasks(t *testing.T) *Tasks {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
		"etc/shadow": "root:$6$abc:19000::::::\ndaemon:*:19000::::::\n",
		"proc/net/tcp": "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n" +
			"   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 12346 1 0000000000000000 100 0 0 10 0\n",
		"proc/net/tcp6": "  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22222 1 0000000000000000 100 0 0 10 0\n",
		"proc/77/comm":                  "sshd\n",
		"etc/crontab":                   "# m h dom mon dow user command\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
		"etc/cron.d/backup":             "0 3 * * * root /usr/local/bin/backup\n",
		"var/spool/cron/crontabs/alice": "*/5 * * * * /home/alice/poll.sh\n",
	})
	os.MkdirAll(filepath.Join(root, "proc/77/fd"), 0o755)
	os.Symlink("socket:[12345]", filepath.Join(root, "proc/77/fd/3"))
	return &Tasks{Root: root, Status: func() (m, a [][2]string) {
		return [][2]string{{"loaded", "true"}, {"abi", "1.0"}}, [][2]string{{"version", "test"}}
	}}
}

func fields(it encode.TaskItem) map[string]string {
	m := map[string]string{}
	for _, f := range it.Fields {
		m[f[0]] = f[1]
	}
	return m
}

func TestTasks(t *testing.T) {
	tk := testTasks(t)
	ctx := context.Background()
	items, sum, _, err := tk.Run(ctx, api.TaskListeningSockets)
	if err != nil || len(items) != 2 {
		t.Fatalf("sockets: %d items, %v", len(items), err)
	}
	if f := fields(items[0]); f["proto"] != "tcp" || f["local_ip"] != "0.0.0.0" || f["local_port"] != "22" || f["pid"] != "77" || f["comm"] != "sshd" {
		t.Errorf("socket 0: %v", f)
	}
	if f := fields(items[1]); f["proto"] != "tcp6" || f["local_ip"] != "::1" || f["local_port"] != "631" {
		t.Errorf("socket 1: %v", f)
	}
	if !strings.Contains(sum, "tcp 0.0.0.0:22 sshd") {
		t.Errorf("summary %q", sum)
	}
	items, _, facts, err := tk.Run(ctx, api.TaskUsers)
	if err != nil || len(items) != 2 || facts["login_shells"] != "1" || fields(items[1])["password_locked"] != "true" {
		t.Fatalf("users: %v %v %v", items, facts, err)
	}
	items, _, _, err = tk.Run(ctx, api.TaskCrontabs)
	if err != nil || len(items) != 3 {
		t.Fatalf("crontabs: %v %v", items, err)
	}
	if f := fields(items[2]); f["file"] != "/var/spool/cron/crontabs/alice" || f["entry"] != "*/5 * * * * /home/alice/poll.sh" {
		t.Errorf("crontab: %v", f)
	}
	if _, _, facts, err := tk.Run(ctx, api.TaskModuleStatus); err != nil || facts["abi"] != "1.0" {
		t.Errorf("module status: %v %v", facts, err)
	}
	if _, _, _, err := tk.Run(ctx, "mystery"); err == nil {
		t.Error("unknown task kind accepted")
	}
}
