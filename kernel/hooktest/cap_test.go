//go:build vmtest

package hooktest

import (
	"os/exec"
	"strings"
	"testing"

	"smith/shm"
)

// TestRecordCapSmallRing: in the smallest ring (64 KiB, max_record 16 KiB)
// an exec whose argv is larger than max_record is cut to fit and flagged,
// not dropped; the meta page counts it as truncated.
func TestRecordCapSmallRing(t *testing.T) {
	s := open(t, "ring_size=65536", "argv_cap=32768")
	maxRecord := s.info().MaxRecord
	big := strings.Repeat("x", 30000)
	cmd := exec.Command(busyboxPath(t), "true", big)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	e := s.find("large exec", func(e *event) bool {
		return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == cmd.Process.Pid
	})
	if uint32(len(e.raw)) > maxRecord {
		t.Errorf("record of %d bytes, max_record %d", len(e.raw), maxRecord)
	}
	if shm.RecFlags(e.Hdr.Flags)&shm.RFTruncated == 0 {
		t.Errorf("record flags %#x: not marked truncated", e.Hdr.Flags)
	}
	argv := e.fields[shm.FArgv]
	if argv.flags&shm.FFTruncated == 0 {
		t.Errorf("argv flags %#x: not marked truncated", argv.flags)
	}
	if want := cmdline([]string{busyboxPath(t), "true", big}); len(argv.val) == 0 || !strings.HasPrefix(want, string(argv.val)) {
		t.Errorf("argv of %d bytes is not a prefix of the %d bytes passed", len(argv.val), len(want))
	}
	st := s.stats()
	if st.DroppedTooLarge != 0 {
		t.Errorf("dropped_too_large %d, want 0", st.DroppedTooLarge)
	}
	if st.Truncated == 0 {
		t.Error("meta page truncated counter is 0 after a truncated record")
	}
	t.Logf("record %d bytes (max_record %d), argv kept %d bytes, truncated %d", len(e.raw), maxRecord, len(argv.val), st.Truncated)
}
