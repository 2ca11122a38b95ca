// SPDX-License-Identifier: GPL-2.0

//go:build vmtest && amd64

package int80

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Supported: x86_64 kernels have the i386 entry (CONFIG_IA32_EMULATION).
const Supported = true

func rawInt80(nr, a1, a2, a3 uintptr) uintptr

// NewLow maps one page below 4 GiB.
func NewLow() (*Low, error) {
	b, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		return nil, fmt.Errorf("mmap MAP_32BIT: %w", err)
	}
	return &Low{b: b}, nil
}
