// SPDX-License-Identifier: GPL-2.0
/*
 * record.c - the event record builder (see record.h for the use).
 *
 * Scratch memory: one buffer per possible CPU, SMITH_REC_MAX_LEN bytes of
 * record behind the builder state.  Hooks hold it only with preemption
 * disabled (smith_hook_enter()), and no hook runs in interrupt context (all
 * hooked calls are system calls), so a CPU's buffer has a single user at a
 * time; the busy flag only catches a nested call that would break that.
 *
 * What runs in atomic context and why it is safe:
 *   - paths: d_path() walks dentries under RCU and seqlocks, never sleeps
 *     without PREEMPT_RT; on RT its locked retries would, and a lockless
 *     walk with bounded retries replaces it (smith_d_path()).  The path is
 *     pinned by a file reference (exe, fds: fput() of the last reference
 *     defers the release to task work) or, for the cwd, read under RCU
 *     exactly as getcwd(2) does.
 *   - user memory: copy_from_user_nofault() page by page, so a read that
 *     meets an unmapped page keeps what came before it and flags a fault.
 *   - no lock that sleeps on PREEMPT_RT: the cwd and root are read with
 *     the plain seqcount under fs->seq (bounded tries), not its spinlock,
 *     and the tty name with a non-faulting copy instead of under the
 *     sighand lock.
 */
#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/nsproxy.h>
#include <linux/ns_common.h>
#include <linux/pid_namespace.h>
#include <linux/proc_ns.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seqlock.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/tty.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>
#include <linux/vmalloc.h>
#include <linux/cgroup.h>

#include <asm/word-at-a-time.h>

#include "compat.h"
#include "record.h"
#include "transport.h"

#define SMITH_REC_HDR_ROOM	ALIGN(sizeof(struct smith_rec), 8)
#define SMITH_REC_BUF_SIZE	(SMITH_REC_HDR_ROOM + SMITH_REC_MAX_LEN)

/* User strings are read in chunks this size, never across a page. */
#define SMITH_USTR_CHUNK	256u

static DEFINE_PER_CPU(struct smith_rec *, smith_rec_buf);

static void smith_mount_calibrate(void);

/*
 * The paths of the last records built on this CPU (exe, cwd, stdin,
 * stdout), so that a process making many calls (a connect loop, a server,
 * a shell running the same program again) does not have d_path() rebuild
 * the same strings for each.  A path is the same string again when the
 * dentry (pointer, parent and name hash) and the mount are the same, the
 * caller's root is the same, no rename ran anywhere since (rename_lock's
 * sequence), the dentry is not unlinked, and within SMITH_PATH_CACHE_TTL:
 * a mount moved under a path, which none of these see, shows within that
 * time.  The key is the dentry, not the file, so that every exec of one
 * program finds the path (each exec opens its own file).  Dentries with
 * d_dname() format their name from the inode, and are freed at once (no
 * RCU), so their address comes back for another pipe: of them only pipes
 * and sockets are cached ("pipe:[ino]", "socket:[ino]"), keyed by inode
 * and inode number too, which a new pipe does not share (get_next_ino()).
 * The pointers are only compared, never followed: the dentry is pinned by
 * the caller (a file reference, or RCU for the cwd).  Per CPU, used with
 * preemption disabled like the scratch buffer.
 */
struct smith_path_key {
	const struct dentry *dentry, *parent;
	const struct inode *inode;
	unsigned long ino;
	const struct vfsmount *mnt;
	const struct dentry *root_dentry;
	const struct vfsmount *root_mnt;
	u64 name_hash_len;
	unsigned long filled;		/* jiffies */
	unsigned int rename_seq;
	u32 len;			/* 0: entry unused */
};

/* exe, cwd, stdin and stdout of an exec, each its own entry. */
#define SMITH_PATH_CACHE_WAYS	4

struct smith_path_cache {
	struct smith_path_key key[SMITH_PATH_CACHE_WAYS];
	unsigned int next;		/* the entry the next fill replaces */
	char path[SMITH_PATH_CACHE_WAYS][SMITH_PATH_CAP];
};

#define SMITH_PATH_CACHE_TTL	HZ

static DEFINE_PER_CPU(struct smith_path_cache *, smith_path_cache);

#ifdef SMITH_STEPS
/* Per-CPU sums of the builder's steps (record.h), read by debugfs. */
struct smith_step_sums {
	u64 ns[SMITH_HOOK_COUNT][SMITH_ST_COUNT];
	u64 calls[SMITH_HOOK_COUNT][SMITH_ST_COUNT];
};

static DEFINE_PER_CPU(struct smith_step_sums, smith_steps);

u64 smith_step_start(void)
{
	return smith_latency_start();
}

void smith_step_end(unsigned int hook, enum smith_step step, u64 t0)
{
	if (!t0 || hook >= SMITH_HOOK_COUNT)
		return;
	this_cpu_add(smith_steps.ns[hook][step], ktime_get_mono_fast_ns() - t0);
	this_cpu_inc(smith_steps.calls[hook][step]);
}

void smith_steps_get(unsigned int hook, u64 ns[SMITH_ST_COUNT],
		     u64 calls[SMITH_ST_COUNT])
{
	int cpu, i;

	for (i = 0; i < SMITH_ST_COUNT; i++) {
		ns[i] = 0;
		calls[i] = 0;
		for_each_possible_cpu(cpu) {
			ns[i] += per_cpu(smith_steps, cpu).ns[hook][i];
			calls[i] += per_cpu(smith_steps, cpu).calls[hook][i];
		}
	}
}

void smith_steps_reset(void)
{
	int cpu;

	/* Racing samples may survive or be lost; a reset is approximate. */
	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(&smith_steps, cpu), 0,
		       sizeof(struct smith_step_sums));
}
#endif

/*
 * Offset of the struct ns_common inside the (private) struct
 * mnt_namespace: 8 on kernels whose mnt_namespace starts with its own
 * count (up to 5.10), 0 once the count moved into ns_common.  Found once
 * at init by checking which candidate holds the mount namespace's
 * operations; -1 when none does (mnt_ns is then reported as 0).  Written
 * before any probe is registered, read-only afterwards.
 */
static int smith_mntns_off = -1;

