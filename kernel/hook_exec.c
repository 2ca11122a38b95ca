// SPDX-License-Identifier: GPL-2.0
/*
 * hook_exec.c - execve and execveat.
 *
 * A successful exec is recorded from the sched_process_exec tracepoint: it
 * fires once the new program is in place, in the task's own context, with
 * the linux_binprm at hand.  The filename is bprm->filename (the path as
 * passed; "/dev/fd/N[/name]" for execveat with a descriptor), and argv is
 * read from the new mm's arg_start..arg_end, the strings the new program
 * sees (as /proc/PID/cmdline shows them; for a script, the interpreter's
 * argv).  The old mm is gone by then, so the caller's argv pointers are of
 * no use: reading the new mm is the only way to see argv after success.
 *
 * A failed exec never reaches the tracepoint.  A kretprobe on the syscall
 * saves the filename and argv pointers at entry; at return, when the
 * result is an error, the old mm is still current and both are read from
 * it.  A successful return is skipped there (the tracepoint recorded it).
 *
 * Which call it was: exec sets the task's saved syscall number to execve's
 * (x86 "pretends to come from execve" when it sets the personality), so the
 * tracepoint cannot tell execveat from it.  The execveat kretprobe's entry
 * handler marks the task in a small table instead, and the tracepoint
 * looks it up only while some execveat is in flight: one atomic read per
 * exec otherwise.  SMITH_RF_COMPAT on a successful exec says the new
 * program runs 32-bit.
 *
 * The loaded file's identity (SMITH_F_EXE_ID: device, inode, size, times)
 * is read from bprm->file, which the exec holds until it is freed after
 * the tracepoint: a few loads of an inode at hand, no reference, no lock.
 * A failed exec loaded nothing and carries zeros.
 */
#include <linux/atomic.h>
#include <linux/binfmts.h>
#include <linux/compat.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/kdev_t.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/mm_types.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/spinlock.h>

#include "compat.h"
#include "hooks.h"
#include "record.h"
#include "transport.h"

/*
 * Tasks inside execveat right now.  Raw lock: taken in kretprobe handlers
 * and the tracepoint, both with preemption disabled.  A task that finds no
 * free slot execs unflagged; execveat is rare.
 */
#define SMITH_EXECVEAT_SLOTS	32

static DEFINE_RAW_SPINLOCK(smith_execveat_lock);
static struct task_struct *smith_execveat_tasks[SMITH_EXECVEAT_SLOTS];
static atomic_t smith_execveat_inflight = ATOMIC_INIT(0);

static int smith_execveat_mark(void)
{
	unsigned long flags;
	int i, slot = -1;

	raw_spin_lock_irqsave(&smith_execveat_lock, flags);
	for (i = 0; i < SMITH_EXECVEAT_SLOTS; i++) {
		if (!smith_execveat_tasks[i]) {
			smith_execveat_tasks[i] = current;
			atomic_inc(&smith_execveat_inflight);
			slot = i;
			break;
		}
	}
	raw_spin_unlock_irqrestore(&smith_execveat_lock, flags);
	return slot;
}

static void smith_execveat_unmark(int slot)
{
	unsigned long flags;

	if (slot < 0)
		return;
	raw_spin_lock_irqsave(&smith_execveat_lock, flags);
	if (smith_execveat_tasks[slot] == current) {
		smith_execveat_tasks[slot] = NULL;
		atomic_dec(&smith_execveat_inflight);
	}
	raw_spin_unlock_irqrestore(&smith_execveat_lock, flags);
}

static bool smith_in_execveat(void)
{
	unsigned long flags;
	bool found = false;
	int i;

	if (!atomic_read(&smith_execveat_inflight))
		return false;
	raw_spin_lock_irqsave(&smith_execveat_lock, flags);
	for (i = 0; i < SMITH_EXECVEAT_SLOTS && !found; i++)
		found = smith_execveat_tasks[i] == current;
	raw_spin_unlock_irqrestore(&smith_execveat_lock, flags);
	return found;
}

