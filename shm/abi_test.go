//go:build !vmtest

package shm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unsafe"
)

const abiHeader = "../kernel/smith_abi.h"

// abiCheck pairs a C expression over smith_abi.h with the Go value that
// mirrors it.
type abiCheck struct {
	c   string
	val any // an integer, or a string for string macros
}

func sizeof(s string, v uintptr) abiCheck { return abiCheck{"sizeof(struct " + s + ")", v} }
func offsetof(s, m string, v uintptr) abiCheck {
	return abiCheck{"offsetof(struct " + s + ", " + m + ")", v}
}

// abiChecks lists everything the Go mirror claims about the header. The
// C printer is generated from this list, and TestABICoversHeader makes sure
// every #define, enumerator, struct and member of the header is in it.
func abiChecks() []abiCheck {
	var (
		cons RingConsumer
		meta RingMeta
		hdr  RecHdr
		lost Lost
		tr   TestRec
		ev   Event
		fld  Field
		ci   ConnectInfo
		xid  ExeID
		info Info
		hs   HookStats
		st   Stats
		et   EmitTest
		lat  Latency
	)
	return []abiCheck{
		{"SMITH_ABI_MAJOR", ABIMajor},
		{"SMITH_ABI_MINOR", ABIMinor},
		{"SMITH_RING_MAGIC", RingMagic},
		{"SMITH_DEVICE_NAME", DeviceName},
		{"SMITH_RING_DEFAULT_SIZE", RingDefaultSize},
		{"SMITH_RING_MIN_SIZE", RingMinSize},
		{"SMITH_RING_MAX_SIZE", RingMaxSize},
		{"SMITH_REC_MAX_LEN", RecMaxLen},
		{"SMITH_MMAP_CONSUMER_PGOFF", MmapConsumerPgoff},
		{"SMITH_MMAP_META_PGOFF", MmapMetaPgoff},
		{"SMITH_MMAP_DATA_PGOFF", MmapDataPgoff},
		{"SMITH_META_COUNTERS_OFFSET", MetaCountersOffset},
		{"SMITH_REC_BUSY", RecBusy},
		{"SMITH_REC_DISCARD", RecDiscard},
		{"SMITH_REC_LEN_MASK", RecLenMask},
		{"SMITH_REC_ALIGN(0)", RecAlign(0)},
		{"SMITH_REC_ALIGN(1)", RecAlign(1)},
		{"SMITH_REC_ALIGN(8)", RecAlign(8)},
		{"SMITH_REC_ALIGN(9)", RecAlign(9)},
		{"SMITH_REC_ALIGN(65535)", RecAlign(65535)},

		{"SMITH_REC_PAD", RecPad},
		{"SMITH_REC_LOST", RecLost},
		{"SMITH_REC_TEST", RecTest},
		{"SMITH_EV_CONNECT", EvConnect},
		{"SMITH_EV_EXECVE", EvExecve},
		{"SMITH_EV_INIT_MODULE", EvInitModule},
		{"SMITH_EV_FINIT_MODULE", EvFinitModule},
		{"SMITH_RF_TRUNCATED", RFTruncated},
		{"SMITH_RF_FAULT", RFFault},
		{"SMITH_RF_EXECVEAT", RFExecveat},
		{"SMITH_RF_COMPAT", RFCompat},
		{"SMITH_RF_NO_RESULT", RFNoResult},
		{"SMITH_RF_RESTART", RFRestart},
		{"SMITH_RF_FASTOPEN", RFFastOpen},
		{"SMITH_FF_TRUNCATED", FFTruncated},
		{"SMITH_FF_FAULT", FFFault},
		{"SMITH_F_EXE", FExe},
		{"SMITH_F_NODENAME", FNodename},
		{"SMITH_F_FILENAME", FFilename},
		{"SMITH_F_ARGV", FArgv},
		{"SMITH_F_CWD", FCwd},
		{"SMITH_F_STDIN", FStdin},
		{"SMITH_F_STDOUT", FStdout},
		{"SMITH_F_TTY", FTTY},
		{"SMITH_F_CONNECT", FConnect},
		{"SMITH_F_MOD_NAME", FModName},
		{"SMITH_F_MOD_PATH", FModPath},
		{"SMITH_F_MOD_PARAMS", FModParams},
		{"SMITH_F_EXE_ID", FExeID},
		{"SMITH_TRANSPORT_NETLINK", TransportNetlink},
		{"SMITH_TRANSPORT_SHM", TransportSHM},
		{"SMITH_NETLINK_PROTO", NetlinkProto},
		{"SMITH_NLMSG_RECORD", NlmsgRecord},
		{"SMITH_NLMSG_HELLO", NlmsgHello},
		{"SMITH_IOC_MAGIC", IocMagic},
		{"SMITH_HOOK_EXECVE", HookExecve},
		{"SMITH_HOOK_EXECVEAT", HookExecveat},
		{"SMITH_HOOK_CONNECT", HookConnect},
		{"SMITH_HOOK_INIT_MODULE", HookInitModule},
		{"SMITH_HOOK_FINIT_MODULE", HookFinitModule},
		{"SMITH_HOOK_COUNT", HookCount},
		{"SMITH_IOC_GET_INFO", IocGetInfo},
		{"SMITH_IOC_GET_STATS", IocGetStats},
		{"SMITH_IOC_EMIT_TEST", IocEmitTest},
		{"SMITH_IOC_GET_LATENCY", IocGetLatency},
		{"SMITH_IOC_RESET_LATENCY", IocResetLatency},

		{"sizeof(struct smith_ring_consumer)", SizeofRingConsumer},
		offsetof("smith_ring_consumer", "consumer_pos", unsafe.Offsetof(cons.ConsumerPos)),
		offsetof("smith_ring_consumer", "read_pos", unsafe.Offsetof(cons.ReadPos)),
		offsetof("smith_ring_consumer", "wakeup_bytes", unsafe.Offsetof(cons.WakeupBytes)),

		sizeof("smith_ring_meta", unsafe.Sizeof(meta)),
		offsetof("smith_ring_meta", "magic", unsafe.Offsetof(meta.Magic)),
		offsetof("smith_ring_meta", "abi_major", unsafe.Offsetof(meta.ABIMajor)),
		offsetof("smith_ring_meta", "abi_minor", unsafe.Offsetof(meta.ABIMinor)),
		offsetof("smith_ring_meta", "page_size", unsafe.Offsetof(meta.PageSize)),
		offsetof("smith_ring_meta", "max_record", unsafe.Offsetof(meta.MaxRecord)),
		offsetof("smith_ring_meta", "data_size", unsafe.Offsetof(meta.DataSize)),
		offsetof("smith_ring_meta", "data_offset", unsafe.Offsetof(meta.DataOffset)),
		offsetof("smith_ring_meta", "producer_pos", unsafe.Offsetof(meta.ProducerPos)),
		offsetof("smith_ring_meta", "written", unsafe.Offsetof(meta.Written)),
		offsetof("smith_ring_meta", "dropped_full", unsafe.Offsetof(meta.DroppedFull)),
		offsetof("smith_ring_meta", "dropped_too_large", unsafe.Offsetof(meta.DroppedTooLarge)),
		offsetof("smith_ring_meta", "dropped_fault", unsafe.Offsetof(meta.DroppedFault)),
		offsetof("smith_ring_meta", "truncated", unsafe.Offsetof(meta.Truncated)),
		offsetof("smith_ring_meta", "hook_missed", unsafe.Offsetof(meta.HookMissed)),
		offsetof("smith_ring_meta", "lost_records", unsafe.Offsetof(meta.LostRecords)),
		offsetof("smith_ring_meta", "discarded", unsafe.Offsetof(meta.Discarded)),

		sizeof("smith_rec_hdr", unsafe.Sizeof(hdr)),
		offsetof("smith_rec_hdr", "len", unsafe.Offsetof(hdr.Len)),
		offsetof("smith_rec_hdr", "type", unsafe.Offsetof(hdr.Type)),
		offsetof("smith_rec_hdr", "flags", unsafe.Offsetof(hdr.Flags)),

		sizeof("smith_lost", unsafe.Sizeof(lost)),
		offsetof("smith_lost", "hdr", unsafe.Offsetof(lost.Hdr)),
		offsetof("smith_lost", "count", unsafe.Offsetof(lost.Count)),

		sizeof("smith_test_rec", unsafe.Sizeof(tr)),
		offsetof("smith_test_rec", "hdr", unsafe.Offsetof(tr.Hdr)),
		offsetof("smith_test_rec", "producer", unsafe.Offsetof(tr.Producer)),
		offsetof("smith_test_rec", "seq", unsafe.Offsetof(tr.Seq)),

		sizeof("smith_event", unsafe.Sizeof(ev)),
		offsetof("smith_event", "hdr", unsafe.Offsetof(ev.Hdr)),
		offsetof("smith_event", "time_ns", unsafe.Offsetof(ev.TimeNs)),
		offsetof("smith_event", "result", unsafe.Offsetof(ev.Result)),
		offsetof("smith_event", "pid", unsafe.Offsetof(ev.PID)),
		offsetof("smith_event", "tgid", unsafe.Offsetof(ev.TGID)),
		offsetof("smith_event", "ppid", unsafe.Offsetof(ev.PPID)),
		offsetof("smith_event", "pgid", unsafe.Offsetof(ev.PGID)),
		offsetof("smith_event", "sid", unsafe.Offsetof(ev.SID)),
		offsetof("smith_event", "uid", unsafe.Offsetof(ev.UID)),
		offsetof("smith_event", "euid", unsafe.Offsetof(ev.EUID)),
		offsetof("smith_event", "gid", unsafe.Offsetof(ev.GID)),
		offsetof("smith_event", "pid_ns", unsafe.Offsetof(ev.PIDNs)),
		offsetof("smith_event", "mnt_ns", unsafe.Offsetof(ev.MntNs)),
		offsetof("smith_event", "cgroup_id", unsafe.Offsetof(ev.CgroupID)),
		offsetof("smith_event", "comm", unsafe.Offsetof(ev.Comm)),
		offsetof("smith_event", "nfields", unsafe.Offsetof(ev.NFields)),
		offsetof("smith_event", "cpu", unsafe.Offsetof(ev.CPU)),

		sizeof("smith_field", unsafe.Sizeof(fld)),
		offsetof("smith_field", "id", unsafe.Offsetof(fld.ID)),
		offsetof("smith_field", "flags", unsafe.Offsetof(fld.Flags)),
		offsetof("smith_field", "len", unsafe.Offsetof(fld.Len)),

		sizeof("smith_connect_info", unsafe.Sizeof(ci)),
		offsetof("smith_connect_info", "family", unsafe.Offsetof(ci.Family)),
		offsetof("smith_connect_info", "protocol", unsafe.Offsetof(ci.Protocol)),
		offsetof("smith_connect_info", "fd", unsafe.Offsetof(ci.FD)),
		offsetof("smith_connect_info", "remote_addr", unsafe.Offsetof(ci.RemoteAddr)),
		offsetof("smith_connect_info", "local_addr", unsafe.Offsetof(ci.LocalAddr)),
		offsetof("smith_connect_info", "remote_port", unsafe.Offsetof(ci.RemotePort)),
		offsetof("smith_connect_info", "local_port", unsafe.Offsetof(ci.LocalPort)),

		sizeof("smith_exe_id", unsafe.Sizeof(xid)),
		offsetof("smith_exe_id", "ino", unsafe.Offsetof(xid.Ino)),
		offsetof("smith_exe_id", "size", unsafe.Offsetof(xid.Size)),
		offsetof("smith_exe_id", "mtime_sec", unsafe.Offsetof(xid.MtimeSec)),
		offsetof("smith_exe_id", "ctime_sec", unsafe.Offsetof(xid.CtimeSec)),
		offsetof("smith_exe_id", "mtime_nsec", unsafe.Offsetof(xid.MtimeNsec)),
		offsetof("smith_exe_id", "ctime_nsec", unsafe.Offsetof(xid.CtimeNsec)),
		offsetof("smith_exe_id", "dev", unsafe.Offsetof(xid.Dev)),

		sizeof("smith_info", unsafe.Sizeof(info)),
		offsetof("smith_info", "abi_major", unsafe.Offsetof(info.ABIMajor)),
		offsetof("smith_info", "abi_minor", unsafe.Offsetof(info.ABIMinor)),
		offsetof("smith_info", "transport", unsafe.Offsetof(info.Transport)),
		offsetof("smith_info", "data_size", unsafe.Offsetof(info.DataSize)),
		offsetof("smith_info", "page_size", unsafe.Offsetof(info.PageSize)),
		offsetof("smith_info", "max_record", unsafe.Offsetof(info.MaxRecord)),
		offsetof("smith_info", "argv_cap", unsafe.Offsetof(info.ArgvCap)),
		offsetof("smith_info", "hooks_attached", unsafe.Offsetof(info.HooksAttached)),
		offsetof("smith_info", "hooks_failed", unsafe.Offsetof(info.HooksFailed)),
		offsetof("smith_info", "version", unsafe.Offsetof(info.Version)),

		sizeof("smith_hook_stats", unsafe.Sizeof(hs)),
		offsetof("smith_hook_stats", "events", unsafe.Offsetof(hs.Events)),
		offsetof("smith_hook_stats", "missed", unsafe.Offsetof(hs.Missed)),
		offsetof("smith_hook_stats", "faults", unsafe.Offsetof(hs.Faults)),
		offsetof("smith_hook_stats", "truncated", unsafe.Offsetof(hs.Truncated)),

		sizeof("smith_stats", unsafe.Sizeof(st)),
		offsetof("smith_stats", "written", unsafe.Offsetof(st.Written)),
		offsetof("smith_stats", "dropped_full", unsafe.Offsetof(st.DroppedFull)),
		offsetof("smith_stats", "dropped_too_large", unsafe.Offsetof(st.DroppedTooLarge)),
		offsetof("smith_stats", "dropped_fault", unsafe.Offsetof(st.DroppedFault)),
		offsetof("smith_stats", "truncated", unsafe.Offsetof(st.Truncated)),
		offsetof("smith_stats", "hook_missed", unsafe.Offsetof(st.HookMissed)),
		offsetof("smith_stats", "lost_records", unsafe.Offsetof(st.LostRecords)),
		offsetof("smith_stats", "discarded", unsafe.Offsetof(st.Discarded)),
		offsetof("smith_stats", "netlink_sent", unsafe.Offsetof(st.NetlinkSent)),
		offsetof("smith_stats", "netlink_failed", unsafe.Offsetof(st.NetlinkFailed)),
		offsetof("smith_stats", "producer_pos", unsafe.Offsetof(st.ProducerPos)),
		offsetof("smith_stats", "consumer_pos", unsafe.Offsetof(st.ConsumerPos)),
		offsetof("smith_stats", "hooks", unsafe.Offsetof(st.Hooks)),

		sizeof("smith_emit_test", unsafe.Sizeof(et)),
		offsetof("smith_emit_test", "count", unsafe.Offsetof(et.Count)),
		offsetof("smith_emit_test", "len", unsafe.Offsetof(et.Len)),
		offsetof("smith_emit_test", "producer", unsafe.Offsetof(et.Producer)),
		offsetof("smith_emit_test", "first_seq", unsafe.Offsetof(et.FirstSeq)),

		sizeof("smith_latency", unsafe.Sizeof(lat)),
		offsetof("smith_latency", "hook", unsafe.Offsetof(lat.Hook)),
		offsetof("smith_latency", "count", unsafe.Offsetof(lat.Count)),
		offsetof("smith_latency", "median_ns", unsafe.Offsetof(lat.MedianNs)),
		offsetof("smith_latency", "p95_ns", unsafe.Offsetof(lat.P95Ns)),
		offsetof("smith_latency", "p99_ns", unsafe.Offsetof(lat.P99Ns)),
		offsetof("smith_latency", "max_ns", unsafe.Offsetof(lat.MaxNs)),
	}
}

