// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"os"
	"path/filepath"
	"testing"

	"smith/agent/config"
)

// The written configuration is what the agent loads: the test's paths
// under dir, the defaults elsewhere.
func TestWriteConfigLoadsBack(t *testing.T) {
	dir := t.TempDir()
	c := AgentConfig(dir)
	c.Output.Sinks = []string{"file"}
	path := filepath.Join(dir, "agent.toml")
	if err := WriteConfig(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Agent.StateDir != filepath.Join(dir, "state") || got.Log.File != filepath.Join(dir, "agent.log") ||
		got.Agent.PidFile != "" || got.Metrics.Listen != "" || got.Kafka.Topic != config.Default().Kafka.Topic {
		t.Fatalf("loaded %+v", got)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if err := WriteConfig(filepath.Join(dir, "missing", "agent.toml"), c); err == nil {
		t.Error("no error for a directory that does not exist")
	}
}