static void smith_exec_context(struct smith_rec *r)
{
	smith_rec_put_cwd(r);
	smith_rec_put_fd(r, SMITH_F_STDIN, 0);
	smith_rec_put_fd(r, SMITH_F_STDOUT, 1);
	smith_rec_put_tty(r);
}

/* cwd, stdin, stdout as smith_exec_context() puts them. */
static void smith_exec_plan_context(struct smith_rec_plan *plan)
{
	smith_rec_plan_cwd(plan);
	smith_rec_plan_fd(plan, SMITH_F_STDIN, 0);
	smith_rec_plan_fd(plan, SMITH_F_STDOUT, 1);
}

/* The identity of the file the exec loaded; zeros when there is none. */
static void smith_exec_put_id(struct smith_rec *r, const struct file *file)
{
	struct smith_exe_id id = { };

	if (file) {
		const struct inode *inode = file_inode(file);
		struct timespec64 mtime = smith_inode_mtime(inode);
		struct timespec64 ctime = smith_inode_ctime(inode);

		id.ino = inode->i_ino;
		id.size = i_size_read(inode);
		id.mtime_sec = mtime.tv_sec;
		id.mtime_nsec = mtime.tv_nsec;
		id.ctime_sec = ctime.tv_sec;
		id.ctime_nsec = ctime.tv_nsec;
		id.dev = new_encode_dev(inode->i_sb->s_dev);
	}
	smith_rec_put_fixed(r, SMITH_F_EXE_ID, &id, sizeof(id));
}

static u16 smith_exec_flags(void)
{
	u16 flags = 0;

	if (in_compat_syscall())
		flags |= SMITH_RF_COMPAT;
	if (smith_in_execveat())
		flags |= SMITH_RF_EXECVEAT;
	return flags;
}

static void smith_exec_tp(void *data, struct task_struct *p, pid_t old_pid,
			  struct linux_binprm *bprm)
{
	struct mm_struct *mm = current->mm;
	struct smith_rec_plan plan = { };
	unsigned long start = 0, end = 0;
	char tty[SMITH_TTY_NAME_LEN];
	u32 filename_len, tty_len;
	unsigned int hook;
	struct smith_rec *r;
	u16 flags;
	u64 t0, t1;

	if (!smith_recording())
		return;
	smith_hook_enter();
	t0 = smith_latency_start();
	flags = smith_exec_flags();
	hook = flags & SMITH_RF_EXECVEAT ? SMITH_HI_EXECVEAT : SMITH_HI_EXECVE;
	r = smith_rec_claim(hook);
	if (!r) {
		smith_hook_miss(hook);
		goto out;
	}
	/* Every field's size first, for a record built in the ring. */
	filename_len = strnlen(bprm->filename, SMITH_PATH_CAP + 1);
	if (mm) {
		start = READ_ONCE(mm->arg_start);
		end = READ_ONCE(mm->arg_end);
		if (end < start)
			end = start;
	}
	t1 = smith_step_start();
	tty_len = smith_tty_name(tty);
	smith_step_end(hook, SMITH_ST_TTY, t1);
	plan.extra = SMITH_FIELD_SIZE(sizeof(struct smith_exe_id)) +
		     SMITH_FIELD_SIZE(min_t(u32, filename_len, SMITH_PATH_CAP));
	if (mm)
		plan.extra += SMITH_FIELD_SIZE(min_t(unsigned long, end - start,
						     smith_params.argv_cap));
	if (tty_len)
		plan.extra += SMITH_FIELD_SIZE(tty_len);
	smith_exec_plan_context(&plan);
	smith_rec_start_plan(r, SMITH_EV_EXECVE, 0, &plan);
	r->ev->hdr.flags |= flags;
	smith_exec_put_id(r, bprm->file);
	smith_rec_put(r, SMITH_F_FILENAME, bprm->filename,
		      min_t(u32, filename_len, SMITH_PATH_CAP),
		      filename_len > SMITH_PATH_CAP ? SMITH_FF_TRUNCATED : 0);
	/* A fault cuts argv short: the rest of the ring's room is a pad. */
	if (mm)
		smith_rec_put_user_mem(r, SMITH_F_ARGV,
				       (const void __user *)start, end - start,
				       smith_params.argv_cap);
	smith_rec_put_plan(r, &plan);
	if (tty_len)
		smith_rec_put(r, SMITH_F_TTY, tty, tty_len, 0);
	smith_rec_submit(r);
out:
	smith_latency_end(hook, t0);
	smith_hook_exit();
}

