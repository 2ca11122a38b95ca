// Package shm reads (and, for tests and the kernel-free mode, writes) the
// shared-memory ring that the smith kernel module fills with records.
//
// The ring's layout and protocol are defined once, in kernel/smith_abi.h;
// abi.go mirrors every constant and structure of it and abi_test.go fails
// when the two disagree. docs/ABI.md describes the bytes; kernel/ring.c is
// the producer the module runs.
//
// A Ring is the memory of one ring: the consumer page (the only page user
// space writes), the read-only meta page and the data area. It can wrap
// plain byte slices (NewMemRing, InitRing, NewRing), a shared file mapping
// (CreateFileRing, OpenFileRing) or the device /dev/smith (OpenDevice).
//
// A Reader consumes a Ring: Next returns zero-copy views of records that
// stay valid until the next Commit, so a batch of records costs one store
// to the consumer position. Pad and discarded records are skipped; "lost N"
// records are returned like any other record (type RecLost) and summed in
// the Reader's statistics. A corrupt ring (a length, position or alignment
// the protocol cannot produce) yields an error wrapping ErrCorrupt, never a
// panic or a read outside the mapping.
//
// Waiting is done by a Waiter: epoll on the device's descriptor, an eventfd
// the producer signals (for shared file mappings), or a polling interval
// for tests. Reader.Close interrupts a blocked wait from any goroutine.
//
// Reader.SetDeadline bounds a blocked Read or Wait (ErrDeadline), and
// Reader.Wake interrupts one for other work (ErrWoken).
//
// The rest of the module's user-space interface is here too, so that the
// agent, the guest tests and the benchmarks share one client: Control is
// the device's ioctls (Info, Stats, EmitTest, Latency, ResetLatency), and
// Netlink the connection to the netlink transport (send_type=1), which
// returns records as a Reader does.
//
// A Producer implements the same protocol as kernel/ring.c in Go.
package shm
