//go:build vmtest

package hooktest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"smith/agent/decode"
	"smith/internal/kmodtest"
	"smith/shm"
)

// scenarioRecords runs a fixed set of calls (an exec with odd argv, a
// failed exec, a TCP connect, a refused one) and returns their records
// with what differs from run to run (times, ids, ports, pipe inodes)
// cleared.
func scenarioRecords(t *testing.T, s *session) []string {
	t.Helper()
	var out []string
	norm := func(e *event) string {
		ev := e.Event
		ev.TimeNs, ev.Pid, ev.Tgid, ev.Ppid, ev.Pgid, ev.Sid, ev.CPU = 0, 0, 0, 0, 0, 0, 0
		// The fields follow, by id, with what differs cleared.
		ev.Fields, ev.Connect = [len(ev.Fields)]decode.Field{}, decode.Connect{}
		str := fmt.Sprintf("%+v", ev)
		for _, id := range e.order {
			f := e.fields[id]
			v := string(f.val)
			if id == shm.FConnect {
				ci := connectInfo(t, e)
				ci.FD, ci.LocalPort, ci.RemotePort = 0, 0, 0
				v = fmt.Sprintf("%+v", ci)
			}
			str += fmt.Sprintf(" [%d %#x %q]", id, f.flags, v)
		}
		return str
	}

	cmd := exec.Command(truePath, "same", "records", "tab\tnl\n\xff")
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	out = append(out, norm(s.find("exec", func(e *event) bool {
		return e.Hdr.Type == shm.EvExecve && int(e.Tgid) == pid
	})))

	missing := "/tmp/hooktest-transport-missing"
	if _, err := syscallForkExec(missing, []string{"x"}); err == nil {
		t.Fatalf("%s ran", missing)
	}
	out = append(out, norm(s.find("failed exec", func(e *event) bool {
		return e.Hdr.Type == shm.EvExecve && e.str(shm.FFilename) == missing
	})))

	v4 := listen(t, "tcp4", "127.0.0.1:0")
	for _, remote := range []netip.AddrPort{v4, closedPort(t, "tcp4", "127.0.0.1:0")} {
		c := connectCall{family: unix.AF_INET, sotype: unix.SOCK_STREAM, remote: remote, wantProto: unix.IPPROTO_TCP}
		c.run(t)
		// An attempt interrupted by a signal is recorded, marked, and
		// followed by the record of the restarted call (connect_test.go):
		// that one is compared.
		out = append(out, norm(s.find("connect", func(e *event) bool {
			return e.Hdr.Type == shm.EvConnect && int(e.Pid) == c.tid && int(connectInfo(t, e).FD) == c.fd &&
				e.Hdr.Flags&shm.RFRestart == 0
		})))
	}
	return out
}

// realtime: a PREEMPT_RT kernel.
func realtime() bool {
	b, err := os.ReadFile("/sys/kernel/realtime")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// TestNetlinkRefusedOnRT: netlink allocates in the hook, which PREEMPT_RT
// does not allow there; the load must fail with a clear error instead.
func TestNetlinkRefusedOnRT(t *testing.T) {
	if !realtime() {
		t.Skip("not a PREEMPT_RT kernel: TestTransportsAgree covers netlink")
	}
	_ = kmodtest.Unload()
	err := kmodtest.Load(fmt.Sprintf("send_type=%d", shm.TransportNetlink))
	if err == nil {
		_ = kmodtest.Unload()
		t.Fatal("netlink transport loaded on a PREEMPT_RT kernel")
	}
	t.Logf("refused as it must be: %v", err)
}

func TestTransportsAgree(t *testing.T) {
	if realtime() {
		t.Skip("PREEMPT_RT: no netlink transport (TestNetlinkRefusedOnRT)")
	}
	var got [2][]string
	for i, params := range [][]string{
		{fmt.Sprintf("send_type=%d", shm.TransportSHM)},
		{fmt.Sprintf("send_type=%d", shm.TransportNetlink)},
	} {
		t.Run(params[0], func(t *testing.T) {
			s := open(t, params...)
			got[i] = scenarioRecords(t, s)
		})
	}
	if t.Failed() {
		return
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		for i := range got[0] {
			if i < len(got[1]) && got[0][i] != got[1][i] {
				t.Errorf("record %d differs:\nshm:     %s\nnetlink: %s", i, got[0][i], got[1][i])
			}
		}
		if len(got[0]) != len(got[1]) {
			t.Errorf("shm gave %d records, netlink %d", len(got[0]), len(got[1]))
		}
	}
}
