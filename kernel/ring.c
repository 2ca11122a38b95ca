// SPDX-License-Identifier: GPL-2.0
/*
 * ring.c - the producer side of the shared-memory ring (see smith_abi.h for
 * the layout, docs/ABI.md for every byte).  The same source is built into
 * the module and, with ring_user.h, into user-space test programs, so the
 * cross-language stress test exercises the code the kernel runs.
 *
 * Positions are 64-bit byte counts that never wrap; a position's place in
 * the data area is pos & mask.  The reader owns its page (consumer_pos,
 * read_pos, wakeup_bytes: the only page it may write); producers own
 * producer_pos.  The region
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
 *   smp_mb()                            D    store read_pos, wakeup_bytes;
 *   load consumer_pos, read_pos,               smp_mb                       D'
 *        wakeup_bytes, producer_pos          (poll: smith_ring_poll_ready())
 *   wake if ready() and not yet woken         load producer_pos, hdr at read_pos
 *        for this read_pos                    sleep unless ready()
 *
 *   A <-> A': the reader is done with bytes before a producer reuses them.
 *   B <-> B': a header below producer_pos is written (BUSY if uncommitted).
 *   C <-> C': a record seen without BUSY has all its bytes in place.
 *   D <-> D': no lost wake-up.  Either the producer sees the read position
 *             and watermark the reader stored before it went to sleep, or
 *             the reader (poll) sees the producer's commit and producer_pos
 *             and does not sleep when they make ready() true.
 *
 * ready() (smith_abi.h states it) is the one predicate of both sides: the
 * commit evaluates it to decide on a wake-up, poll() to report readable.
 * Nothing is woken per record: the reader is woken once per read position
 * it publishes, when the watermark is reached, when the ring fills past
 * half its size, or when a "lost N" record lies at its read position.
 * woken_rp remembers the read position the last wake-up was for, so later
 * commits do not queue irq_work again while the reader has not yet gone
 * back to sleep with a new one.  That loses nothing: ready() can only
 * have held at woken_rp with a committed record there, which stays
 * committed, so a reader that looks at woken_rp again finds it ready and
 * does not sleep; a reader that read on publishes a new position.  A
 * record at the read position that is still BUSY keeps ready() false, so
 * its own commit is the one that wakes.
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
	r->woken_rp = SMITH_RING_NOT_WOKEN;
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
	WRITE_ONCE(cons->read_pos, 0);
	WRITE_ONCE(cons->wakeup_bytes, 0);
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

void smith_ring_count_drop(struct smith_ring *r, u64 *counter)
{
	unsigned long irqflags;

	smith_ring_count(counter);
	raw_spin_lock_irqsave(&r->lock, irqflags);
	r->lost_pending++;
	raw_spin_unlock_irqrestore(&r->lock, irqflags);
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

/* The reader's page and producer_pos, loaded once after a full barrier. */
struct smith_ring_view {
	u64 cons, read, wakeup, prod;
};

static void smith_ring_load_view(const struct smith_ring *r,
				 struct smith_ring_view *v)
{
	v->cons = READ_ONCE(r->cons->consumer_pos);
	v->read = READ_ONCE(r->cons->read_pos);
	v->wakeup = READ_ONCE(r->cons->wakeup_bytes);
	v->prod = smp_load_acquire(&r->meta->producer_pos);
	/* A 1.0 reader never writes read_pos; a bad value is not trusted. */
	if (v->read - v->cons > v->prod - v->cons)
		v->read = v->cons;
	if (v->wakeup > smith_ring_size(r) / 2)
		v->wakeup = smith_ring_size(r) / 2;
}

/*
 * ready() of smith_abi.h: a committed record lies at the read position and
 * the watermark, the fill level or an urgent record says to wake for it.
 * Every header read is masked and 8-aligned, so user values in the view
 * cost at most a spurious answer.
 */
static bool smith_ring_ready(const struct smith_ring *r,
			     const struct smith_ring_view *v)
{
	const struct smith_rec_hdr *h;
	u32 len;

	if (v->read == v->prod)
		return false;
	h = smith_ring_hdr(r, v->read & ~7ull);
	/* C': pairs with the commit's store-release of the header. */
	len = smp_load_acquire(&h->len);
	if (len & SMITH_REC_BUSY)
		return false;
	if (!v->wakeup || v->prod - v->read >= v->wakeup ||
	    v->prod - v->cons >= smith_ring_size(r) / 2)
		return true;
	/* Urgent: a "lost N" record at the read position, or after a pad. */
	if (READ_ONCE(h->type) == SMITH_REC_PAD &&
	    (len & SMITH_REC_LEN_MASK) >= sizeof(*h)) {
		h = smith_ring_hdr(r, ((v->read & ~7ull) +
				       SMITH_REC_ALIGN(len & SMITH_REC_LEN_MASK)));
		len = smp_load_acquire(&h->len);
	}
	return !(len & SMITH_REC_BUSY) && READ_ONCE(h->type) == SMITH_REC_LOST;
}

static bool smith_ring_publish(struct smith_ring *r, struct smith_rec_hdr *rec,
			       u32 set, u64 *counter)
{
	u32 len = READ_ONCE(rec->len) & ~SMITH_REC_BUSY;
	struct smith_ring_view v;

	/* C: pairs with the reader's load-acquire of the header. */
	smp_store_release(&rec->len, len | set);
	smith_ring_count(counter);

	/* D: pairs with the reader's full barrier after it stored read_pos. */
	smp_mb();
	smith_ring_load_view(r, &v);
	if (!smith_ring_ready(r, &v))
		return false;
	/*
	 * Producers race here without a lock: two may both wake (irq_work
	 * coalesces them) or one may see the other's woken_rp; either way
	 * the reader is woken for this read position.
	 */
	if (READ_ONCE(r->woken_rp) == v.read)
		return false;
	WRITE_ONCE(r->woken_rp, v.read);
	return true;
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

bool smith_ring_poll_ready(const struct smith_ring *r)
{
	struct smith_ring_view v;

	/*
	 * D': orders the reader's stores of read_pos and wakeup_bytes, made
	 * before it polled, against the loads below; pairs with D.
	 */
	smp_mb();
	smith_ring_load_view(r, &v);
	return smith_ring_ready(r, &v);
}
