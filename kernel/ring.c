// SPDX-License-Identifier: GPL-2.0
/*
 * ring.c - the producer side of the shared-memory ring (see smith_abi.h for
 * the layout, docs/ABI.md for every byte).  The same source is built into
 * the module and, with ring_user.h, into user-space test programs, so the
 * cross-language stress test exercises the code the kernel runs.
 *
 * Positions are 64-bit byte counts that never wrap; a position's place in
 * the data area is pos & mask.  The reader owns consumer_pos (the only
 * page it may write); producers own producer_pos.  The region
 * [consumer_pos, producer_pos) holds records the reader has not consumed,
 * and producers write only above producer_pos, below consumer_pos + size.
 *
 * A record never straddles the end of the data area: when it would, the
 * producer first covers the tail with a pad record (type SMITH_REC_PAD,
 * SMITH_REC_DISCARD set), so every record is one contiguous slice without
 * mapping the data pages twice.  After drops, a "lost N" record goes in
 * front of the next record that fits, in the same reservation.
 *
 * Producer (any context a kprobe runs in)    Reader (user space, shm/)
 *
 *   raw_spin_lock_irqsave
 *   c = smp_load_acquire(consumer_pos)  A    reads records, then
 *   [pad] [lost] hdr.len = len | BUSY        smp_store_release(consumer_pos) A'
 *   smp_store_release(producer_pos)     B
 *   raw_spin_unlock_irqrestore               p = smp_load_acquire(producer_pos) B'
 *   copy the payload, no lock held           w = smp_load_acquire(hdr.len)  C'
 *   smp_store_release(hdr.len, len)     C    if (w & BUSY) stop; else read
 *   smp_mb()                            D    store consumer_pos; smp_mb     D'
 *   c = READ_ONCE(consumer_pos)              (has_data(), poll) load producer_pos
 *   wake if c has reached the record
 *
 *   A <-> A': the reader is done with bytes before a producer reuses them.
 *   B <-> B': a header below producer_pos is written (BUSY if uncommitted).
 *   C <-> C': a record seen without BUSY has all its bytes in place.
 *   D <-> D': no lost wake-up.  Either the producer sees the consumer
 *             position the reader stored before it went to sleep, or the
 *             reader (smith_ring_has_data() in poll) sees the new
 *             producer_pos and does not sleep.
 *
 * The lock covers only the position update and the few header words
 * written with it; payload copies run in parallel.  It is raw because
 * producers run with preemption disabled, also on PREEMPT_RT, and irqsave
 * because a hook may fire in interrupt context on the same CPU.  One ring
 * for all CPUs rather than one per CPU: held this briefly the lock is
 * rarely contended (docs/BENCHMARKS.md, Ring), and one ring gives the
 * reader a single stream in order and the whole size to any busy CPU.
 *
 * Full ring: the newest record is dropped and counted, never blocking and
 * never overwriting what the reader has not consumed.
 */
#ifdef __KERNEL__
#include <linux/compiler.h>
#include <linux/string.h>
#include <asm/barrier.h>
#endif

#include "ring.h"

/* The counters are __u64 in the meta page; producers add atomically. */
static inline void smith_ring_count(u64 *counter)
{
	atomic64_inc((atomic64_t *)counter);
}

static inline u64 smith_ring_size(const struct smith_ring *r)
{
	return r->mask + 1;
}

static inline struct smith_rec_hdr *smith_ring_hdr(const struct smith_ring *r,
						   u64 pos)
{
	return (struct smith_rec_hdr *)(void *)(r->data + (pos & r->mask));
}