static bool smith_mntns_at(const void *mnt_ns, int off)
{
	const struct ns_common *ns = mnt_ns + off;
	const struct proc_ns_operations *ops;
	int type;

	if (copy_from_kernel_nofault(&ops, &ns->ops, sizeof(ops)) || !ops)
		return false;
	if (copy_from_kernel_nofault(&type, &ops->type, sizeof(type)))
		return false;
	return type == CLONE_NEWNS;
}

static void smith_mntns_calibrate(void)
{
	static const int candidates[] = { 0, 8 };
	const void *mnt_ns = current->nsproxy ? current->nsproxy->mnt_ns : NULL;
	int i;

	for (i = 0; mnt_ns && i < ARRAY_SIZE(candidates); i++) {
		if (smith_mntns_at(mnt_ns, candidates[i])) {
			smith_mntns_off = candidates[i];
			return;
		}
	}
	pr_warn("mount namespace layout not recognised, mnt_ns will be 0\n");
}

int smith_record_init(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct smith_rec *r = kvmalloc_node(SMITH_REC_BUF_SIZE,
						    GFP_KERNEL | __GFP_ZERO,
						    cpu_to_node(cpu));

		if (!r) {
			smith_record_exit();
			return -ENOMEM;
		}
		per_cpu(smith_rec_buf, cpu) = r;
		per_cpu(smith_path_cache, cpu) =
			kvmalloc_node(sizeof(struct smith_path_cache),
				      GFP_KERNEL | __GFP_ZERO, cpu_to_node(cpu));
		if (!per_cpu(smith_path_cache, cpu)) {
			smith_record_exit();
			return -ENOMEM;
		}
	}
	smith_mntns_calibrate();
	smith_mount_calibrate();
	return 0;
}

/* Called after every probe is gone: no buffer is in use any more. */
void smith_record_exit(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		kvfree(per_cpu(smith_rec_buf, cpu));
		per_cpu(smith_rec_buf, cpu) = NULL;
		kvfree(per_cpu(smith_path_cache, cpu));
		per_cpu(smith_path_cache, cpu) = NULL;
	}
}

static u32 smith_mnt_ns_inum(void)
{
	struct nsproxy *nsp = current->nsproxy;
	const struct ns_common *ns;

	if (smith_mntns_off < 0 || !nsp || !nsp->mnt_ns)
		return 0;
	ns = (const void *)nsp->mnt_ns + smith_mntns_off;
	return ns->inum;
}

/*
 * Whether the word w holds a NUL byte; *mask is then create_zero_mask()'s,
 * for zero_bytemask() and find_zero().
 */
static __always_inline bool smith_word_nul(unsigned long w, unsigned long *mask)
{
	const struct word_at_a_time wc = WORD_AT_A_TIME_CONSTANTS;
	unsigned long bits;

	if (!has_zero(w, &bits, &wc))
		return false;
	*mask = create_zero_mask(prep_zero_mask(w, bits, &wc));
	return true;
}

/*
 * A task's comm, a word at a time (strscpy_pad() costs as much as the rest
 * of a small record's header): every byte after the first NUL zeroed,
 * whatever the kernel left there (a shorter name copied over a longer one
 * with strlcpy() keeps the longer one's tail), and the last byte 0
 * whatever a rename on another CPU wrote meanwhile.
 */
static void smith_copy_comm(char dst[TASK_COMM_LEN], const char *src)
{
	unsigned long w0, w1, mask;

	BUILD_BUG_ON(TASK_COMM_LEN != 2 * sizeof(unsigned long));
	/* memcpy: one load each, at any alignment. */
	memcpy(&w0, src, sizeof(w0));
	memcpy(&w1, src + sizeof(w0), sizeof(w1));
	if (smith_word_nul(w0, &mask)) {
		w0 &= zero_bytemask(mask);
		w1 = 0;
	} else if (smith_word_nul(w1, &mask)) {
		w1 &= zero_bytemask(mask);
	}
	memcpy(dst, &w0, sizeof(w0));
	memcpy(dst + sizeof(w0), &w1, sizeof(w1));
	dst[TASK_COMM_LEN - 1] = '\0';
}

/*
 * strnlen() a word at a time (the kernel's is a byte at a time on x86),
 * for the nodename in every record; no byte past s + max is read.
 */
static u32 smith_strnlen(const char *s, u32 max)
{
	u32 i;

	for (i = 0; i + sizeof(unsigned long) <= max;
	     i += sizeof(unsigned long)) {
		unsigned long w, mask;

		memcpy(&w, s + i, sizeof(w));
		if (smith_word_nul(w, &mask))
			return i + find_zero(mask);
	}
	while (i < max && s[i])
		i++;
	return i;
}

/*
 * Every byte after ev->hdr: the ring's reservations are not zeroed.  Under
 * rcu_read_lock() (real_parent, the pid and cgroup links).
 */
static void __smith_fill_header(struct smith_event *ev, s64 result)
{
	struct task_struct *task = current;
	const struct cred *cred = current_cred();
	struct pid_namespace *pidns;

	ev->time_ns = ktime_get_real_ns();
	ev->result = result;
	/* Ids as the initial pid namespace sees them: the host's view. */
	ev->pid = task->pid;
	ev->tgid = task->tgid;
	/* Credentials as global (initial user namespace) ids. */
	ev->uid = __kuid_val(cred->uid);
	ev->euid = __kuid_val(cred->euid);
	ev->gid = __kgid_val(cred->gid);

	ev->ppid = rcu_dereference(task->real_parent)->tgid;
	ev->pgid = pid_nr(task_pgrp(task));
	ev->sid = pid_nr(task_session(task));
	pidns = task_active_pid_ns(task);
	ev->pid_ns = pidns ? pidns->ns.inum : 0;
#ifdef CONFIG_CGROUPS
	ev->cgroup_id = cgroup_id(task_dfl_cgroup(task));
#else
	ev->cgroup_id = 0;
#endif

	ev->mnt_ns = smith_mnt_ns_inum();
	BUILD_BUG_ON(sizeof(ev->comm) != TASK_COMM_LEN);
	smith_copy_comm(ev->comm, task->comm);
	ev->nfields = 0;
	ev->cpu = smp_processor_id();
	ev->_pad = 0;
}

