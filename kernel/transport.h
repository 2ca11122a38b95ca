/* SPDX-License-Identifier: GPL-2.0 */
/*
 * transport.h - what the hooks call: the recording check, the in-flight
 * guard, record submission (shm ring or netlink, chosen at load), per-hook
 * counters, latency self-measurement and the parameters hooks read.
 *
 * A hook handler looks like this:
 *
 *	if (!smith_recording())
 *		return 0;
 *	smith_hook_enter();
 *	t0 = smith_latency_start();
 *	... build the record, smith_submit() or smith_reserve()/smith_commit()
 *	smith_hook_count(SMITH_HI_EXECVE, events);
 *	smith_latency_end(SMITH_HI_EXECVE, t0);
 *	smith_hook_exit();
 *
 * Every function here is callable from any context a kprobe, kretprobe or
 * tracepoint handler runs in: none of them sleeps or allocates with more
 * than GFP_ATOMIC.
 *
 * Safe unload, and why its wait is bounded.  Every in-flight section
 * (smith_hook_enter() to smith_hook_exit()) opens and closes within one
 * invocation of one kprobe, kretprobe (entry or return: a section never
 * spans the probed call, which may block) or tracepoint handler, and runs
 * with preemption disabled: the probe frameworks disable it and
 * smith_hook_enter() does again.  Nothing in a section sleeps (no sleeping
 * lock, on PREEMPT_RT neither: the ring lock is raw; allocations are
 * GFP_ATOMIC; user memory is read with nofault helpers; retry loops such
 * as d_path's are bounded), so each one lasts microseconds.  The
 * kretprobes' entry and return handlers hold nothing across the call but
 * their own instance data and slots in static arrays.  Module exit first
 * turns recording off, then smith_hooks_exit() unregisters every probe:
 * unregister_kprobe(), unregister_kretprobe() and
 * tracepoint_synchronize_unregister() end in RCU grace periods, which a
 * preemption-disabled region holds off, so every handler that started
 * before has returned, and unregister_module_notifier() waits for a
 * running notifier.  The in-flight count is therefore 0 when
 * smith_wait_hooks_idle() first reads it; only then are the per-CPU record
 * buffers, the ring, the netlink socket and the counters freed.  A count
 * still non-zero can only be an enter/exit imbalance (a bug): the wait
 * gives up after a second with a WARN and leaks the record buffers and
 * the ring instead of freeing memory a handler might write.
 */
#ifndef _SMITH_TRANSPORT_H
#define _SMITH_TRANSPORT_H

#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/percpu.h>
#include <linux/ktime.h>
#include <linux/preempt.h>

#include "compat.h"
#include "smith_abi.h"

/* Hook index: the bit number of the matching SMITH_HOOK_* flag. */
enum smith_hook_idx {
	SMITH_HI_EXECVE		= 0,
	SMITH_HI_EXECVEAT	= 1,
	SMITH_HI_CONNECT	= 2,
	SMITH_HI_INIT_MODULE	= 3,
	SMITH_HI_FINIT_MODULE	= 4,
};

/*
 * Parameters the hooks read.  Set from module parameters at load and
 * never changed afterwards, except measure_latency (a runtime switch, read
 * with READ_ONCE through smith_latency_start()).
 */
struct smith_params {
	u32 argv_cap;		/* bytes of argv kept per exec */
	u32 send_type;		/* SMITH_TRANSPORT_* */
	bool measure_latency;	/* per-hook latency histograms */
	bool kernel_print;	/* pr_info every record (debug only) */
	bool test_records;	/* SMITH_IOC_EMIT_TEST allowed (tests only) */
};

extern struct smith_params smith_params;

/* Bounds of the argv_cap module parameter. */
#define SMITH_ARGV_CAP_DEFAULT	4096u
#define SMITH_ARGV_CAP_MIN	256u
#define SMITH_ARGV_CAP_MAX	(32u << 10)

/*
 * The cheap check on the hot path: false before the first reader attached
 * (or while none is attached with record_without_reader=0) and during
 * unload.  One load of a read-mostly flag and a predictable branch.  Not a
 * static key on purpose: flipping a key patches kernel text on every open
 * and close, while handlers may be running the patched code.
 */
extern bool smith_recording_on;

static inline bool smith_recording(void)
{
	return READ_ONCE(smith_recording_on);
}

/* In-flight guard; see "Safe unload" above.  Pairs must nest. */
DECLARE_PER_CPU(long, smith_hooks_in_flight);

static inline void smith_hook_enter(void)
{
	preempt_disable();
	this_cpu_inc(smith_hooks_in_flight);
}

static inline void smith_hook_exit(void)
{
	this_cpu_dec(smith_hooks_in_flight);
	preempt_enable();
}