// TestABIMatchesHeader compiles a C program that prints every expression
// of abiChecks against kernel/smith_abi.h, and compares with the Go values.
func TestABIMatchesHeader(t *testing.T) {
	checks := abiChecks()
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include \"smith_abi.h\"\nint main(void)\n{\n")
	for _, c := range checks {
		if _, ok := c.val.(string); ok {
			fmt.Fprintf(&src, "\tprintf(\"%%s\\n\", %s);\n", c.c)
		} else {
			fmt.Fprintf(&src, "\tprintf(\"%%llu\\n\", (unsigned long long)(%s));\n", c.c)
		}
	}
	src.WriteString("\treturn 0;\n}\n")

	out := runC(t, "abi", src.String())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(checks) {
		t.Fatalf("C printer wrote %d lines, want %d", len(lines), len(checks))
	}
	for i, c := range checks {
		want := lines[i]
		got := fmt.Sprint(c.val)
		if got != want {
			t.Errorf("%s: C says %s, Go says %s", c.c, want, got)
		}
	}
}

var (
	reDefine = regexp.MustCompile(`^#define\s+(SMITH_\w+)(\()?`)
	reStruct = regexp.MustCompile(`^struct\s+(smith_\w+)\s*\{`)
	reMember = regexp.MustCompile(`^\s*(?:struct\s+)?\w+\s+(\w+)(\[[^\]]*\])?;`)
	reEnum   = regexp.MustCompile(`^\s*(SMITH_\w+)\s*=`)
)

