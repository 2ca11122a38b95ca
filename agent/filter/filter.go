// Package filter decides which events are not reported: the agent's own
// activity (the seed's behaviour) and allow-listed executables and
// command lines.  Allow-listed means known-good: not reported.
package filter

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"smith/agent/decode"
	"smith/agent/metrics"
)

// Filter is read-only after New and safe for concurrent use.
type Filter struct {
	selfPid  uint32 // 0: report the agent's own activity
	exeExact map[string]struct{}
	exeGlobs []string
	argv     []*regexp.Regexp
}

// New compiles the allow-lists.  selfPid is the agent's process id, 0 to
// report its own activity.
func New(selfPid uint32, exeAllow, argvAllow []string) (*Filter, error) {
	f := &Filter{selfPid: selfPid, exeExact: map[string]struct{}{}}
	for _, p := range exeAllow {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("exe_allow pattern %q: %w", p, err)
		}
		if strings.ContainsAny(p, `*?[\`) {
			f.exeGlobs = append(f.exeGlobs, p)
		} else {
			f.exeExact[p] = struct{}{}
		}
	}
	for _, p := range argvAllow {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("argv_allow pattern %q: %w", p, err)
		}
		f.argv = append(f.argv, re)
	}
	return f, nil
}

// Skip reports whether ev is not to be reported, and why.  buf is scratch
// space for the command line (returned for reuse).
func (f *Filter) Skip(ev *decode.Event, buf []byte) (bool, metrics.Filter, []byte) {
	// The agent itself, and what it starts (package queries for tasks):
	// its children's parent is the agent.
	if f.selfPid != 0 && (ev.Tgid == f.selfPid || ev.Ppid == f.selfPid) {
		return true, metrics.FilterSelf, buf
	}
	if exe := ev.Fields[decode.FieldExe]; exe.Present && (len(f.exeExact) > 0 || len(f.exeGlobs) > 0) {
		// A map lookup with string(bytes) does not allocate.
		if _, ok := f.exeExact[string(exe.Value)]; ok {
			return true, metrics.FilterExe, buf
		}
		for _, g := range f.exeGlobs {
			if ok, _ := filepath.Match(g, string(exe.Value)); ok {
				return true, metrics.FilterExe, buf
			}
		}
	}
	if argv := ev.Fields[decode.FieldArgv]; argv.Present && len(f.argv) > 0 {
		buf = append(buf[:0], argv.Value...)
		if n := len(buf); n > 0 && buf[n-1] == 0 {
			buf = buf[:n-1]
		}
		for i, c := range buf {
			if c == 0 {
				buf[i] = ' '
			}
		}
		for _, re := range f.argv {
			if re.Match(buf) {
				return true, metrics.FilterArgv, buf
			}
		}
	}
	return false, 0, buf
}