static void smith_fill_header(struct smith_event *ev, s64 result)
{
	rcu_read_lock();
	__smith_fill_header(ev, result);
	rcu_read_unlock();
}

/* cap: a record the transport would refuse is cut to fit instead. */
struct smith_rec *smith_rec_claim(unsigned int hook)
{
	struct smith_rec *r = this_cpu_read(smith_rec_buf);

	if (unlikely(!r || r->busy))
		return NULL;
	r->busy = true;
	r->hook = hook;
	r->in_ring = false;
	r->err = 0;
	r->cap = min_t(u32, SMITH_REC_MAX_LEN, smith_max_record());
	r->len = sizeof(struct smith_event);
	return r;
}

/* Start the record in the per-CPU buffer. */
static void smith_rec_start(struct smith_rec *r, u16 type, s64 result)
{
	u64 t0 = smith_step_start();
	struct smith_event *ev = (void *)r + SMITH_REC_HDR_ROOM;

	r->ev = ev;
	ev->hdr.len = 0;
	ev->hdr.type = type;
	ev->hdr.flags = 0;
	smith_fill_header(ev, result);
	smith_step_end(r->hook, SMITH_ST_BEGIN, t0);
}

struct smith_rec *smith_rec_begin(unsigned int hook, u16 type, s64 result)
{
	struct smith_rec *r = smith_rec_claim(hook);

	if (r)
		smith_rec_start(r, type, result);
	return r;
}

/*
 * The rest of an in-ring record's reservation, when it came out shorter
 * than reserved (a value changed between measuring and copying it): a pad
 * record the reader skips, as at the end of the data area.  Both sizes
 * are 8-aligned, so the rest is 0 or holds a header.
 */
static void smith_rec_pad_rest(struct smith_rec *r)
{
	u32 end = SMITH_REC_ALIGN(r->len);
	struct smith_rec_hdr *pad;

	if (end >= r->size)
		return;
	pad = (void *)r->ev + end;
	pad->type = SMITH_REC_PAD;
	pad->flags = 0;
	pad->len = (r->size - end) | SMITH_REC_DISCARD;
}

int smith_rec_submit(struct smith_rec *r)
{
	u64 t0 = smith_step_start();
	int err;

	if (r->err) {
		err = r->err;
	} else if (r->in_ring) {
		smith_rec_pad_rest(r);
		/* Still BUSY: the commit's store-release publishes it all. */
		WRITE_ONCE(r->ev->hdr.len, r->len | SMITH_REC_BUSY);
		err = smith_commit(&r->slot);
	} else {
		r->ev->hdr.len = r->len;
		/* Probe misses (folded once a tick): "lost N" in front. */
		smith_hooks_fold_missed_tick();
		err = smith_submit(r->ev, r->len);
	}
	smith_step_end(r->hook, SMITH_ST_SUBMIT, t0);
	if (!err) {
		smith_hook_count(r->hook, events);
		if (r->ev->hdr.flags & SMITH_RF_TRUNCATED)
			smith_count_truncated();
	}
	r->busy = false;
	return err;
}

void smith_rec_cancel(struct smith_rec *r)
{
	if (r->in_ring)
		smith_discard(&r->slot);
	r->busy = false;
}

void *smith_rec_open(struct smith_rec *r, u16 id, u32 cap, u32 *room)
{
	struct smith_field *f;
	u32 start = SMITH_REC_ALIGN(r->len);
	u32 left;

	/* Room for the field header, one byte and its padding. */
	if (!smith_rec_fits(r, start, 1)) {
		*room = 0;
		return NULL;
	}
	left = r->cap - start - sizeof(*f) - 7;
	f = (void *)r->ev + start;
	f->id = id;
	f->flags = 0;
	f->len = 0;
	*room = min(cap, left);
	return f + 1;
}

void smith_rec_close(struct smith_rec *r, u32 len, u16 fflags)
{
	u32 start = SMITH_REC_ALIGN(r->len);
	struct smith_field *f = (void *)r->ev + start;
	u32 end = start + sizeof(*f) + len;

	f->len = len;
	f->flags = fflags;
	/* Zero the padding: no stale scratch bytes leave the kernel. */
	if (end & 7)
		memset((void *)r->ev + end, 0, SMITH_REC_ALIGN(end) - end);
	r->len = end;
	r->ev->nfields++;
	if (fflags & SMITH_FF_TRUNCATED) {
		r->ev->hdr.flags |= SMITH_RF_TRUNCATED;
		smith_hook_count(r->hook, truncated);
	}
	if (fflags & SMITH_FF_FAULT) {
		r->ev->hdr.flags |= SMITH_RF_FAULT;
		smith_hook_count(r->hook, faults);
	}
}

/*
 * A field that does not fit at all is dropped from the record, and the
 * record says it is incomplete.
 */
static void smith_rec_no_room(struct smith_rec *r)
{
	r->ev->hdr.flags |= SMITH_RF_TRUNCATED;
	smith_hook_count(r->hook, truncated);
}

static void __smith_rec_put(struct smith_rec *r, u16 id, const void *val, u32 len,
		   u16 fflags)
{
	u32 room;
	void *dst = smith_rec_open(r, id, len, &room);

	if (!dst) {
		smith_rec_no_room(r);
		return;
	}
	if (len > room) {
		len = room;
		fflags |= SMITH_FF_TRUNCATED;
	}
	memcpy(dst, val, len);
	smith_rec_close(r, len, fflags);
}

void smith_rec_put(struct smith_rec *r, u16 id, const void *val, u32 len,
		   u16 fflags)
{
	u64 t0 = smith_step_start();

	__smith_rec_put(r, id, val, len, fflags);
	smith_step_end(r->hook, SMITH_ST_KVAL, t0);
}

static void __smith_rec_put_str(struct smith_rec *r, u16 id, const char *s,
				u32 cap)
{
	u32 len = strnlen(s, cap + 1);
	u16 fflags = 0;

	if (len > cap) {
		len = cap;
		fflags = SMITH_FF_TRUNCATED;
	}
	__smith_rec_put(r, id, s, len, fflags);
}

void smith_rec_put_str(struct smith_rec *r, u16 id, const char *s, u32 cap)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_str(r, id, s, cap);
	smith_step_end(r->hook, SMITH_ST_KVAL, t0);
}

