/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ring_user.h - the kernel primitives ring.c uses, for its user-space
 * build (tests and the stress producer in shm/testdata/), on top of the
 * GCC __atomic builtins.  Only what ring.c needs, with the kernel's
 * memory-ordering meaning:
 *
 *   READ_ONCE/WRITE_ONCE	relaxed atomic load/store (no tearing)
 *   smp_load_acquire		acquire load
 *   smp_store_release		release store
 *   smp_mb			full fence
 *   atomic64_add/inc		relaxed atomic add
 *   raw_spin_lock_irqsave	a test-and-test-and-set spinlock; there are no
 *				interrupts to disable in user space
 *
 * The spinlock yields the CPU after a short spin: producer threads may
 * outnumber the CPUs, and a preempted lock holder must get to run.
 */
#ifndef _SMITH_RING_USER_H
#define _SMITH_RING_USER_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <linux/types.h>

/* As in the kernel: u64 is __u64, so &meta->written is a u64 *. */
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * The counters are plain __u64 in the meta page; the kernel build casts
 * them to atomic64_t.  Here atomic64_t is the integer itself, so the same
 * cast works without a type-punning struct.
 */
typedef u64 atomic64_t;

static inline void atomic64_add(s64 i, atomic64_t *v)
{
	__atomic_fetch_add(v, (u64)i, __ATOMIC_RELAXED);
}

static inline void atomic64_inc(atomic64_t *v)
{
	atomic64_add(1, v);
}

typedef struct {
	int locked;
} smith_ring_lock_t;

static inline void smith_user_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline void smith_user_spin_lock(smith_ring_lock_t *l)
{
	int spins = 0;

	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
			if (++spins < 128)
				smith_user_cpu_relax();
			else
				sched_yield();
		}
	}
}

static inline void smith_user_spin_unlock(smith_ring_lock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#define raw_spin_lock_init(l)	((l)->locked = 0)
#define raw_spin_lock_irqsave(l, flags) \
	do { (flags) = 0; smith_user_spin_lock(l); } while (0)
#define raw_spin_unlock_irqrestore(l, flags) \
	do { (void)(flags); smith_user_spin_unlock(l); } while (0)

#endif /* _SMITH_RING_USER_H */
