// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"fmt"
	"os"
	"path/filepath"

	"smith/agent/config"
)

// AgentConfig is the agent's default configuration with what a test must
// not share with the host moved under dir: state (and spool) in dir/state,
// the log in dir/agent.log, no pid file, no metrics listener.
func AgentConfig(dir string) config.Config {
	c := config.Default()
	c.Agent.StateDir = filepath.Join(dir, "state")
	c.Agent.PidFile = ""
	c.Log.File = filepath.Join(dir, "agent.log")
	c.Metrics.Listen = ""
	return c
}

// WriteConfig renders c into the file path (mode 0600: it may hold secrets).
func WriteConfig(path string, c config.Config) error {
	raw, err := config.Render(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("agent config: %w", err)
	}
	return nil
}