u32 smith_copy_user(void *dst, const void __user *src, u32 len)
{
	u32 done = 0;

	while (done < len) {
		unsigned long addr = (unsigned long)src + done;
		u32 chunk = min_t(u32, len - done,
				  PAGE_SIZE - offset_in_page(addr));

		if (copy_from_user_nofault(dst + done,
					   (const void __user *)addr, chunk))
			break;
		done += chunk;
	}
	return done;
}

/*
 * Copy a user string of at most max bytes (without its NUL) into dst.
 * *len gets the bytes copied.  Returns 0 when the NUL was found, 1 when
 * max bytes came without one, -EFAULT when a read failed.
 */
static int smith_user_strncpy(char *dst, const char __user *src, u32 max,
			      u32 *len)
{
	u32 done = 0;

	*len = 0;
	while (done < max) {
		unsigned long addr = (unsigned long)src + done;
		u32 chunk = min3(max - done, SMITH_USTR_CHUNK,
				 (u32)(PAGE_SIZE - offset_in_page(addr)));
		char *nul;

		if (copy_from_user_nofault(dst + done,
					   (const void __user *)addr, chunk))
			return -EFAULT;
		nul = memchr(dst + done, 0, chunk);
		if (nul) {
			*len = nul - dst;
			return 0;
		}
		done += chunk;
		*len = done;
	}
	return 1;
}

static void __smith_rec_put_user_str(struct smith_rec *r, u16 id,
			    const char __user *s, u32 cap)
{
	u32 room, len;
	char *dst = smith_rec_open(r, id, cap, &room);
	int ret;

	if (!dst) {
		smith_rec_no_room(r);
		return;
	}
	ret = smith_user_strncpy(dst, s, room, &len);
	smith_rec_close(r, len, ret < 0 ? SMITH_FF_FAULT :
				ret > 0 ? SMITH_FF_TRUNCATED : 0);
}

void smith_rec_put_user_str(struct smith_rec *r, u16 id,
			    const char __user *s, u32 cap)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_user_str(r, id, s, cap);
	smith_step_end(r->hook, SMITH_ST_USER, t0);
}

static void __smith_rec_put_user_mem(struct smith_rec *r, u16 id,
			    const void __user *p, unsigned long len, u32 cap)
{
	u32 room, want, got;
	u16 fflags = 0;
	void *dst = smith_rec_open(r, id, cap, &room);

	if (!dst) {
		smith_rec_no_room(r);
		return;
	}
	want = min_t(unsigned long, len, room);
	if (want < len)
		fflags |= SMITH_FF_TRUNCATED;
	got = smith_copy_user(dst, p, want);
	if (got < want)
		fflags |= SMITH_FF_FAULT;
	smith_rec_close(r, got, fflags);
}

void smith_rec_put_user_mem(struct smith_rec *r, u16 id,
			    const void __user *p, unsigned long len, u32 cap)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_user_mem(r, id, p, len, cap);
	smith_step_end(r->hook, SMITH_ST_USER, t0);
}

static void __smith_rec_put_user_argv(struct smith_rec *r, u16 id,
			     const void __user *argv, bool compat, u32 cap)
{
	u32 room, len = 0, n;
	u16 fflags = 0;
	char *dst = smith_rec_open(r, id, cap, &room);
	unsigned int i;

	if (!dst) {
		smith_rec_no_room(r);
		return;
	}
	/* A NULL argv is an empty one (the kernel accepts it). */
	for (i = 0; argv && i < MAX_ARG_STRINGS; i++) {
		unsigned long p;
		int ret;

		if (compat) {
			u32 p32;

			if (copy_from_user_nofault(&p32, argv + 4 * i, 4)) {
				fflags |= SMITH_FF_FAULT;
				break;
			}
			p = p32;
		} else if (copy_from_user_nofault(&p, argv + 8 * i, 8)) {
			fflags |= SMITH_FF_FAULT;
			break;
		}
		if (!p)
			break;
		if (len >= room) {
			fflags |= SMITH_FF_TRUNCATED;
			break;
		}
		/* Keep one byte for the string's NUL. */
		ret = smith_user_strncpy(dst + len, (const char __user *)p,
					 room - len - 1, &n);
		len += n;
		if (ret < 0) {
			fflags |= SMITH_FF_FAULT;
			break;
		}
		dst[len++] = '\0';
		if (ret > 0) {
			fflags |= SMITH_FF_TRUNCATED;
			break;
		}
	}
	smith_rec_close(r, len, fflags);
}

void smith_rec_put_user_argv(struct smith_rec *r, u16 id,
			     const void __user *argv, bool compat, u32 cap)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_user_argv(r, id, argv, compat, cap);
	smith_step_end(r->hook, SMITH_ST_USER, t0);
}

/* Reads of a seqcount before giving up on the field. */
#define SMITH_SEQ_TRIES	64

/*
 * A consistent copy of current's fs->root and/or fs->pwd, as getcwd(2)
 * reads them, under RCU (dentries and mounts are freed only after a grace
 * period) and without taking a reference (path_put() could sleep).  The
 * bare seqcount_t: read_seqcount_begin() on fs->seq may take fs->lock on
 * PREEMPT_RT, which sleeps.  A writer holds the count odd only for a few
 * stores; false after SMITH_SEQ_TRIES reads found one at work.
 */
static bool smith_fs_paths(struct path *root, struct path *pwd)
{
	struct fs_struct *fs = current->fs;
	unsigned int seq, tries;

	if (!fs)
		return false;
	for (tries = 0; tries < SMITH_SEQ_TRIES; tries++) {
		seq = raw_read_seqcount(&fs->seq.seqcount);
		if (seq & 1) {
			cpu_relax();
			continue;
		}
		if (root)
			*root = fs->root;
		if (pwd)
			*pwd = fs->pwd;
		if (!read_seqcount_retry(&fs->seq.seqcount, seq))
			return true;
	}
	return false;
}

/*
 * rename_lock's sequence without waiting for a writer (read_seqbegin()
 * would spin, and on PREEMPT_RT may sleep): odd while a rename runs.
 */
static unsigned int smith_rename_seq(void)
{
	return smp_load_acquire(&rename_lock.seqcount.seqcount.sequence);
}

