// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"bufio"
	"os"
	"strings"
)

// The machine a benchmark ran on, as its reports name it.

// CPUModel is /proc/cpuinfo's first "model name" (what lscpu calls Model
// name), "" when there is none.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// KernelRelease is the running kernel's release, "unknown" when it cannot
// be read.
func KernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// LoadAverage is the machine's 1-minute load average, "" when it cannot be
// read.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
