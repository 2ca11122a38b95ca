// SPDX-License-Identifier: GPL-2.0
/*
 * transport.c - where a finished record goes: into the shared-memory ring
 * (send_type=2, default) or into one netlink message (send_type=1).
 *
 * The ring memory is one vmalloc_user() area laid out as smith_abi.h says:
 * consumer page, meta page, data.  It is allocated in both modes, so the
 * drop counters in the meta page exist either way; in netlink mode no
 * record is written into it.
 *
 * Wake-ups: smith_ring_commit() says when the reader is due to be woken
 * (its watermark reached, the ring filling, an urgent record; ring.c), at
 * most once per read position it publishes.  A hook cannot call wake_up() itself (it may run with
 * interrupts off, or on PREEMPT_RT where the wait-queue lock sleeps), so
 * it queues an irq_work, which is safe from any context, and the irq_work
 * wakes the poll() wait queue.
 */
#include <linux/delay.h>
#include <linux/irq_work.h>
#include <linux/jiffies.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>

#include "smith.h"
#include "transport.h"

/* Written under smith_reader_lock, read locklessly by every hook. */
bool smith_recording_on;
DEFINE_PER_CPU(long, smith_hooks_in_flight);

static struct smith_ring smith_ring;
static void *smith_mem;		/* consumer page + meta page + data */
static size_t smith_mem_size;

static DECLARE_WAIT_QUEUE_HEAD(smith_wq);
static struct irq_work smith_wake_work;

/* Serialises reader attach/detach and the final stop. */
static DEFINE_MUTEX(smith_reader_lock);
static bool smith_stopped;	/* under smith_reader_lock */

static void smith_wake_fn(struct irq_work *work)
{
	wake_up_interruptible(&smith_wq);
}

static bool smith_use_netlink(void)
{
	return smith_params.send_type == SMITH_TRANSPORT_NETLINK;
}

int smith_transport_init(u64 data_size)
{
	smith_mem_size = 2 * PAGE_SIZE + data_size;
	/* Zeroed, and marked VM_USERMAP so remap_vmalloc_range() accepts it. */
	smith_mem = vmalloc_user(smith_mem_size);
	if (!smith_mem)
		return -ENOMEM;
	smith_ring_init(&smith_ring, smith_mem, smith_mem + PAGE_SIZE,
			smith_mem + 2 * PAGE_SIZE, data_size, PAGE_SIZE,
			2 * PAGE_SIZE);
	init_irq_work(&smith_wake_work, smith_wake_fn);
	return 0;
}

/*
 * Called after the hooks are gone and the device is unregistered.  With
 * leak (smith_wait_hooks_idle() gave up) the ring stays allocated: a
 * handler might still write into it.
 */
void smith_transport_exit(bool leak)
{
	irq_work_sync(&smith_wake_work);
	if (!leak)
		vfree(smith_mem);
	smith_mem = NULL;
}

struct smith_ring *smith_shm_ring(void)
{
	return &smith_ring;
}

void *smith_shm_mem(void)
{
	return smith_mem;
}

size_t smith_shm_mem_size(void)
{
	return smith_mem_size;
}

bool smith_shm_poll_ready(void)
{
	return smith_ring_poll_ready(&smith_ring);
}

void smith_shm_poll_wait(struct file *file, struct poll_table_struct *pt)
{
	poll_wait(file, &smith_wq, pt);
}

void smith_reader_attach(void)
{
	mutex_lock(&smith_reader_lock);
	if (!smith_stopped)
		WRITE_ONCE(smith_recording_on, true);
	mutex_unlock(&smith_reader_lock);
}

void smith_reader_detach(void)
{
	mutex_lock(&smith_reader_lock);
	if (!smith_record_without_reader)
		WRITE_ONCE(smith_recording_on, false);
	mutex_unlock(&smith_reader_lock);
}

void smith_recording_stop(void)
{
	mutex_lock(&smith_reader_lock);
	smith_stopped = true;
	WRITE_ONCE(smith_recording_on, false);
	mutex_unlock(&smith_reader_lock);
}

static long smith_hooks_in_flight_sum(void)
{
	long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(smith_hooks_in_flight, cpu);
	return sum;
}

/* How long smith_wait_hooks_idle() looks at a count that should be 0. */
#define SMITH_IDLE_WAIT_MS	1000

/*
 * Bounded by construction (transport.h, "Safe unload"): every in-flight
 * section lies inside one handler invocation, with preemption disabled
 * and nothing that sleeps, so once smith_hooks_exit()'s grace periods
 * are over none is running and the sum is 0 at the first look.  A count
 * that stays non-zero can only be an enter/exit imbalance; the wait is
 * bounded for that case, and returns false so that the caller leaks the
 * memory a handler writes rather than free it.
 */