#ifdef CONFIG_PREEMPT_RT
/*
 * d_path() without its locks, for PREEMPT_RT.  d_path() reads
 * rename_lock and mount_lock (seqlock_t) and current->fs->seq with
 * read_seqbegin_or_lock()/read_seqcount_begin(): when a writer is at work
 * they take the seqlock's spinlock_t, a sleeping lock on PREEMPT_RT,
 * which the hooks may not take.  This walk is d_path()'s (fs/d_path.c,
 * prepend_path()) under RCU, made consistent by rename_lock's sequence
 * read without waiting, and retried SMITH_SEQ_TRIES times at most; then
 * the path is reported truncated and empty.  mount_lock is not exported:
 * a mount moved during the walk may give a path that was true just
 * before, as /proc/PID/exe read at that moment could.
 *
 * struct mount is private to fs/ (fs/mount.h); every kernel this builds
 * on starts it with these fields, around the struct vfsmount of the
 * path.  smith_mount_calibrate() checks that at load on the caller's own
 * mounts, and without a match every path is reported truncated.
 */
struct smith_mount {
	struct hlist_node mnt_hash;
	struct smith_mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

static bool smith_mount_layout_ok __read_mostly;

/* Steps of one walk at most: a racing rename cannot make it loop. */
#define SMITH_PATH_STEPS	8192

static const struct smith_mount *smith_real_mount(const struct vfsmount *mnt)
{
	return container_of(mnt, struct smith_mount, mnt);
}

/*
 * From the caller's root mount up, every parent must be readable and end
 * at a mount that is its own parent with its own root as its mountpoint:
 * how clone_mnt(), vfs_create_mount() and a detach leave a top mount.
 */
static void smith_mount_calibrate(void)
{
	const struct smith_mount *m, *parent;
	struct dentry *mountpoint, *mnt_root;
	struct path root;
	int depth;

	if (!smith_fs_paths(&root, NULL) || !root.mnt)
		goto bad;
	m = smith_real_mount(root.mnt);
	for (depth = 0; depth < 64; depth++) {
		if (copy_from_kernel_nofault(&parent, &m->mnt_parent, sizeof(parent)) ||
		    copy_from_kernel_nofault(&mountpoint, &m->mnt_mountpoint, sizeof(mountpoint)) ||
		    copy_from_kernel_nofault(&mnt_root, &m->mnt.mnt_root, sizeof(mnt_root)) ||
		    !parent || !mountpoint)
			goto bad;
		if (parent == m) {
			smith_mount_layout_ok = mountpoint == mnt_root;
			if (!smith_mount_layout_ok)
				goto bad;
			return;
		}
		m = parent;
	}
bad:
	pr_warn("mount layout not recognised: paths are reported truncated on this PREEMPT_RT kernel\n");
}

/*
 * The filesystems whose d_dname() (pipe:[N], socket:[N], anon_inode:x,
 * mnt:[N], /memfd:x (deleted) through simple_dname()) only formats the
 * dentry's own fields and takes no lock; d_path() calls it before it
 * takes any of its own.  Others (dma-buf's takes a spinlock_t) are
 * reported truncated.
 */
static bool smith_dname_lockless(const struct dentry *d)
{
	switch (d->d_sb->s_magic) {
	case PIPEFS_MAGIC:
	case SOCKFS_MAGIC:
	case ANON_INODE_FS_MAGIC:
	case NSFS_MAGIC:
	case TMPFS_MAGIC:
#ifdef PIDFS_MAGIC
	case PIDFS_MAGIC:
#endif
		return true;
	}
	return false;
}

/* prepend_path(): the walk from path up to root, into buf's end at p. */
static char *smith_prepend_path(const struct path *path,
				const struct path *root, char *buf, char *p)
{
	const struct dentry *dentry = path->dentry;
	const struct smith_mount *mnt = smith_real_mount(path->mnt);
	const char *end = p;
	unsigned int steps;

	for (steps = 0; dentry != root->dentry || &mnt->mnt != root->mnt;
	     steps++) {
		const struct dentry *parent = READ_ONCE(dentry->d_parent);
		const unsigned char *name;
		u32 len, i;

		if (steps == SMITH_PATH_STEPS)
			return ERR_PTR(-ELOOP);
		if (dentry == mnt->mnt.mnt_root) {
			const struct smith_mount *m = READ_ONCE(mnt->mnt_parent);

			if (m == mnt)	/* the global root, or detached */
				break;
			dentry = READ_ONCE(mnt->mnt_mountpoint);
			mnt = m;
			continue;
		}
		if (dentry == parent)	/* escaped the root */
			break;
		/* As prepend_name(): the name pointer before its length. */
		name = smp_load_acquire(&dentry->d_name.name);
		len = READ_ONCE(dentry->d_name.len);
		if (p - buf < (long)len + 1)
			return ERR_PTR(-ENAMETOOLONG);
		p -= len + 1;
		*p = '/';
		for (i = 0; i < len && name[i]; i++)
			p[i + 1] = name[i];
		dentry = parent;
	}
	if (p == end) {
		if (p == buf)
			return ERR_PTR(-ENAMETOOLONG);
		*--p = '/';
	}
	return p;
}

static char *smith_d_path(const struct path *path, char *buf, int buflen)
{
	const struct dentry *d = path->dentry;
	struct path root;
	unsigned int seq, tries;
	char *p = ERR_PTR(-EAGAIN), *end = buf + buflen;

	if (d->d_op && d->d_op->d_dname &&
	    (!IS_ROOT(d) || d != path->mnt->mnt_root))
		return smith_dname_lockless(d) ? d_path(path, buf, buflen) :
						 ERR_PTR(-EAGAIN);
	if (!smith_mount_layout_ok || buflen < 1)
		return ERR_PTR(-ENAMETOOLONG);
	rcu_read_lock();
	/* The root first: it changes only with chroot, not with renames. */
	tries = smith_fs_paths(&root, NULL) ? 0 : SMITH_SEQ_TRIES;
	for (; tries < SMITH_SEQ_TRIES; tries++) {
		seq = smith_rename_seq();
		if (seq & 1) {
			cpu_relax();
			continue;
		}
		if (d_unlinked(d)) {
			if (buflen < 11) {
				p = ERR_PTR(-ENAMETOOLONG);
				break;
			}
			p = end - 11;
			memcpy(p, " (deleted)", 11);
		} else {
			p = end - 1;
			*p = '\0';
		}
		p = smith_prepend_path(path, &root, buf, p);
		/* As read_seqretry(): the walk's loads before the re-read. */
		smp_rmb();
		if (READ_ONCE(rename_lock.seqcount.seqcount.sequence) == seq)
			break;
		p = ERR_PTR(-EAGAIN);
	}
	rcu_read_unlock();
	return p;
}
#else
static void smith_mount_calibrate(void)
{
}

/* d_path()'s locked retries spin on a spinlock_t: fine without RT. */
#define smith_d_path d_path
#endif

/* A path field that could not be read: empty and flagged truncated. */
static void smith_rec_put_path_unknown(struct smith_rec *r, u16 id)
{
	u32 room;

	if (!smith_rec_open(r, id, SMITH_PATH_CAP, &room)) {
		smith_rec_no_room(r);
		return;
	}
	smith_rec_close(r, 0, SMITH_FF_TRUNCATED);
}

/*
 * The caller's root, as getcwd(2) reads it (smith_fs_paths()); NULL when
 * it could not be read.
 */
static void smith_fs_root(struct path *root)
{
	if (!smith_fs_paths(root, NULL)) {
		root->dentry = NULL;
		root->mnt = NULL;
	}
}

/* The entry holding path's string as seen from root, or NULL. */
static const struct smith_path_key *
smith_path_cache_find(const struct smith_path_cache *pc,
		      const struct path *path, const struct path *root,
		      unsigned int seq)
{
	const struct dentry *d = path->dentry;
	const struct inode *inode = READ_ONCE(d->d_inode);
	unsigned int i;

	if ((seq & 1) || !root->dentry || !inode)
		return NULL;
	for (i = 0; i < SMITH_PATH_CACHE_WAYS; i++) {
		const struct smith_path_key *k = &pc->key[i];

		if (k->dentry == d && k->mnt == path->mnt && k->len &&
		    k->inode == inode && k->ino == inode->i_ino &&
		    k->rename_seq == seq && k->root_dentry == root->dentry &&
		    k->root_mnt == root->mnt &&
		    k->parent == READ_ONCE(d->d_parent) &&
		    k->name_hash_len == READ_ONCE(d->d_name.hash_len) &&
		    !d_unlinked(d) &&
		    time_before(jiffies, k->filled + SMITH_PATH_CACHE_TTL))
			return k;
	}
	return NULL;
}

/* This CPU's entry for path as seen from root, or NULL (no cache, miss). */
static const struct smith_path_key *smith_path_cached(const struct path *path,
						      const struct path *root,
						      unsigned int seq)
{
	const struct smith_path_cache *pc = this_cpu_read(smith_path_cache);
	const struct smith_path_key *k = NULL;

	if (pc) {
		rcu_read_lock();	/* d_parent, d_name */
		k = smith_path_cache_find(pc, path, root, seq);
		rcu_read_unlock();
	}
	return k;
}

/* The field opened at dst gets k's string (which fits: checked by caller). */
static void smith_rec_close_cached(struct smith_rec *r, char *dst,
				   const struct smith_path_key *k)
{
	const struct smith_path_cache *pc = this_cpu_read(smith_path_cache);

	memcpy(dst, pc->path[k - pc->key], k->len);
	smith_rec_close(r, k->len, 0);
}

/* d_dname() of these is "pipe:[ino]", "socket:[ino]": the inode's alone. */
static bool smith_dname_by_ino(const struct dentry *d)
{
	unsigned long magic = d->d_sb->s_magic;

	return magic == PIPEFS_MAGIC || magic == SOCKFS_MAGIC;
}

/*
 * Keep the whole path s (len bytes, d_path() of path from root, begun at
 * rename sequence seq): only when no rename ran since and the dentry's
 * name is its own or its inode number's (d_dname() of a pipe or socket).
 * An entry of the same dentry and mount is replaced, else the oldest.
 */
static void smith_path_cache_fill(struct smith_path_cache *pc,
				  const struct path *path,
				  const struct path *root, unsigned int seq,
				  const char *s, u32 len)
{
	const struct dentry *d = path->dentry;
	const struct inode *inode = READ_ONCE(d->d_inode);
	struct smith_path_key *k = NULL;
	unsigned int i;

	if ((seq & 1) || !root->dentry || !len || len > SMITH_PATH_CAP ||
	    !inode ||
	    (d->d_op && d->d_op->d_dname && !smith_dname_by_ino(d)))
		return;
	for (i = 0; i < SMITH_PATH_CACHE_WAYS && !k; i++)
		if (pc->key[i].dentry == d && pc->key[i].mnt == path->mnt)
			k = &pc->key[i];
	if (!k) {
		i = pc->next;
		pc->next = (i + 1) % SMITH_PATH_CACHE_WAYS;
		k = &pc->key[i];
	} else {
		i = k - pc->key;
	}
	k->len = 0;
	rcu_read_lock();	/* d_parent, d_name: as d_path() reads them */
	k->parent = READ_ONCE(d->d_parent);
	k->name_hash_len = READ_ONCE(d->d_name.hash_len);
	rcu_read_unlock();
	/* Unlinked or renamed during the walk: the string may be stale. */
	if (d_unlinked(d) || smith_rename_seq() != seq)
		return;
	memcpy(pc->path[i], s, len);
	k->inode = inode;
	k->ino = inode->i_ino;
	k->dentry = d;
	k->mnt = path->mnt;
	k->root_dentry = root->dentry;
	k->root_mnt = root->mnt;
	k->rename_seq = seq;
	k->filled = jiffies;
	k->len = len;
}

/* path as seen from root (the caller's, read with smith_fs_root()). */
static void smith_rec_put_path_at(struct smith_rec *r, u16 id,
				  const struct path *path,
				  const struct path *root)
{
	struct smith_path_cache *pc = this_cpu_read(smith_path_cache);
	unsigned int seq = smith_rename_seq();
	const struct smith_path_key *k;
	u32 room, len = 0;
	u16 fflags = 0;
	char *dst = smith_rec_open(r, id, SMITH_PATH_CAP, &room);
	char *p;

	if (!dst) {
		smith_rec_no_room(r);
		return;
	}
	k = smith_path_cached(path, root, seq);
	/* The whole cached path must fit, else d_path() decides the cut. */
	if (k && k->len <= room) {
		smith_rec_close_cached(r, dst, k);
		return;
	}
	if (room) {
		/* d_path() writes at the end of the buffer, NUL-terminated. */
		p = smith_d_path(path, dst, room);
		if (IS_ERR(p)) {
			fflags |= SMITH_FF_TRUNCATED;
		} else {
			len = dst + room - 1 - p;
			memmove(dst, p, len);
			if (pc)
				smith_path_cache_fill(pc, path, root, seq,
						      dst, len);
		}
	}
	smith_rec_close(r, len, fflags);
}

void smith_rec_put_path(struct smith_rec *r, u16 id, const struct path *path)
{
	struct path root;

	smith_fs_root(&root);
	smith_rec_put_path_at(r, id, path, &root);
}

void smith_rec_put_file(struct smith_rec *r, u16 id, struct file *file)
{
	smith_rec_put_path(r, id, &file->f_path);
}

static void __smith_rec_put_fd(struct smith_rec *r, u16 id, int fd)
{
	/* fget_raw(): O_PATH descriptors have a path too. */
	struct file *file = fget_raw(fd);

	if (!file)
		return;
	smith_rec_put_file(r, id, file);
	fput(file);
}

void smith_rec_put_fd(struct smith_rec *r, u16 id, int fd)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_fd(r, id, fd);
	smith_step_end(r->hook, SMITH_ST_FD, t0);
}

