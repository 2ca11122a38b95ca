// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"context"
	"sync"
	"time"

	"smith/agent/config"
	"smith/agent/encode"
	"smith/internal/tick"
)

// OptionsFrom is the enricher's configuration from the [enrich] table.
func OptionsFrom(c config.Enrich) Options {
	return Options{
		ProcDir: c.ProcDir, PasswdFile: c.PasswdFile, DockerDir: c.DockerDir,
		KubeletDir: c.KubeletDir, CacheSize: c.CacheSize,
		Usernames: c.Usernames, Containers: c.Containers,
		ContainerdDir: c.ContainerdDir, CrioDirs: c.CrioDirs,
		Ancestry: c.Ancestry, ProcessTableSize: c.ProcessTableSize,
		Hash: HashOptions{Enabled: c.ExeHash, MaxSize: int64(c.ExeHashMaxSize),
			Rate: int64(c.ExeHashRate), Wait: c.ExeHashWait.D(), CacheSize: c.CacheSize},
	}
}

// Host is the host's identity (HostIdentity), kept current by Watch.
type Host struct {
	override string
	mu       sync.Mutex
	h        encode.Host
}

// NewHost returns the host's identity now (name override when not "").
func NewHost(override string) (*Host, error) {
	h, err := HostIdentity(override)
	if err != nil {
		return nil, err
	}
	return &Host{override: override, h: h}, nil
}

// Get returns the current identity; safe from any goroutine.
func (t *Host) Get() encode.Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h
}

// Watch reads the identity again every interval until ctx is done and
// hands each one to changed (a failed read keeps the last one).
func (t *Host) Watch(ctx context.Context, every time.Duration, changed func(encode.Host)) {
	tick.Every(ctx, every, func() {
		h, err := HostIdentity(t.override)
		if err != nil {
			return
		}
		t.mu.Lock()
		t.h = h
		t.mu.Unlock()
		changed(h) // events carry the new name and addresses too
	})
}
