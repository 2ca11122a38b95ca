/* SPDX-License-Identifier: GPL-2.0 */
/*
 * record.h - building one event record: struct smith_event (the common
 * header every event carries) followed by length-prefixed fields, written
 * into a per-CPU scratch buffer and handed to smith_submit() in one piece,
 * or, when its length is known before it starts (smith_rec_begin_common(),
 * smith_rec_start_plan()), written in place in the shm ring.
 *
 * A hook builds a record like this, between smith_hook_enter() and
 * smith_hook_exit() (which keep preemption disabled, so the per-CPU buffer
 * stays ours for the whole build):
 *
 *	r = smith_rec_begin(SMITH_HI_CONNECT, SMITH_EV_CONNECT, ret);
 *	if (!r)
 *		return;
 *	smith_rec_put_common(r);		exe, nodename
 *	smith_rec_put(r, SMITH_F_CONNECT, &info, sizeof(info), 0);
 *	smith_rec_submit(r);
 *
 * Every put fits the value into the room left (SMITH_REC_MAX_LEN in all)
 * and into its own cap; a value cut short is flagged SMITH_FF_TRUNCATED,
 * a user-memory read that failed gives what was read and SMITH_FF_FAULT.
 * The record-level SMITH_RF_TRUNCATED / SMITH_RF_FAULT bits and the
 * per-hook counters follow from the field flags.  Nothing here sleeps or
 * allocates.
 */
#ifndef _SMITH_RECORD_H
#define _SMITH_RECORD_H

#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/string.h>

#include "smith_abi.h"

#include "transport.h"

struct path;
struct file;
struct smith_path_key;

/* Bytes kept of a path (exe, cwd, stdin, finit_module's file, ...). */
#define SMITH_PATH_CAP		4096u
/* Bytes kept of a module's parameter string. */
#define SMITH_PARAMS_CAP	4096u

/*
 * Builder state; lives at the start of the per-CPU buffer, in front of the
 * record itself.  Private to record.c apart from ev, which a hook may use
 * to set header fields (flags, result) before submitting.
 */
struct smith_rec {
	struct smith_event *ev;		/* the record being built */
	u32 len;			/* bytes used so far */
	u32 cap;			/* bytes available for the record */
	unsigned int hook;		/* SMITH_HI_*, for the counters */
	bool busy;			/* guards against nested use */
	/*
	 * In the ring: ev is a reservation of size bytes (aligned) in the
	 * shared ring itself, not the per-CPU buffer (smith_rec_begin_common).
	 */
	bool in_ring;
	u32 size;
	struct smith_slot slot;
	int err;			/* reservation refused: not submitted */
};

int smith_record_init(void);
void smith_record_exit(void);

/*
 * Start a record of the given type on this CPU's buffer and fill the common
 * header (time, ids, credentials, namespaces, cgroup, comm, cpu).  Call with
 * preemption disabled.  NULL when the buffer is in use (nested call); the
 * caller then gives up on the record, which is counted as a hook miss.
 */
struct smith_rec *smith_rec_begin(unsigned int hook, u16 type, s64 result);

/*
 * A record planned before it is begun, so that it can be built in place
 * in the ring (smith_rec_start_plan()): the bytes of the fields the hook
 * writes itself (SMITH_FIELD_SIZE() of each value it will put), and the
 * path fields it will put with smith_rec_put_plan(), each looked up in
 * the per-CPU path cache.  A path that is not cached (miss) has the
 * record built in the buffer, as without a plan.
 */
#define SMITH_PLAN_PATHS	3

struct smith_rec_plan_path {
	u16 id;				/* SMITH_F_* */
	int fd;				/* -1: the cwd */
	const struct smith_path_key *key;	/* NULL: no field, or miss */
};

struct smith_rec_plan {
	u32 extra;
	unsigned int n;
	bool miss;
	struct smith_rec_plan_path path[SMITH_PLAN_PATHS];
};

/*
 * Claim this CPU's builder (preemption disabled); NULL when it is in use
 * (nested call).  Then plan, and start the record with
 * smith_rec_start_plan().
 */
struct smith_rec *smith_rec_claim(unsigned int hook);

/*
 * Plan the cwd, or the path of fd as field id (absent when closed); at
 * most SMITH_PLAN_PATHS of them.
 */
void smith_rec_plan_cwd(struct smith_rec_plan *plan);
void smith_rec_plan_fd(struct smith_rec_plan *plan, u16 id, int fd);

/*
 * smith_rec_begin() and smith_rec_put_common() after smith_rec_claim():
 * into the ring when the plan and the exe path are all cached (and the
 * transport is the ring), else into the buffer.
 */
void smith_rec_start_plan(struct smith_rec *r, u16 type, s64 result,
			  const struct smith_rec_plan *plan);

/* The planned paths, in the order planned (in the buffer: looked up again). */
void smith_rec_put_plan(struct smith_rec *r, const struct smith_rec_plan *plan);

/* The controlling tty's name, NUL-terminated; its length, 0 if none. */
#define SMITH_TTY_NAME_LEN	64
u32 smith_tty_name(char name[SMITH_TTY_NAME_LEN]);

/*
 * smith_rec_begin() and smith_rec_put_common() in one, for a hook whose
 * own fields after the common ones take extra bytes (each field's header,
 * value and padding), known before the record is begun.  With the ring
 * transport, when the exe path is cached (no d_path() to run), the length
 * is known at once and the record is built in place in the ring: no copy
 * at submit.  Else as the two calls.  A field then longer than the room
 * left is cut and flagged as at the end of any record.
 */