/*
 * A reference to mm->exe_file without sleeping, under rcu_read_lock().  The
 * kernel's own getter is not exported; this is its body.  Since 6.7 files are
 * SLAB_TYPESAFE_BY_RCU, and get_file_rcu() takes the pointer's address to
 * recheck that the reference went to the file still installed there.
 */
static struct file *__smith_exe_file_get(struct mm_struct *mm)
{
	struct file *file;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	file = get_file_rcu(&mm->exe_file);
#else
	file = rcu_dereference(mm->exe_file);
	if (file && !get_file_rcu(file))
		file = NULL;
#endif
	return file;
}

static struct file *smith_exe_file_get(struct mm_struct *mm)
{
	struct file *file;

	rcu_read_lock();
	file = __smith_exe_file_get(mm);
	rcu_read_unlock();
	return file;
}

/* The common fields with exe (a reference, dropped here) at hand. */
static void smith_rec_put_common_exe(struct smith_rec *r, struct file *exe)
{
	u64 t0 = smith_step_start();

	if (exe) {
		smith_rec_put_file(r, SMITH_F_EXE, exe);
		fput(exe);
	}
	smith_step_end(r->hook, SMITH_ST_EXE, t0);
	t0 = smith_step_start();
	/* The nsproxy of current cannot change under us: only we setns(). */
	if (current->nsproxy)
		__smith_rec_put_str(r, SMITH_F_NODENAME, utsname()->nodename,
				    __NEW_UTS_LEN);
	smith_step_end(r->hook, SMITH_ST_NODENAME, t0);
}