/*
 * Submit one complete record (struct smith_rec_hdr first, hdr.len == len,
 * BUSY clear).  shm: copied into the ring and the reader woken if it may
 * sleep; netlink: sent as one SMITH_NLMSG_RECORD message.  Returns 0 or
 * -errno (-ENOSPC ring full, -E2BIG too large, -ENOTCONN no netlink
 * listener, -ENOMEM); every failure is counted, the caller only counts its
 * own per-hook stats.  Never sleeps.
 */
int smith_submit(const void *rec, u32 len);

/*
 * Zero-copy submission: reserve len bytes (header included), fill the
 * record in place after the header, then commit or discard exactly once.
 * The header comes back filled in (len, type, flags); the builder may OR
 * more SMITH_RF_* bits into hdr->flags before committing.  shm: the space
 * is in the ring itself; netlink: in a GFP_ATOMIC message buffer.
 */
struct smith_slot {
	struct smith_rec_hdr *rec;	/* where to write; NULL if none */
	void *priv;			/* transport's own, do not touch */
};

int smith_reserve(struct smith_slot *slot, u32 len, u16 type, u16 flags);
int smith_commit(struct smith_slot *slot);	/* 0 or -errno, counted */
void smith_discard(struct smith_slot *slot);

/* The shm ring carries the records: they may be built in place there. */
static inline bool smith_send_ring(void)
{
	return smith_params.send_type == SMITH_TRANSPORT_SHM;
}

/* Count a record lost before submission: user memory was unreadable. */
void smith_count_drop_fault(void);

/*
 * Count n calls a hook could not record (meta page hook_missed); the next
 * record in the ring is preceded by a "lost N" record that includes them.
 */
void smith_count_missed(u64 n);

/* Count a record submitted with a field cut (meta page truncated). */
void smith_count_truncated(void);

/* The largest record the transport takes (the ring's max_record). */
u32 smith_max_record(void);

/* Per-hook counters, summed over CPUs by SMITH_IOC_GET_STATS. */
DECLARE_PER_CPU(struct smith_hook_stats[SMITH_HOOK_COUNT], smith_hook_pcpu);

/* smith_hook_count(SMITH_HI_CONNECT, faults); field: events/faults/truncated */
#define smith_hook_count(hook, field) \
	this_cpu_inc(smith_hook_pcpu[(hook)].field)

/* A call the hook saw but could not record (no buffer): counted, lost. */
static inline void smith_hook_miss(unsigned int hook)
{
	smith_hook_count(hook, missed);
	smith_count_missed(1);
}

/* Self-measurement: ns spent in a hook, into a per-CPU histogram. */
void smith_hook_latency_record(unsigned int hook, u64 ns);

/*
 * The clocksource's monotonic time, safe in any context.  Not
 * local_clock(): where the TSC is unstable (some VMs) sched_clock falls
 * back to jiffies and every short hook would measure 0 ns.
 */
static inline u64 smith_latency_start(void)
{
	return READ_ONCE(smith_params.measure_latency) ?
	       ktime_get_mono_fast_ns() : 0;
}

static inline void smith_latency_end(unsigned int hook, u64 start)
{
	if (start)
		smith_hook_latency_record(hook,
					  ktime_get_mono_fast_ns() - start);
}

/*
 * Provided by the hooks (hook_*.c) and called by main.c.
 *
 * smith_hooks_init() registers every probe it can and reports each hook
 * with smith_hook_attached(); it returns an error only when nothing at all
 * could be attached.  smith_hooks_exit() unregisters all of them and
 * returns only when no handler runs any more.  smith_hooks_missed() adds
 * each probe's current nmissed (kretprobe maxactive exhausted, kprobe
 * recursion) into missed[hook].
 */
int smith_hooks_init(void);
void smith_hooks_exit(void);
void smith_hooks_missed(u64 missed[SMITH_HOOK_COUNT]);

/*
 * Move the probes' misses counted since the last call into the meta page
 * and the next "lost N" record (smith_count_missed()).  A load of every
 * probe's count: called by the stats ioctl, and through
 * smith_hooks_fold_missed_tick() before a record is placed.
 */
void smith_hooks_fold_missed(void);

/*
 * The same, at most once a tick per CPU: summing every probe's count
 * costs as much as a small record's header, so a miss reaches the stream
 * within a tick of the next record on any CPU (at once through the stats
 * ioctl).
 */
void smith_hooks_fold_missed_tick(void);

/* Called by smith_hooks_init(): err 0 attached, else why not. */
void smith_hook_attached(unsigned int hook, int err);

#endif /* _SMITH_TRANSPORT_H */