static struct smith_tracepoint smith_exec_tracepoint = {
	.name = "sched_process_exec",
	.probe = smith_exec_tp,
};

/* Saved at entry, for a failure at return. */
struct smith_exec_call {
	const char __user *filename;
	const void __user *argv;
	int slot;			/* execveat: smith_execveat_tasks[] */
	bool compat;			/* 32-bit entry: 4-byte argv pointers */
};

static void smith_exec_failed(unsigned int hook, u16 flags,
			      const struct smith_exec_call *c, long ret)
{
	struct smith_rec *r;
	u64 t0 = smith_latency_start();

	r = smith_rec_begin(hook, SMITH_EV_EXECVE, ret);
	if (!r) {
		smith_hook_miss(hook);
		goto out;
	}
	r->ev->hdr.flags |= flags;
	smith_rec_put_common(r);
	smith_exec_put_id(r, NULL);
	smith_rec_put_user_str(r, SMITH_F_FILENAME, c->filename,
			       SMITH_PATH_CAP);
	smith_rec_put_user_argv(r, SMITH_F_ARGV, c->argv, c->compat,
				smith_params.argv_cap);
	smith_exec_context(r);
	smith_rec_submit(r);
out:
	smith_latency_end(hook, t0);
}

static const struct smith_sym smith_execve_syms[] = {
	{ SMITH_SYSCALL_SYM("execve"), true },
	{ "sys_execve", false },
	{ }
};

static const struct smith_sym smith_execveat_syms[] = {
	{ SMITH_SYSCALL_SYM("execveat"), true },
	{ "sys_execveat", false },
	{ }
};

/* The 32-bit entries (int $0x80, sysenter): argv of 4-byte pointers. */
static const struct smith_sym smith_execve32_syms[] = {
	{ SMITH_COMPAT_SYSCALL_SYM("execve"), true, true },
	{ }
};

static const struct smith_sym smith_execveat32_syms[] = {
	{ SMITH_COMPAT_SYSCALL_SYM("execveat"), true, true },
	{ }
};

/* execve(filename, argv, envp) through probe p. */
static int smith_execve_save(struct kretprobe_instance *ri,
			     struct pt_regs *regs,
			     const struct smith_kretprobe *p)
{
	struct smith_exec_call *c = (void *)ri->data;

	/* Non-zero: no instance kept, the return handler does not run. */
	if (!smith_recording())
		return 1;
	c->filename = (const char __user *)smith_sys_arg(p, regs, 0);
	c->argv = (const void __user *)smith_sys_arg(p, regs, 1);
	c->compat = smith_sys_compat(p);
	return 0;
}

/* execveat(dirfd, filename, argv, envp, flags) through probe p. */
static int smith_execveat_save(struct kretprobe_instance *ri,
			       struct pt_regs *regs,
			       const struct smith_kretprobe *p)
{
	struct smith_exec_call *c = (void *)ri->data;

	if (!smith_recording())
		return 1;
	c->filename = (const char __user *)smith_sys_arg(p, regs, 1);
	c->argv = (const void __user *)smith_sys_arg(p, regs, 2);
	c->compat = smith_sys_compat(p);
	c->slot = smith_execveat_mark();
	return 0;
}

static int smith_execve_ret(struct kretprobe_instance *ri,
			    struct pt_regs *regs)
{
	long ret = regs_return_value(regs);

	const struct smith_exec_call *c = (void *)ri->data;

