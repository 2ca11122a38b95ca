// SPDX-License-Identifier: GPL-2.0

//go:build vmtest

// Package int80 makes 32-bit system calls (int $0x80) from a 64-bit
// process, the way a program steps around hooks on the 64-bit entry
// points.  Pointers passed must lie below 4 GiB (see Low).
package int80

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The i386 system call numbers used by the tests.
const (
	SysSocketcall = 102
	SysConnect    = 362
	SysExecve     = 11
	SysInitModule = 128
	// SysFinitModule is finit_module on i386.
	SysFinitModule = 350
	// SocketcallConnect is socketcall's SYS_CONNECT.
	SocketcallConnect = 3
)

// Syscall makes i386 system call nr with up to three arguments (ebx, ecx,
// edx) and returns its result as errno.
func Syscall(nr uintptr, a1, a2, a3 uint32) (uint32, syscall.Errno) {
	r := rawInt80(nr, uintptr(a1), uintptr(a2), uintptr(a3))
	if int32(r) < 0 && int32(r) > -4096 {
		return 0, syscall.Errno(-int32(r))
	}
	return uint32(r), 0
}

// Low is memory below 4 GiB (MAP_32BIT), where a 32-bit call can point.
type Low struct {
	b []byte
}

// Put copies v to offset off and returns its 32-bit address.
func (l *Low) Put(off int, v []byte) uint32 {
	copy(l.b[off:], v)
	return l.Addr(off)
}

// Addr is the 32-bit address of offset off.
func (l *Low) Addr(off int) uint32 {
	return uint32(uintptr(unsafe.Pointer(&l.b[off])))
}

// Close unmaps the page.
func (l *Low) Close() error { return unix.Munmap(l.b) }