bool smith_wait_hooks_idle(void)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(SMITH_IDLE_WAIT_MS);
	long n;

	while ((n = smith_hooks_in_flight_sum()) != 0) {
		if (time_after(jiffies, deadline)) {
			WARN(1, "smith: %ld hook handlers counted in flight %u ms after every probe was unregistered; leaking the record buffers and the ring\n",
			     n, SMITH_IDLE_WAIT_MS);
			return false;
		}
		msleep(1);
	}
	return true;
}

static void smith_print_rec(const struct smith_rec_hdr *rec)
{
	if (READ_ONCE(smith_params.kernel_print))
		pr_info_ratelimited("record type %u len %u flags 0x%x\n",
				    rec->type, rec->len & SMITH_REC_LEN_MASK,
				    rec->flags);
}

static void smith_wake(bool wakeup)
{
	if (wakeup)
		irq_work_queue(&smith_wake_work);
}

int smith_reserve(struct smith_slot *slot, u32 len, u16 type, u16 flags)
{
	slot->priv = NULL;
	if (smith_use_netlink()) {
		slot->priv = smith_netlink_alloc(len, &slot->rec);
		if (!slot->priv) {
			slot->rec = NULL;
			return -ENOMEM;
		}
		slot->rec->len = len;
		slot->rec->type = type;
		slot->rec->flags = flags;
		return 0;
	}
	slot->rec = smith_ring_reserve(&smith_ring, len, type, flags);
	if (!slot->rec)
		return len > smith_ring.max_record ? -E2BIG : -ENOSPC;
	return 0;
}

int smith_commit(struct smith_slot *slot)
{
	int err = 0;

	smith_print_rec(slot->rec);
	if (slot->priv)
		err = smith_netlink_send(slot->priv);
	else
		smith_wake(smith_ring_commit(&smith_ring, slot->rec));
	slot->rec = NULL;
	slot->priv = NULL;
	return err;
}

void smith_discard(struct smith_slot *slot)
{
	if (slot->priv)
		kfree_skb(slot->priv);
	else
		smith_wake(smith_ring_discard(&smith_ring, slot->rec));
	slot->rec = NULL;
	slot->priv = NULL;
}

int smith_submit(const void *rec, u32 len)
{
	const struct smith_rec_hdr *hdr = rec;
	struct smith_slot slot;
	bool wakeup = false;

	smith_print_rec(hdr);
	if (!smith_use_netlink()) {
		if (!smith_ring_write(&smith_ring, rec, len, &wakeup))
			return len > smith_ring.max_record ? -E2BIG : -ENOSPC;
		smith_wake(wakeup);
		return 0;
	}
	slot.priv = smith_netlink_alloc(len, &slot.rec);
	if (!slot.priv)
		return -ENOMEM;
	memcpy(slot.rec, rec, len);
	slot.rec->len = len;
	return smith_netlink_send(slot.priv);
}

void smith_count_drop_fault(void)
{
	smith_ring_count_drop(&smith_ring, &smith_ring.meta->dropped_fault);
}

void smith_count_missed(u64 n)
{
	smith_ring_count_drops(&smith_ring, &smith_ring.meta->hook_missed, n);
}

void smith_count_truncated(void)
{
	atomic64_inc((atomic64_t *)&smith_ring.meta->truncated);
}

u32 smith_max_record(void)
{
	return smith_use_netlink() ? SMITH_REC_MAX_LEN : smith_ring.max_record;
}

static void smith_fill_test(struct smith_test_rec *t, u32 len, u32 producer,
			    u64 seq)
{
	u8 *payload = (u8 *)(t + 1);
	u32 i, n = len - sizeof(*t);

	t->producer = producer;
	t->_pad = 0;
	t->seq = seq;
	for (i = 0; i < n; i++)
		payload[i] = (seq + i) & 0xff;
}

long smith_emit_test(const struct smith_emit_test *req)
{
	struct smith_slot slot;
	long written = 0;
	u32 i;

	if (req->len < sizeof(struct smith_test_rec) ||
	    req->len > SMITH_REC_MAX_LEN || req->count > SMITH_EMIT_TEST_MAX)
		return -EINVAL;

	for (i = 0; i < req->count; i++) {
		/* Like a hook: not preempted between reserve and commit. */
		preempt_disable();
		if (!smith_reserve(&slot, req->len, SMITH_REC_TEST, 0)) {
			smith_fill_test((struct smith_test_rec *)slot.rec,
					req->len, req->producer,
					req->first_seq + i);
			if (!smith_commit(&slot))
				written++;
		}
		preempt_enable();
		if ((i & 255) == 255) {
			if (fatal_signal_pending(current))
				break;
			cond_resched();
		}
	}
	return written;
}