	if (ret >= 0 || !smith_recording())
		return 0;
	smith_hook_enter();
	smith_exec_failed(SMITH_HI_EXECVE, c->compat ? SMITH_RF_COMPAT : 0,
			  c, ret);
	smith_hook_exit();
	return 0;
}

static int smith_execveat_ret(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct smith_exec_call *c = (void *)ri->data;
	long ret = regs_return_value(regs);

	smith_execveat_unmark(c->slot);
	if (ret >= 0 || !smith_recording())
		return 0;
	smith_hook_enter();
	smith_exec_failed(SMITH_HI_EXECVEAT, SMITH_RF_EXECVEAT |
			  (c->compat ? SMITH_RF_COMPAT : 0), c, ret);
	smith_hook_exit();
	return 0;
}

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_execve_krp, SMITH_HI_EXECVE,
			       smith_execve_syms,
			       struct smith_exec_call, smith_execve_save,
			       smith_execve_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_execveat_krp, SMITH_HI_EXECVEAT,
			       smith_execveat_syms,
			       struct smith_exec_call, smith_execveat_save,
			       smith_execveat_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_execve32_krp, SMITH_HI_EXECVE,
			       smith_execve32_syms,
			       struct smith_exec_call, smith_execve_save,
			       smith_execve_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_execveat32_krp, SMITH_HI_EXECVEAT,
			       smith_execveat32_syms,
			       struct smith_exec_call, smith_execveat_save,
			       smith_execveat_ret);

/*
 * An exec holds its instance while the binary is read and mapped, which
 * may wait for the disk, not for the network: a few per CPU suffice.
 */
#define SMITH_EXEC_MAXACTIVE_PER_CPU	16
#define SMITH_EXEC_MAXACTIVE_CAP	1024

/* Returns how many of the two hooks attached. */
int smith_exec_hooks_init(void)
{
	int maxactive = smith_maxactive(SMITH_EXEC_MAXACTIVE_PER_CPU,
					SMITH_EXEC_MAXACTIVE_CAP);
	int tp_err, err, n = 0;

	tp_err = smith_tracepoint_register(&smith_exec_tracepoint);
	if (tp_err)
		pr_warn("tracepoint sched_process_exec: error %d, successful execs not recorded\n",
			tp_err);

	err = smith_kretprobe_register(&smith_execve_krp, maxactive);
	if (err)
		pr_warn("kretprobe execve: error %d, failed execve not recorded\n",
			err);
	/* execve is attached when both its parts are. */
	smith_hook_attached(SMITH_HI_EXECVE, tp_err ? tp_err : err);
	n += !tp_err && !err;

	err = smith_kretprobe_register(&smith_execveat_krp, maxactive);
	if (err)
		pr_warn("kretprobe execveat: error %d, failed execveat not recorded\n",
			err);
	smith_hook_attached(SMITH_HI_EXECVEAT, tp_err ? tp_err : err);
	n += !tp_err && !err;

	/* Without the 32-bit entries their failures go unseen: said, kept. */
	if (SMITH_ARCH_COMPAT_PROBES) {
		err = smith_kretprobe_register(&smith_execve32_krp, maxactive);
		if (err)
			pr_warn("kretprobe 32-bit execve: error %d, its failures not recorded\n",
				err);
		err = smith_kretprobe_register(&smith_execveat32_krp,
					       maxactive);
		if (err)
			pr_warn("kretprobe 32-bit execveat: error %d, its failures not recorded\n",
				err);
	}

	/* A part that attached alone still records: keep it, count it. */
	if (!n && (!tp_err || smith_execve_krp.sym || smith_execveat_krp.sym))
		n = 1;
	return n;
}

void smith_exec_hooks_exit(void)
{
	smith_tracepoint_unregister(&smith_exec_tracepoint);
}

void smith_exec_hooks_missed(u64 missed[])
{
	smith_kretprobe_missed(&smith_execve_krp, missed);
	smith_kretprobe_missed(&smith_execveat_krp, missed);
	smith_kretprobe_missed(&smith_execve32_krp, missed);
	smith_kretprobe_missed(&smith_execveat32_krp, missed);
}
