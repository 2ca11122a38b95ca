// SPDX-License-Identifier: GPL-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goreleaser/nfpm/v2/files"

	"smith/heartbeat/cli"
)

// Every file the description names exists in the tree (or is made at
// build time), and configuration files are kept on upgrade.
func TestDescriptionSources(t *testing.T) {
	mods, err := moduleSources(filepath.Join("..", "kernel"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Makefile", "main.c", "smith_abi.h", "hooktest/kmod/smith_hooktest.c"} {
		if !contains(mods, want) {
			t.Errorf("module sources lack %s: %v", want, mods)
		}
	}
	for _, m := range mods {
		if strings.HasSuffix(m, ".go") || m == "dkms.conf" {
			t.Errorf("module sources include %s", m)
		}
	}
	configs := 0
	for _, d := range description("amd64", mods) {
		for _, f := range d.files {
			if f.kind == files.TypeConfigNoReplace {
				configs++
				if !strings.HasPrefix(f.dst, "/etc/smith/") {
					t.Errorf("%s: config file outside /etc/smith: %s", d.name, f.dst)
				}
			}
			if f.gen || f.kind == files.TypeDir {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", f.src)); err != nil {
				t.Errorf("%s: %v", d.name, err)
			}
		}
		if _, err := os.Stat(filepath.Join("scripts", d.scripts+".sh")); err != nil {
			t.Errorf("%s: maintainer scripts: %v", d.name, err)
		}
	}
	if configs != 2 {
		t.Errorf("%d config files, want 2 (agent, console)", configs)
	}
}

// The console's packaged configuration loads; only the secrets, which
// the operator sets, are missing.
func TestConsoleConfigTemplate(t *testing.T) {
	env := map[string]string{"SMITH_FLEET_TOKEN": "fleet", "SMITH_CONSOLE_PASSWORD": "password"}
	c, err := cli.LoadConfig("../heartbeat/smith-console.toml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.DB != "/var/lib/smith-console/console.db" {
		t.Errorf("db = %q", c.DB)
	}
	c, err = cli.LoadConfig("../heartbeat/smith-console.toml", func(string) string { return "" })
	if err == nil {
		err = c.Check()
	}
	if err == nil || !strings.Contains(err.Error(), "fleet token") {
		t.Errorf("without secrets: %v, want the fleet token error", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