// TestABICoversHeader parses smith_abi.h and fails when the header defines
// a macro, enumerator, struct or member that abiChecks does not verify, so
// an addition to the header cannot slip past the Go mirror.
func TestABICoversHeader(t *testing.T) {
	checked := map[string]bool{}
	for _, c := range abiChecks() {
		key := c.c
		if i := strings.Index(key, "("); i > 0 && strings.HasPrefix(key, "SMITH_") {
			key = key[:i] + "()"
		}
		checked[key] = true
	}
	f, err := os.Open(abiHeader)
	if err != nil {
		t.Fatalf("open ABI header: %v", err)
	}
	defer f.Close()

	var want []string
	inStruct := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if inStruct != "" {
			if strings.HasPrefix(line, "};") {
				inStruct = ""
				continue
			}
			if m := reMember.FindStringSubmatch(line); m != nil && !strings.HasPrefix(m[1], "_") {
				want = append(want, "offsetof(struct "+inStruct+", "+m[1]+")")
			}
			continue
		}
		if m := reStruct.FindStringSubmatch(line); m != nil {
			inStruct = m[1]
			want = append(want, "sizeof(struct "+m[1]+")")
			continue
		}
		if m := reDefine.FindStringSubmatch(line); m != nil {
			if m[2] != "" {
				want = append(want, m[1]+"()")
			} else {
				want = append(want, m[1])
			}
			continue
		}
		if m := reEnum.FindStringSubmatch(line); m != nil {
			want = append(want, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read ABI header: %v", err)
	}
	if len(want) < 100 {
		t.Fatalf("parsed only %d definitions from %s: parser out of step with the header", len(want), abiHeader)
	}
	var missing []string
	for _, w := range want {
		if !checked[w] {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("smith_abi.h defines %d things shm/abi.go does not mirror or abi_test.go does not check:\n  %s",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// runC compiles src (with kernel/ on the include path) into a temporary
// directory, runs it and returns its standard output. gcc is required:
// without it the ABI cannot be checked, which is a failure, not a skip.
func runC(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	cfile := filepath.Join(dir, name+".c")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	gccOut, err := exec.Command(gccPath(t), "-O0", "-Wall", "-Werror", "-I../kernel", "-o", bin, cfile).CombinedOutput()
	if err != nil {
		t.Fatalf("compile %s: %v\n%s", name, err, gccOut)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return string(out)
}

func gccPath(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	p, err := exec.LookPath(cc)
	if err != nil {
		t.Fatalf("the ABI and cross-language tests need a C compiler (%s): %v", cc, err)
	}
	return p
}
