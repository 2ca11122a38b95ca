// SPDX-License-Identifier: GPL-2.0

package main

import "testing"

func TestPackageVersion(t *testing.T) {
	for _, c := range []struct {
		describe string
		commits  int
		want     string
	}{
		{"v1.2.3", 0, "1.2.3"},
		{"1.2", 0, "1.2"},
		{"v1.2.3-rc1", 0, "1.2.3~rc1"},
		{"v1.2.3-dirty", 0, "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234", 0, "1.2.3+4.gabc1234"},
		{"v1.2.3-0-gabc1234", 0, "1.2.3"},
		{"v1.2.3-rc1-4-gabc1234-dirty", 0, "1.2.3~rc1+4.gabc1234.dirty"},
		{"22aea08", 412, "0.0.0+412.g22aea08"},
		{"22aea08-dirty", 412, "0.0.0+412.g22aea08.dirty"},
	} {
		got, err := packageVersion(c.describe, c.commits)
		if err != nil || got != c.want {
			t.Errorf("packageVersion(%q, %d) = %q, %v; want %q", c.describe, c.commits, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "dev", "22aea08", "release-x", "v1.2.3 -4", "v1..2/3"} {
		if got, err := packageVersion(bad, 0); err == nil {
			t.Errorf("packageVersion(%q) = %q, want an error", bad, got)
		}
	}
}

func TestPackageRelease(t *testing.T) {
	for _, ok := range []string{"1", "2", "1.1"} {
		if err := packageRelease(ok); err != nil {
			t.Errorf("packageRelease(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-1", "1-2", "a"} {
		if packageRelease(bad) == nil {
			t.Errorf("packageRelease(%q): want an error", bad)
		}
	}
}
