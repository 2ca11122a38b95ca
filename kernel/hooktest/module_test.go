//go:build vmtest

package hooktest

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"smith/internal/kmodtest"
	"smith/shm"
)

// The do-nothing module of kernel/hooktest/kmod, built beside smith.ko.
const testModule = "smith_hooktest"

func TestModuleLoad(t *testing.T) {
	s := open(t)
	if in := s.info(); in.HooksAttached&(shm.HookInitModule|shm.HookFinitModule) != shm.HookInitModule|shm.HookFinitModule {
		t.Fatalf("module hooks not attached: attached %#x failed %#x", in.HooksAttached, in.HooksFailed)
	}
	path := kmodtest.Path(testModule + ".ko")
	image, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()

	// find the record of our call of this type whose params are these.
	find := func(t *testing.T, typ shm.RecType, params string) *event {
		t.Helper()
		return s.find("module load", func(e *event) bool {
			return e.Hdr.Type == typ && int(e.Tgid) == os.Getpid() && e.str(shm.FModParams) == params
		})
	}
	check := func(t *testing.T, e *event, before time.Time, errno syscall.Errno, name string) {
		t.Helper()
		checkCommon(t, e, before, time.Now())
		expectEq(t, "result", e.Result, -int64(errno))
		expectStr(t, e, shm.FExe, "exe", self)
		if name != "" {
			expectStr(t, e, shm.FModName, "name", name)
		} else if e.has(shm.FModName) {
			t.Errorf("name %q for a rejected image", e.str(shm.FModName))
		}
	}
	unload := func(t *testing.T) {
		t.Helper()
		if err := unix.DeleteModule(testModule, 0); err != nil {
			t.Fatalf("delete_module %s: %v", testModule, err)
		}
	}

	// finit loads the test module by finit_module with params.
	finit := func(t *testing.T, params string) (before time.Time, err error) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		before = time.Now()
		return before, unix.FinitModule(int(f.Fd()), params, 0)
	}

	t.Run("finit_module", func(t *testing.T) {
		before, err := finit(t, "fail=0 finit")
		if err != nil {
			t.Fatalf("finit_module %s: %v", path, err)
		}
		unload(t)
		e := find(t, shm.EvFinitModule, "fail=0 finit")
		check(t, e, before, 0, testModule)
		expectStr(t, e, shm.FModPath, "path", path)
	})

	t.Run("init_module", func(t *testing.T) {
		before := time.Now()
		if err := unix.InitModule(image, "fail=0 init"); err != nil {
			t.Fatalf("init_module of %s: %v", path, err)
		}
		unload(t)
		e := find(t, shm.EvInitModule, "fail=0 init")
		check(t, e, before, 0, testModule)
		if e.has(shm.FModPath) {
			t.Errorf("init_module record has a path: %q", e.str(shm.FModPath))
		}
	})

	t.Run("finit_module refused by the module", func(t *testing.T) {
		before, err := finit(t, "fail=1")
		if err != unix.EINVAL {
			t.Fatalf("finit_module %s fail=1: %v, want EINVAL", path, err)
		}
		e := find(t, shm.EvFinitModule, "fail=1")
		check(t, e, before, unix.EINVAL, testModule)
		expectStr(t, e, shm.FModPath, "path", path)
	})

	t.Run("init_module of a module loaded already", func(t *testing.T) {
		if err := unix.InitModule(image, "fail=0 first"); err != nil {
			t.Fatalf("init_module of %s: %v", path, err)
		}
		defer unload(t)
		before := time.Now()
		if err := unix.InitModule(image, "fail=0 again"); err != unix.EEXIST {
			t.Fatalf("second init_module of %s: %v, want EEXIST", path, err)
		}
		// Rejected before the notifier: the name comes from the image.
		e := find(t, shm.EvInitModule, "fail=0 again")
		check(t, e, before, unix.EEXIST, testModule)
	})

	t.Run("init_module of a rejected image", func(t *testing.T) {
		junk := append([]byte("\x7fELF not a module"), make([]byte, 256)...)
		before := time.Now()
		err := unix.InitModule(junk, "rejected")
		errno, ok := err.(syscall.Errno)
		if !ok || errno == 0 {
			t.Fatalf("init_module of junk: %v, want an error", err)
		}
		e := find(t, shm.EvInitModule, "rejected")
		check(t, e, before, errno, "")
	})

	t.Run("finit_module of a rejected file", func(t *testing.T) {
		p := "/tmp/hooktest-not-a-module.ko"
		f := notAModule(t, p)
		before := time.Now()
		err := unix.FinitModule(int(f.Fd()), "rejected file", 0)
		errno, ok := err.(syscall.Errno)
		if !ok || errno == 0 {
			t.Fatalf("finit_module of junk: %v, want an error", err)
		}
		e := find(t, shm.EvFinitModule, "rejected file")
		check(t, e, before, errno, "")
		expectStr(t, e, shm.FModPath, "path", p)
	})

	st := s.stats()
	if st.Hooks[3].Events < 4 || st.Hooks[4].Events < 3 {
		t.Errorf("events counted: init_module %d finit_module %d, want at least 4 and 3",
			st.Hooks[3].Events, st.Hooks[4].Events)
	}
}

// notAModule creates the file path holding no module and opens it; both
// go at the end of the test.
func notAModule(t *testing.T, path string) *os.File {
	t.Helper()
	if err := os.WriteFile(path, []byte("not a module at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
