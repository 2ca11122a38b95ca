//go:build linux

// Package kmodtest loads and unloads smith.ko for the tests and
// benchmarks that run as root inside the test VM (scripts/vm): the one
// place that knows where the module file is, how to load it with
// parameters, and how to unload it although the last close of /dev/smith
// or of a netlink socket may still be in flight.
//
// The module files are in the directory named by the environment
// variable SMITH_KO_DIR, by default / (where the VM's initramfs puts
// smith.ko and the test modules).
//
// A test binary's TestMain calls RunUnloaded (each test loads the module
// itself, with Load) or RunLoaded (the tests share one loaded module).
package kmodtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// EnvDir names the directory of the module files.
const EnvDir = "SMITH_KO_DIR"

// Module is the name smith.ko registers.
const Module = "smith"

// unloadTries and unloadPause bound how long Unload retries a busy
// module: the reference of a file just closed can take a moment to go,
// and a child forked by another goroutine holds a copy of every open file
// until it execs.
const (
	unloadTries = 100
	unloadPause = 50 * time.Millisecond
)

// Path is where the module file name (smith.ko, or a test module) is.
func Path(name string) string {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		dir = "/"
	}
	return filepath.Join(dir, name)
}

// Loaded says whether smith is loaded.
func Loaded() bool {
	_, err := os.Stat("/sys/module/" + Module)
	return err == nil
}

// TestRecords is the parameter that lets a test write records of its own
// (SMITH_IOC_EMIT_TEST); off in a module loaded for production.
const TestRecords = "test_records=1"

// Load loads smith.ko with the given parameters ("name=value"), and with
// TestRecords unless they set test_records themselves.
func Load(params ...string) error {
	own := false
	for _, p := range params {
		own = own || strings.HasPrefix(p, "test_records=")
	}
	if !own {
		params = append(params, TestRecords)
	}
	return LoadFile(Path(Module+".ko"), params...)
}

// LoadFile loads the module file at path with the given parameters, by
// finit_module: no insmod process, and the kernel's own error.
func LoadFile(path string, params ...string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), strings.Join(params, " "), 0); err != nil {
		return fmt.Errorf("finit_module %s %s: %w", path, strings.Join(params, " "), err)
	}
	return nil
}

// TryUnload unloads smith once, without waiting: the kernel refuses a
// module in use (IsBusy).
func TryUnload() error {
	if err := unix.DeleteModule(Module, unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("delete_module %s: %w", Module, err)
	}
	return nil
}

// Unload unloads smith, retrying for a few seconds while it is busy.
func Unload() error {
	var err error
	for range unloadTries {
		if err = TryUnload(); err == nil || !IsBusy(err) {
			return err
		}
		time.Sleep(unloadPause)
	}
	return err
}

// IsBusy says whether err is the kernel refusing to unload a module in
// use: EWOULDBLOCK (EAGAIN) from delete_module with O_NONBLOCK, EBUSY when
// another module uses it.
func IsBusy(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EBUSY)
}

// TB is the part of testing.TB that LoadT uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// LoadT loads smith with params for one test and unloads it when the test
// ends; a module already loaded, or a failed unload, fails the test.
func LoadT(t TB, params ...string) {
	t.Helper()
	if Loaded() {
		t.Fatalf("%s is already loaded: a previous test leaked it", Module)
	}
	if err := Load(params...); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := Unload(); err != nil {
			t.Errorf("unload at the end of the test: %v", err)
		}
	})
}

// M is what RunUnloaded and RunLoaded run: a *testing.M.
type M interface{ Run() int }

// root says whether the test binary runs as root, and says why not.
func root() bool {
	if os.Geteuid() == 0 {
		return true
	}
	fmt.Fprintf(os.Stderr, "%s: must run as root inside the test VM\n", filepath.Base(os.Args[0]))
	return false
}

// RunUnloaded runs the tests, as root, with smith unloaded (each loads
// it itself) and, if it was loaded before, loads it again with default
// parameters. It returns the exit code for os.Exit; it is not 0 when the
// binary does not run as root, or the module could not be unloaded first
// or loaded again after.
func RunUnloaded(m M) int {
	if !root() {
		return 1
	}
	was := Loaded()
	if was {
		if err := Unload(); err != nil {
			fmt.Fprintf(os.Stderr, "%s is loaded and cannot be unloaded: %v\n", Module, err)
			return 1
		}
	}
	code := m.Run()
	if was && !Loaded() {
		if err := Load(); err != nil {
			fmt.Fprintln(os.Stderr, "load again after the tests:", err)
			code = 1
		}
	}
	return code
}

// RunLoaded runs the tests, as root, with smith loaded (loading it with
// default parameters if it was not) and leaves it as it was found.
func RunLoaded(m M) int {
	if !root() {
		return 1
	}
	was := Loaded()
	if !was {
		if err := Load(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if !was {
		if err := Unload(); err != nil {
			fmt.Fprintln(os.Stderr, "unload after the tests:", err)
			code = 1
		}
	}
	return code
}
