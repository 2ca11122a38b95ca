//go:build vmtest

package hooktest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"smith/shm"
)

// TestConnectExeFollowsRename: the module reuses the exe path it built
// for an earlier record on the same CPU (record.c, the path cache).
// The path in each record must still be what /proc/self/exe says at that
// moment: the same after repeated calls, the new one after the running
// binary is renamed, and the old one again after it is renamed back.
func TestConnectExeFollowsRename(t *testing.T) {
	s := open(t)
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	connectExe := func(what string) string {
		t.Helper()
		c := connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: v4, wantProto: unix.IPPROTO_TCP}
		c.run(t)
		e := s.find(what, func(e *event) bool {
			if e.Hdr.Type != shm.EvConnect || int(e.Pid) != c.tid {
				return false
			}
			ci := connectInfo(t, e)
			return int(ci.FD) == c.fd && ci.RemotePort == c.remote.Port()
		})
		return e.str(shm.FExe)
	}
	procExe := func() string {
		t.Helper()
		p, err := os.Readlink("/proc/self/exe")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	self := procExe()
	for i := range 3 {
		if got := connectExe("connect"); got != self {
			t.Fatalf("connect %d: exe %q, want %q", i, got, self)
		}
	}

	moved := self + ".moved"
	if err := os.Rename(self, moved); err != nil {
		t.Fatalf("rename the test binary: %v", err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(moved); err == nil {
			if err := os.Rename(moved, self); err != nil {
				t.Errorf("put the test binary back: %v", err)
			}
		}
	})
	if want := procExe(); want != moved {
		t.Fatalf("/proc/self/exe after the rename: %q, want %q", want, moved)
	}
	if got := connectExe("connect after rename"); got != moved {
		t.Fatalf("exe after rename %q, want %q", got, moved)
	}

	// And back: the other tests of this binary expect its own path.
	if err := os.Rename(moved, self); err != nil {
		t.Fatalf("put the test binary back: %v", err)
	}
	if got := connectExe("connect after renaming back"); got != self {
		t.Fatalf("exe after renaming back %q, want %q", got, self)
	}
}
