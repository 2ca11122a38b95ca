// SPDX-License-Identifier: GPL-2.0

//go:build vmtest && !amd64

package int80

import (
	"fmt"
	"runtime"
	"syscall"
)

// Supported is false: int $0x80, the 32-bit x86 entry, exists on x86 only.
const Supported = false

func rawInt80(_, _, _, _ uintptr) uintptr { return ^uintptr(syscall.ENOSYS - 1) }

// NewLow fails: there is no 32-bit x86 entry to point at it.
func NewLow() (*Low, error) {
	return nil, fmt.Errorf("no int $0x80 on %s", runtime.GOARCH)
}