struct smith_rec *smith_rec_begin_common(unsigned int hook, u16 type,
					 s64 result, u32 extra);

/* Bytes of a field of len value bytes: its header, value and padding. */
#define SMITH_FIELD_SIZE(len) \
	SMITH_REC_ALIGN((u32)sizeof(struct smith_field) + (len))

/* Submit the record (len, flags, nfields finalised) and release the buffer. */
int smith_rec_submit(struct smith_rec *r);

/* Release the buffer without submitting. */
void smith_rec_cancel(struct smith_rec *r);

/*
 * Whether a field of len value bytes fits at start (r->len aligned): its
 * header, the value and up to 7 bytes of the value's padding.
 */
static inline bool smith_rec_fits(const struct smith_rec *r, u32 start,
				  u32 len)
{
	return start + sizeof(struct smith_field) + len + 7 <= r->cap;
}

/*
 * Open a field: returns where its value goes and sets *room to the bytes
 * available (the lesser of cap and what the record has left).  Close it
 * with the value's length and flags.  Only one field is open at a time.
 */
void *smith_rec_open(struct smith_rec *r, u16 id, u32 cap, u32 *room);
void smith_rec_close(struct smith_rec *r, u32 len, u16 fflags);

/* A value held in kernel memory; cut to what fits and flagged if so. */
void smith_rec_put(struct smith_rec *r, u16 id, const void *val, u32 len,
		   u16 fflags);

/* A NUL-terminated kernel string, without its NUL, at most cap bytes. */
void smith_rec_put_str(struct smith_rec *r, u16 id, const char *s, u32 cap);

/* A NUL-terminated user string, read without faulting pages in. */
void smith_rec_put_user_str(struct smith_rec *r, u16 id,
			    const char __user *s, u32 cap);

/* len bytes of user memory (e.g. mm->arg_start..arg_end). */
void smith_rec_put_user_mem(struct smith_rec *r, u16 id,
			    const void __user *p, unsigned long len, u32 cap);

/*
 * A user argv array (NULL-terminated pointers, 4 bytes each when compat):
 * the strings, each with its NUL, as /proc/PID/cmdline shows them.
 */
void smith_rec_put_user_argv(struct smith_rec *r, u16 id,
			     const void __user *argv, bool compat, u32 cap);

/* d_path() of a path or of a file's path. */
void smith_rec_put_path(struct smith_rec *r, u16 id, const struct path *path);
void smith_rec_put_file(struct smith_rec *r, u16 id, struct file *file);

/* Path of the current task's file descriptor fd ("pipe:[ino]" etc.). */
void smith_rec_put_fd(struct smith_rec *r, u16 id, int fd);

/* The fields every event carries: exe and nodename. */
void smith_rec_put_common(struct smith_rec *r);

/* cwd, stdin, stdout and tty of the current task. */
void smith_rec_put_cwd(struct smith_rec *r);
void smith_rec_put_tty(struct smith_rec *r);

/* Copy up to len bytes of user memory page by page; returns bytes copied. */
u32 smith_copy_user(void *dst, const void __user *src, u32 len);

/*
 * Sub-step cost of the record builder, a build-time switch (make
 * SMITH_STEPS=1): each step of a record's build is timed with the same
 * clock as the latency histograms, while measure_latency is on, into
 * per-CPU sums shown in debugfs smith/steps (any write resets them).
 * Without the switch the calls compile to nothing.
 */
enum smith_step {
	SMITH_ST_BEGIN,		/* smith_rec_begin: header, ids, creds */
	SMITH_ST_EXE,		/* exe path */
	SMITH_ST_NODENAME,
	SMITH_ST_CWD,
	SMITH_ST_FD,		/* stdin, stdout paths */
	SMITH_ST_TTY,
	SMITH_ST_USER,		/* user strings and memory (filename, argv) */
	SMITH_ST_KVAL,		/* kernel values (connect info, names) */
	SMITH_ST_SUBMIT,	/* into the ring or netlink, wake-up */
	SMITH_ST_COUNT,
};

#ifdef SMITH_STEPS
u64 smith_step_start(void);
void smith_step_end(unsigned int hook, enum smith_step step, u64 t0);
/* Sums over CPUs of one hook's steps; reset zeroes them all. */
void smith_steps_get(unsigned int hook, u64 ns[SMITH_ST_COUNT],
		     u64 calls[SMITH_ST_COUNT]);
void smith_steps_reset(void);
#else
static inline u64 smith_step_start(void) { return 0; }
static inline void smith_step_end(unsigned int hook, enum smith_step step,
				  u64 t0) { }
#endif

/*
 * smith_rec_put() of a value whose size is a constant: written in place
 * with the compiler's inline moves when it fits (a multiple of 8 bytes
 * needs no padding), else cut as smith_rec_put() does.
 */
static __always_inline void smith_rec_put_fixed(struct smith_rec *r, u16 id,
						const void *val, u32 len)
{
	u64 t0 = smith_step_start();
	u32 start = SMITH_REC_ALIGN(r->len);

	if (likely(!(len & 7) && smith_rec_fits(r, start, len))) {
		struct smith_field *f = (void *)r->ev + start;

		f->id = id;
		f->flags = 0;
		f->len = len;
		memcpy(f + 1, val, len);
		r->len = start + sizeof(*f) + len;
		r->ev->nfields++;
		smith_step_end(r->hook, SMITH_ST_KVAL, t0);
	} else {
		smith_rec_put(r, id, val, len, 0);
	}
}

#endif /* _SMITH_RECORD_H */
