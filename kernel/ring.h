/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ring.h - the producer side of the shared-memory ring.
 *
 * ring.c is written once and built twice: into the module (with
 * __KERNEL__) and into user-space test programs (with ring_user.h
 * supplying the same primitives), so the code the cross-language tests
 * exercise is the code the kernel runs.
 *
 * The ring does not own its memory: the caller hands it the consumer page,
 * the meta page and the data area, wherever they live (vmalloc_user pages
 * in the module, a shared file mapping in tests).
 */
#ifndef _SMITH_RING_H
#define _SMITH_RING_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/atomic.h>
typedef raw_spinlock_t smith_ring_lock_t;
#else
#include "ring_user.h"
#endif

#include "smith_abi.h"

struct smith_ring {
	struct smith_ring_consumer *cons;	/* user-writable page */
	struct smith_ring_meta *meta;		/* read-only to user space */
	u8 *data;				/* data_size bytes */
	u64 mask;				/* data_size - 1 */
	u32 max_record;
	/*
	 * Raw: producers run in kprobe context with preemption (and on some
	 * paths interrupts) disabled, including on PREEMPT_RT where a plain
	 * spinlock would sleep.  Held only to move producer_pos.
	 */
	smith_ring_lock_t lock;
	/* Records dropped since the last "lost N" record; under lock. */
	u64 lost_pending;
	/*
	 * The read position the last wake-up was for (ring.c, "ready()");
	 * read and written by committing producers without the lock.
	 */
	u64 woken_rp;
};

/* woken_rp before the first wake-up: no position ever reaches it. */
#define SMITH_RING_NOT_WOKEN	(~0ull)

/*
 * Lay out a ring over the given memory.  data_size must be a power of two
 * between SMITH_RING_MIN_SIZE and SMITH_RING_MAX_SIZE.  The meta page's
 * counters and the positions start at zero.
 */
void smith_ring_init(struct smith_ring *r, struct smith_ring_consumer *cons,
		     struct smith_ring_meta *meta, void *data, u64 data_size,
		     u32 page_size, u64 data_offset);

/*
 * Reserve a record of len bytes (header included) of the given type.
 * Returns the record with its header filled in and SMITH_REC_BUSY set, or
 * NULL when it does not fit or is too large; the drop is counted and
 * reported by a "lost N" record in front of the next one that fits.
 * Never sleeps; safe from any context a kprobe runs in.
 */
struct smith_rec_hdr *smith_ring_reserve(struct smith_ring *r, u32 len,
					 u16 type, u16 flags);

/*
 * Publish a reserved record.  Returns true when the reader must be woken:
 * ready() of smith_abi.h holds and it was not woken for its read position
 * yet (see ring.c).
 */
bool smith_ring_commit(struct smith_ring *r, struct smith_rec_hdr *rec);

/* Give a reserved record back: the reader skips it.  Same return value. */
bool smith_ring_discard(struct smith_ring *r, struct smith_rec_hdr *rec);

/*
 * Reserve, copy and commit in one call; false when dropped (counted).  rec
 * is a whole record of len bytes starting with its struct smith_rec_hdr,
 * whose type and flags are used (its len is not).  *wakeup (may be NULL)
 * is set as smith_ring_commit() returns.
 */
bool smith_ring_write(struct smith_ring *r, const void *rec, u32 len,
		      bool *wakeup);

/*
 * ready() of smith_abi.h, for poll(): a committed record lies at the
 * reader's read position and its watermark (or the fill level, or an
 * urgent record) says to wake.  Starts with a full barrier, so a poll()
 * that finds nothing ready cannot miss the wake-up of a commit racing
 * with it.
 */
bool smith_ring_poll_ready(const struct smith_ring *r);

/*
 * Count a record lost before it reached the ring (e.g. a user fault):
 * counter (a field of r->meta) is incremented atomically, and the next
 * record is preceded by a "lost N" record.
 */
void smith_ring_count_drop(struct smith_ring *r, u64 *counter);

#endif /* _SMITH_RING_H */
