package filter

import (
	"testing"

	"smith/agent/decode"
	"smith/agent/metrics"
)

func exec(tgid, ppid uint32, exe, argv string) *decode.Event {
	ev := &decode.Event{Type: decode.TypeExecve, Tgid: tgid, Pid: tgid, Ppid: ppid}
	ev.Fields[decode.FieldExe] = decode.Field{Present: true, Value: []byte(exe)}
	ev.Fields[decode.FieldArgv] = decode.Field{Present: true, Value: []byte(argv)}
	return ev
}

func TestFilter(t *testing.T) {
	f, err := New(100, []string{"/usr/sbin/cron", "/opt/monitor/*"}, []string{`^sleep [0-9]+$`})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ev     *decode.Event
		skip   bool
		reason metrics.Filter
	}{
		{"agent itself", exec(100, 1, "/usr/bin/smith-agent", "smith-agent\x00"), true, metrics.FilterSelf},
		{"agent's child", exec(200, 100, "/usr/bin/dpkg-query", "dpkg-query\x00-W\x00"), true, metrics.FilterSelf},
		{"exact exe", exec(300, 1, "/usr/sbin/cron", "cron\x00-f\x00"), true, metrics.FilterExe},
		{"glob exe", exec(301, 1, "/opt/monitor/probe", "probe\x00"), true, metrics.FilterExe},
		{"glob does not cross /", exec(302, 1, "/opt/monitor/bin/probe", "probe\x00"), false, 0},
		{"argv regexp", exec(303, 1, "/usr/bin/sleep", "sleep\x0030\x00"), true, metrics.FilterArgv},
		{"argv regexp anchored", exec(304, 1, "/usr/bin/sleep", "sleep\x0030\x00;rm\x00"), false, 0},
		{"other", exec(305, 1, "/bin/sh", "sh\x00-c\x00id\x00"), false, 0},
	} {
		skip, reason, _ := f.Skip(tc.ev, nil)
		if skip != tc.skip || (skip && reason != tc.reason) {
			t.Errorf("%s: Skip = %v %v, want %v %v", tc.name, skip, reason, tc.skip, tc.reason)
		}
	}
	off, _ := New(0, nil, nil)
	if skip, _, _ := off.Skip(exec(100, 1, "/x", ""), nil); skip {
		t.Error("self filter off still skips")
	}
	if _, err := New(0, []string{"["}, nil); err == nil {
		t.Error("bad glob accepted")
	}
	if _, err := New(0, nil, []string{"("}); err == nil {
		t.Error("bad regexp accepted")
	}
}