void smith_rec_put_common(struct smith_rec *r)
{
	struct mm_struct *mm = current->mm;

	smith_rec_put_common_exe(r, mm ? smith_exe_file_get(mm) : NULL);
}

static void __smith_rec_put_cwd(struct smith_rec *r);

/* A cached path's field, the room for it counted in the reservation. */
static void smith_rec_put_key(struct smith_rec *r, u16 id,
			      const struct smith_path_key *k)
{
	u32 room;
	char *dst = smith_rec_open(r, id, SMITH_PATH_CAP, &room);

	if (dst && room >= k->len)
		smith_rec_close_cached(r, dst, k);
}

/*
 * The plan's next path (id, fd), or NULL when it need not be looked up:
 * the plan is full, or the record goes to the buffer anyway (netlink, or
 * a path missed already).
 */
static struct smith_rec_plan_path *smith_plan_add(struct smith_rec_plan *plan,
						  u16 id, int fd)
{
	struct smith_rec_plan_path *pp;

	if (WARN_ON_ONCE(plan->n == SMITH_PLAN_PATHS))
		return NULL;
	pp = &plan->path[plan->n++];
	pp->id = id;
	pp->fd = fd;
	pp->key = NULL;
	if (!smith_send_ring() || plan->miss) {
		plan->miss = true;
		return NULL;
	}
	return pp;
}

/* A path looked up: its room in the record, or the record to the buffer. */
static void smith_plan_found(struct smith_rec_plan *plan,
			     struct smith_rec_plan_path *pp,
			     const struct smith_path_key *k)
{
	pp->key = k;
	if (!k)
		plan->miss = true;
	else
		plan->extra += SMITH_FIELD_SIZE(k->len);
}

void smith_rec_plan_cwd(struct smith_rec_plan *plan)
{
	unsigned int seq = smith_rename_seq();
	struct smith_rec_plan_path *pp = smith_plan_add(plan, SMITH_F_CWD, -1);
	const struct smith_path_key *k = NULL;
	struct path root, pwd;

	if (!pp || !current->fs)
		return;		/* no cwd field: nothing to plan */
	rcu_read_lock();	/* pwd, as getcwd(2) */
	if (smith_fs_paths(&root, &pwd))
		k = smith_path_cached(&pwd, &root, seq);
	rcu_read_unlock();
	smith_plan_found(plan, pp, k);
}

void smith_rec_plan_fd(struct smith_rec_plan *plan, u16 id, int fd)
{
	unsigned int seq = smith_rename_seq();
	struct smith_rec_plan_path *pp = smith_plan_add(plan, id, fd);
	const struct smith_path_key *k;
	struct file *file;
	struct path root;

	if (!pp)
		return;
	file = fget_raw(fd);
	if (!file)
		return;		/* closed: no field */
	smith_fs_root(&root);
	k = smith_path_cached(&file->f_path, &root, seq);
	fput(file);
	smith_plan_found(plan, pp, k);
}