void smith_ring_init(struct smith_ring *r, struct smith_ring_consumer *cons,
		     struct smith_ring_meta *meta, void *data, u64 data_size,
		     u32 page_size, u64 data_offset)
{
	r->cons = cons;
	r->meta = meta;
	r->data = data;
	r->mask = data_size - 1;
	r->max_record = data_size / 4 < SMITH_REC_MAX_LEN ?
			(u32)(data_size / 4) : SMITH_REC_MAX_LEN;
	r->lost_pending = 0;
	raw_spin_lock_init(&r->lock);

	memset(meta, 0, sizeof(*meta));
	meta->magic = SMITH_RING_MAGIC;
	meta->abi_major = SMITH_ABI_MAJOR;
	meta->abi_minor = SMITH_ABI_MINOR;
	meta->page_size = page_size;
	meta->max_record = r->max_record;
	meta->data_size = data_size;
	meta->data_offset = data_offset;
	WRITE_ONCE(cons->consumer_pos, 0);
}

/*
 * Where a record of size bytes goes at or after pos: pos itself, or the
 * start of the data area when it would straddle the end.
 */
static u64 smith_ring_place(const struct smith_ring *r, u64 pos, u32 size)
{
	u64 off = pos & r->mask;

	if (off + size > smith_ring_size(r))
		return pos + smith_ring_size(r) - off;
	return pos;
}

/* A committed header; visible to the reader through B. */
static void smith_ring_put_hdr(const struct smith_ring *r, u64 pos, u32 len,
			       u16 type)
{
	struct smith_rec_hdr *h = smith_ring_hdr(r, pos);

	h->type = type;
	h->flags = 0;
	WRITE_ONCE(h->len, len);
}

void smith_ring_count_drops(struct smith_ring *r, u64 *counter, u64 n)
{
	unsigned long irqflags;

	atomic64_add(n, (atomic64_t *)counter);
	raw_spin_lock_irqsave(&r->lock, irqflags);
	r->lost_pending += n;
	raw_spin_unlock_irqrestore(&r->lock, irqflags);
}

void smith_ring_count_drop(struct smith_ring *r, u64 *counter)
{
	smith_ring_count_drops(r, counter, 1);
}

struct smith_rec_hdr *smith_ring_reserve(struct smith_ring *r, u32 len,
					 u16 type, u16 flags)
{
	const u32 lost_size = sizeof(struct smith_lost);
	u32 size = SMITH_REC_ALIGN(len);
	struct smith_rec_hdr *hdr;
	unsigned long irqflags;
	u64 cons, prod, pos, lost_at = 0, rec_at, end;

	if (unlikely(len < sizeof(*hdr) || len > r->max_record)) {
		smith_ring_count_drop(r, &r->meta->dropped_too_large);
		return NULL;
	}

	raw_spin_lock_irqsave(&r->lock, irqflags);
	/* A: pairs with the reader's store-release of consumer_pos. */
	cons = smp_load_acquire(&r->cons->consumer_pos);
	/* Written only under the lock: a plain read is exact. */
	prod = r->meta->producer_pos;

	pos = prod;
	if (r->lost_pending) {
		lost_at = smith_ring_place(r, pos, lost_size);
		pos = lost_at + lost_size;
	}
	rec_at = smith_ring_place(r, pos, size);
	end = rec_at + size;

	/*
	 * consumer_pos is user memory: a value behind by more than the ring,
	 * or ahead of producer_pos, wraps to a huge distance and reads as
	 * full.  We drop rather than trust it; all writes stay masked.
	 */
	if (unlikely(prod - cons > smith_ring_size(r) ||
		     end - cons > smith_ring_size(r))) {
		r->lost_pending++;
		raw_spin_unlock_irqrestore(&r->lock, irqflags);
		smith_ring_count(&r->meta->dropped_full);
		return NULL;
	}

	if (r->lost_pending) {
		struct smith_lost *lost;

		if (lost_at != prod)
			smith_ring_put_hdr(r, prod, (u32)(lost_at - prod) |
					   SMITH_REC_DISCARD, SMITH_REC_PAD);
		lost = (struct smith_lost *)(void *)smith_ring_hdr(r, lost_at);
		lost->count = r->lost_pending;
		smith_ring_put_hdr(r, lost_at, lost_size, SMITH_REC_LOST);
		r->lost_pending = 0;
		smith_ring_count(&r->meta->lost_records);
	}
	if (rec_at != pos)
		smith_ring_put_hdr(r, pos, (u32)(rec_at - pos) |
				   SMITH_REC_DISCARD, SMITH_REC_PAD);

	hdr = smith_ring_hdr(r, rec_at);
	hdr->type = type;
	hdr->flags = flags;
	WRITE_ONCE(hdr->len, len | SMITH_REC_BUSY);

	/* B: pairs with the reader's load-acquire of producer_pos. */
	smp_store_release(&r->meta->producer_pos, end);
	raw_spin_unlock_irqrestore(&r->lock, irqflags);
	return hdr;
}

