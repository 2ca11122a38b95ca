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

// The step command is this binary with EnvStep set to the step, and Step
// reads it back.
func TestStepCommand(t *testing.T) {
	t.Setenv(EnvStep, "")
	if s := Step(); s != "" {
		t.Fatalf("Step() = %q in the test run", s)
	}
	cmd, err := StepCommand("as-nobody")
	if err != nil {
		t.Fatal(err)
	}
	if want := EnvStep + "=as-nobody"; cmd.Env[len(cmd.Env)-1] != want {
		t.Errorf("last of the environment %q, want %q", cmd.Env[len(cmd.Env)-1], want)
	}
	t.Setenv(EnvStep, "as-nobody")
	if s := Step(); s != "as-nobody" {
		t.Errorf("Step() = %q, want as-nobody", s)
	}
}

type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestMust(t *testing.T) {
	if v := Must(t, func() (int, error) { return 7, nil }); v != 7 {
		t.Errorf("Must = %d, want 7", v)
	}
	r := &fatalRecorder{TB: t}
	Must(r, func() (int, error) { return 0, fmt.Errorf("ioctl: %w", unix.ENOTTY) })
	if r.fatal != "ioctl: "+unix.ENOTTY.Error() {
		t.Errorf("Must on an error failed the test with %q", r.fatal)
	}
}