void smith_rec_put_plan(struct smith_rec *r, const struct smith_rec_plan *plan)
{
	unsigned int i;

	for (i = 0; i < plan->n; i++) {
		const struct smith_rec_plan_path *pp = &plan->path[i];
		u64 t0 = smith_step_start();

		if (!r->in_ring)
			/* Looked up again, and d_path() where not cached. */
			if (pp->fd < 0)
				__smith_rec_put_cwd(r);
			else
				__smith_rec_put_fd(r, pp->id, pp->fd);
		else if (pp->key)
			smith_rec_put_key(r, pp->id, pp->key);
		smith_step_end(r->hook, pp->fd < 0 ? SMITH_ST_CWD : SMITH_ST_FD,
			       t0);
	}
}

/*
 * Into the ring when the exe path and every planned path are cached: the
 * exe field, the nodename and the plan are then the record's whole
 * length.  The nodename is measured once and that many bytes copied (as
 * the buffered put does), so the record comes out exactly as long as
 * reserved unless the hook wrote less than plan->extra said.
 */
static __always_inline void __smith_rec_start_plan(struct smith_rec *r,
						   u16 type, s64 result,
						   u32 extra, bool miss)
{
	struct smith_path_cache *pc = this_cpu_read(smith_path_cache);
	struct mm_struct *mm = current->mm;
	const struct smith_path_key *k = NULL;
	const char *node = NULL;
	struct file *exe = NULL;
	struct smith_event *ev;
	u32 len, node_len = 0;
	u16 node_flags = 0;
	struct path root;
	unsigned int seq;
	u64 t0;

	/* One read section for the exe, the cache's dentries, the header. */
	rcu_read_lock();
	if (mm)
		exe = __smith_exe_file_get(mm);
	if (!smith_send_ring() || !pc || !exe || miss)
		goto buffered;
	t0 = smith_step_start();
	seq = smith_rename_seq();
	smith_fs_root(&root);
	k = smith_path_cache_find(pc, &exe->f_path, &root, seq);
	if (!k)
		goto buffered;
	len = sizeof(*ev) + SMITH_FIELD_SIZE(k->len) + extra;
	if (current->nsproxy) {
		node = utsname()->nodename;
		node_len = smith_strnlen(node, __NEW_UTS_LEN + 1);
		if (node_len > __NEW_UTS_LEN) {
			node_len = __NEW_UTS_LEN;
			node_flags = SMITH_FF_TRUNCATED;
		}
		len += SMITH_FIELD_SIZE(node_len);
	}
	if (len > r->cap)
		goto buffered;
	/* Probe misses (folded once a tick): "lost N" goes in front. */
	smith_hooks_fold_missed_tick();
	r->err = smith_reserve(&r->slot, len, type, 0);
	if (r->err) {
		rcu_read_unlock();
		/* Dropped and counted by the ring: built, never submitted. */
		fput(exe);
		smith_rec_start(r, type, result);
		return;
	}
	ev = (void *)r->slot.rec;
	r->ev = ev;
	r->in_ring = true;
	r->size = len;
	/*
	 * smith_rec_open() keeps 7 bytes for padding a value up to an 8-byte
	 * boundary below cap; the reservation ends on one, so its last value
	 * may end there.
	 */
	r->cap = len + 7;
	__smith_fill_header(ev, result);
	rcu_read_unlock();
	smith_step_end(r->hook, SMITH_ST_BEGIN, t0);

	t0 = smith_step_start();
	smith_rec_put_key(r, SMITH_F_EXE, k);
	fput(exe);
	smith_step_end(r->hook, SMITH_ST_EXE, t0);
	if (node) {
		t0 = smith_step_start();
		__smith_rec_put(r, SMITH_F_NODENAME, node, node_len, node_flags);
		smith_step_end(r->hook, SMITH_ST_NODENAME, t0);
	}
	return;

buffered:
	rcu_read_unlock();
	smith_rec_start(r, type, result);
	smith_rec_put_common_exe(r, exe);
}

void smith_rec_start_plan(struct smith_rec *r, u16 type, s64 result,
			  const struct smith_rec_plan *plan)
{
	__smith_rec_start_plan(r, type, result, plan->extra, plan->miss);
}

struct smith_rec *smith_rec_begin_common(unsigned int hook, u16 type,
					 s64 result, u32 extra)
{
	struct smith_rec *r = smith_rec_claim(hook);

	if (r)
		__smith_rec_start_plan(r, type, result, extra, false);
	return r;
}

static void __smith_rec_put_cwd(struct smith_rec *r)
{
	struct path root, pwd;

	if (!current->fs)
		return;
	/* As getcwd(2): fs->pwd under RCU, no reference taken. */
	rcu_read_lock();
	if (smith_fs_paths(&root, &pwd))
		smith_rec_put_path_at(r, SMITH_F_CWD, &pwd, &root);
	else
		smith_rec_put_path_unknown(r, SMITH_F_CWD);
	rcu_read_unlock();
}

void smith_rec_put_cwd(struct smith_rec *r)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_cwd(r);
	smith_step_end(r->hook, SMITH_ST_CWD, t0);
}

u32 smith_tty_name(char name[SMITH_TTY_NAME_LEN])
{
	struct tty_struct *tty = READ_ONCE(current->signal->tty);

	BUILD_BUG_ON(sizeof(tty->name) != SMITH_TTY_NAME_LEN);
	/*
	 * Not under sighand->siglock (a sleeping lock on PREEMPT_RT): the
	 * tty may be released by a racing hangup of the session, so its
	 * name is copied with a non-faulting read and cut at its size.  The
	 * race gives a stale name at worst, never a crash.
	 */
	if (!tty ||
	    copy_from_kernel_nofault(name, tty->name, SMITH_TTY_NAME_LEN))
		return 0;
	name[SMITH_TTY_NAME_LEN - 1] = '\0';
	return strlen(name);
}

static void __smith_rec_put_tty(struct smith_rec *r)
{
	char name[SMITH_TTY_NAME_LEN];
	u32 len = smith_tty_name(name);

	if (len)
		__smith_rec_put(r, SMITH_F_TTY, name, len, 0);
}

void smith_rec_put_tty(struct smith_rec *r)
{
	u64 t0 = smith_step_start();

	__smith_rec_put_tty(r);
	smith_step_end(r->hook, SMITH_ST_TTY, t0);
}