/*
 * Whether the reader had consumed everything in front of rec: its
 * position is rec's, or only pad and lost records lie between (the ones
 * this reservation wrote; a reader asleep since before it is parked at
 * their start).  At most a pad, a lost record and a pad precede a record.
 * consumer_pos is user memory: it is masked and 8-aligned, and the walk is
 * bounded, so a bad value costs at most a spurious wake-up.
 */
static bool smith_ring_reader_caught_up(const struct smith_ring *r,
					const struct smith_rec_hdr *rec)
{
	u64 off = (const u8 *)rec - r->data;
	u64 c;
	int i;

	/* D: pairs with the full barrier in smith_ring_has_data(). */
	smp_mb();
	c = READ_ONCE(r->cons->consumer_pos) & r->mask & ~7ull;
	for (i = 0; i < 4; i++) {
		const struct smith_rec_hdr *h;
		u32 len;
		u16 type;

		if (c == off)
			return true;
		h = smith_ring_hdr(r, c);
		len = READ_ONCE(h->len);
		type = READ_ONCE(h->type);
		if ((len & SMITH_REC_BUSY) ||
		    (len & SMITH_REC_LEN_MASK) < sizeof(*h) ||
		    (type != SMITH_REC_PAD && type != SMITH_REC_LOST))
			return false;
		c = (c + SMITH_REC_ALIGN(len & SMITH_REC_LEN_MASK)) & r->mask;
	}
	return false;
}

static bool smith_ring_publish(struct smith_ring *r, struct smith_rec_hdr *rec,
			       u32 set, u64 *counter)
{
	u32 len = READ_ONCE(rec->len) & ~SMITH_REC_BUSY;

	/* C: pairs with the reader's load-acquire of the header. */
	smp_store_release(&rec->len, len | set);
	smith_ring_count(counter);
	return smith_ring_reader_caught_up(r, rec);
}

bool smith_ring_commit(struct smith_ring *r, struct smith_rec_hdr *rec)
{
	return smith_ring_publish(r, rec, 0, &r->meta->written);
}

bool smith_ring_discard(struct smith_ring *r, struct smith_rec_hdr *rec)
{
	return smith_ring_publish(r, rec, SMITH_REC_DISCARD,
				  &r->meta->discarded);
}

bool smith_ring_write(struct smith_ring *r, const void *rec, u32 len,
		      bool *wakeup)
{
	const struct smith_rec_hdr *src = rec;
	struct smith_rec_hdr *dst;
	bool wake;

	if (unlikely(len < sizeof(*src))) {
		smith_ring_count_drop(r, &r->meta->dropped_too_large);
		return false;
	}
	dst = smith_ring_reserve(r, len, src->type, src->flags);
	if (!dst)
		return false;
	memcpy(dst + 1, src + 1, len - sizeof(*src));
	wake = smith_ring_commit(r, dst);
	if (wakeup)
		*wakeup = wake;
	return true;
}

bool smith_ring_has_data(const struct smith_ring *r)
{
	/*
	 * D': orders the reader's store of consumer_pos, made before it
	 * polled, against the load of producer_pos; pairs with D.
	 */
	smp_mb();
	return smp_load_acquire(&r->meta->producer_pos) !=
	       READ_ONCE(r->cons->consumer_pos);
}
