//go:build vmtest

// SPDX-License-Identifier: GPL-2.0

package vmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"smith/agent/config"
	"smith/internal/harness"
)

// An exec chain shell -> child shell -> grandchild: the grandchild's exec
// event carries its ancestry (both shells and this test) and the sha256
// of the binary that ran (busybox, hashed here by the test).
func TestAgentAncestryAndHash(t *testing.T) {
	raw, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	want := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	for _, format := range []string{"smith", "ecs"} {
		t.Run(format, func(t *testing.T) {
			// A wait long enough for TCG to hash busybox on its first exec.
			a := startAgentConf(t, dir, format, "device", func(c *config.Config) { c.Enrich.ExeHashWait = config.Duration(time.Second) })
			token := fmt.Sprintf("chain-%s-%d", format, time.Now().UnixNano())
			inner := "/bin/busybox echo " + token + "; true"
			// "; true" keeps each shell from exec'ing its last command.
			cmd := exec.Command("/bin/sh", "-c", "/bin/sh -c '"+inner+"'; true")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), token) {
				t.Fatalf("chain: %v: %s", err, out)
			}
			shell := float64(cmd.Process.Pid)
			deadline := time.Now().Add(60 * time.Second)
			for {
				// Each exec of the chain names the token: the
				// grandchild's is the third (the first two may be
				// written before it comes).
				raw, _ := os.ReadFile(a.events)
				n := 0
				for _, line := range strings.Split(string(raw), "\n") {
					if strings.Contains(line, token) {
						n++
					}
				}
				if n >= 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the chain's exec did not reach the events file within 60 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			evs := a.stop(t)
			self, _ := os.Executable()
			if format == "smith" {
				ev := find(t, evs, "grandchild exec", func(ev map[string]any) bool {
					return ev["data_type"] == "59" && strings.HasSuffix(fmt.Sprint(ev["argv"]), token)
				})
				t.Logf("grandchild exec: exe_hash %v, parent_args %v, ancestors %v", ev["exe_hash"], ev["parent_args"], ev["ancestors"])
				expect(t, ev, "exe", "/bin/busybox")
				expect(t, ev, "exe_hash", want)
				expect(t, ev, "parent_exe", "/bin/busybox")
				expect(t, ev, "parent_args", []string{"/bin/sh", "-c", inner})
				anc, _ := ev["ancestors"].([]any)
				if len(anc) < 3 {
					t.Fatalf("ancestors %v: want the child shell, the shell, this test", ev["ancestors"])
				}
				child, _ := anc[0].(map[string]any)
				top, _ := anc[1].(map[string]any)
				test, _ := anc[2].(map[string]any)
				expect(t, child, "pid", ev["ppid"])
				expect(t, top, "pid", shell)
				expect(t, top, "exe", "/bin/busybox")
				expect(t, test, "pid", float64(os.Getpid()))
				expect(t, test, "exe", self)
				cs, _ := child["start_time_ns"].(float64)
				ts, _ := top["start_time_ns"].(float64)
				if ts <= 0 || cs < ts || ev["parent_start_time_ns"] != child["start_time_ns"] {
					t.Errorf("start times: child shell %v, shell %v, parent_start_time_ns %v", child["start_time_ns"], top["start_time_ns"], ev["parent_start_time_ns"])
				}
				return
			}
			ev := find(t, evs, "grandchild exec", func(ev map[string]any) bool {
				return harness.Lookup(ev, "event.action") == "execve" && strings.HasSuffix(fmt.Sprint(harness.Lookup(ev, "process.command_line")), token)
			})
			expect(t, ev, "process.hash.sha256", want)
			expect(t, ev, "process.parent.executable", "/bin/busybox")
			expect(t, ev, "process.parent.args", []string{"/bin/sh", "-c", inner})
			anc, _ := harness.Lookup(ev, "smith.ancestors").([]any)
			if len(anc) < 3 {
				t.Fatalf("smith.ancestors %v", harness.Lookup(ev, "smith.ancestors"))
			}
			top, _ := anc[1].(map[string]any)
			test, _ := anc[2].(map[string]any)
			expect(t, top, "pid", shell)
			expect(t, test, "executable", self)
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(top["start"])); err != nil {
				t.Errorf("ancestor start %v: %v", top["start"], err)
			}
		})
	}
}
