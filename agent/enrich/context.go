// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
)

// startContext sets up the process table (one /proc scan) and the
// executable hasher when the options ask for them.
func (e *Enricher) startContext() {
	if e.opt.Ancestry > 0 {
		e.procs = newProcTable(e.opt.ProcDir, max(e.opt.ProcessTableSize, 64))
		e.procs.scan()
		e.anc = make([]encode.Ancestor, 0, e.opt.Ancestry)
	}
	if e.opt.Hash.Enabled {
		e.hasher = newExeHasher(e.opt.Hash)
	}
}

// Close stops the executable hasher's goroutine.
func (e *Enricher) Close() {
	if e.hasher != nil {
		e.hasher.close()
		e.hasher = nil
	}
}

// enrichContext fills the ancestry and the executable hash.  An exec's
// ancestry is looked up before the exec updates the table.  now is the
// event's one clock reading (Enrich).
func (e *Enricher) enrichContext(ev *decode.Event, m *encode.Meta, now time.Time) {
	m.Ancestors, m.ExeHash, m.ExeHashStatus = nil, "", ""
	exec := ev.Type == decode.TypeExecve && ev.Result >= 0
	if e.procs != nil {
		mono := e.procs.since(now)
		e.procs.tickAt(mono)
		e.anc = e.procs.ancestryAt(e.anc[:0], ev, e.opt.Ancestry, mono)
		if len(e.anc) > 0 {
			m.Ancestors = e.anc
		}
		if exec {
			e.procs.execAt(ev, mono)
		}
	}
	if e.hasher != nil && exec {
		e.hasher.lookup(e.opt.ProcDir, ev, m)
	}
}

// runtimeMeta reads the container's name and pod from its runtime: the
// runtime the cgroup path names first, then the others (a containerd
// under docker shows as docker).
func (e *Enricher) runtimeMeta(c *Container) {
	docker := func() bool { return dockerMeta(e.opt.DockerDir, c.ID, c) }
	containerd := func() bool { return e.opt.ContainerdDir != "" && containerdMeta(e.opt.ContainerdDir, c.ID, c) }
	crio := func() bool { return crioMeta(e.opt.CrioDirs, c.ID, c) }
	order := []func() bool{docker, containerd, crio}
	switch c.Runtime {
	case "containerd":
		order = []func() bool{containerd, docker, crio}
	case "cri-o", "podman":
		order = []func() bool{crio, containerd, docker}
	}
	for _, f := range order {
		if f() {
			return
		}
	}
}
