//go:build linux && !vmtest

package kmodtest

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPath(t *testing.T) {
	t.Setenv(EnvDir, "")
	if got := Path("smith.ko"); got != "/smith.ko" {
		t.Errorf("default: %q, want /smith.ko", got)
	}
	t.Setenv(EnvDir, "/tmp/ko")
	if got := Path("smith_hooktest.ko"); got != "/tmp/ko/smith_hooktest.ko" {
		t.Errorf("with %s: %q", EnvDir, got)
	}
}

func TestIsBusy(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("delete_module: %w", unix.EAGAIN): true,
		fmt.Errorf("delete_module: %w", unix.EBUSY):  true,
		fmt.Errorf("delete_module: %w", unix.ENOENT): false,
		fmt.Errorf("delete_module: %w", unix.EPERM):  false,
	} {
		if IsBusy(err) != want {
			t.Errorf("IsBusy(%v) = %v, want %v", err, !want, want)
		}
	}
}
