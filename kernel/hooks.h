/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hooks.h - what the hook files share: the probe registration helpers of
 * hook_attach.c and each hook file's init/exit.  main.c sees only
 * smith_hooks_init(), smith_hooks_exit() and smith_hooks_missed(), declared
 * in transport.h.
 *
 * What differs per architecture (syscall entry names, where the arguments
 * are) is in arch.h.
 */
#ifndef _SMITH_HOOKS_H
#define _SMITH_HOOKS_H

#include <linux/compat.h>
#include <linux/kprobes.h>
#include <linux/ptrace.h>
#include <linux/types.h>

#include "arch.h"

/*
 * A system call entry point to probe: the wrapper SMITH_SYSCALL_SYM(NAME)
 * taking the user's pt_regs, or on older kernels sys_NAME(args...) (arch.h).
 */
struct smith_sym {
	const char *name;
	bool wrapper;		/* takes the user pt_regs as its argument */
	bool compat;		/* a 32-bit entry: arch.h's compat registers */
};

/*
 * A kretprobe on the first symbol of a list that the kernel has;
 * nr_missed of the probe is the hook's miss count.
 */
struct smith_kretprobe {
	struct kretprobe rp;
	const struct smith_sym *syms;	/* tried in order, NULL-terminated */
	const struct smith_sym *sym;	/* the one attached, or NULL */
	unsigned int hook;		/* SMITH_HI_* */
};

/*
 * Defines the kretprobe name of hook hi on the first of symbols: its
 * entry and return handlers, and the type of the state an instance keeps
 * between them.
 */
#define SMITH_DEFINE_KRETPROBE(name, hi, symbols, call, entry, ret)	\
	static struct smith_kretprobe name = {				\
		.rp = {							\
			.entry_handler = entry,				\
			.handler = ret,					\
			.data_size = sizeof(call),			\
		},							\
		.syms = symbols,					\
		.hook = hi,						\
	}

/*
 * SMITH_DEFINE_KRETPROBE for a system call entry whose entry handler is
 * save(ri, regs, &name): one save function serves the native and the
 * 32-bit entries, which find their arguments through the probe.
 */
#define SMITH_DEFINE_SYSCALL_KRETPROBE(name, hi, symbols, call, save, ret) \
	static struct smith_kretprobe name;				\
	static int name##_entry(struct kretprobe_instance *ri,		\
				struct pt_regs *regs)			\
	{								\
		return save(ri, regs, &name);				\
	}								\
	SMITH_DEFINE_KRETPROBE(name, hi, symbols, call, name##_entry, ret)

/* Attach; smith_hooks_exit() detaches every kretprobe attached, at once. */
int smith_kretprobe_register(struct smith_kretprobe *p, int maxactive);

/* Adds the calls p could not see to missed[p->hook], if p is attached. */
void smith_kretprobe_missed(const struct smith_kretprobe *p, u64 missed[]);

/*
 * An entry kprobe on p->symbol_name, detached with the kretprobes; the
 * hook file counts its nmissed.
 */
int smith_kprobe_register(struct kprobe *p);

/*
 * Argument n (0-5) of a probed kernel function (not a syscall wrapper),
 * at its entry: the architecture's C calling convention.
 */
static inline unsigned long smith_func_arg(struct pt_regs *regs,
					   unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

/*
 * Whether the probed call came from a 32-bit task: through a compat entry,
 * or (arm64) through a native entry that the AArch32 table shares.
 */
static inline bool smith_sys_compat(const struct smith_kretprobe *p)
{
	return p->sym->compat ||
	       (SMITH_ARCH_COMPAT_SHARES_NATIVE && in_compat_syscall());
}

/* Argument n (0-5) of the probed syscall, read at entry. */
static inline unsigned long smith_sys_arg(const struct smith_kretprobe *p,
					  const struct pt_regs *regs,
					  unsigned int n)
{
	const struct pt_regs *u;

	if (!p->sym->wrapper)
		return smith_arch_call_arg(regs, n);
	u = smith_arch_wrapper_regs(regs);
	if (smith_sys_compat(p))
		return smith_arch_compat_syscall_arg(u, n);
	return smith_arch_syscall_arg(u, n);
}

/*
 * kretprobe.maxactive: instances of a probe that may be in flight at once.
 * A call that finds none free is missed (and counted).  Blocking connects
 * hold theirs for a whole TCP handshake, so connect gets many.
 */
static inline int smith_maxactive(unsigned int per_cpu, int cap)
{
	return min_t(int, per_cpu * num_possible_cpus(), cap);
}

/* Tracepoints are found by name: their symbols are not exported. */
struct smith_tracepoint {
	const char *name;
	void *probe;
	struct tracepoint *tp;		/* set once registered */
};

int smith_tracepoint_register(struct smith_tracepoint *t);
void smith_tracepoint_unregister(struct smith_tracepoint *t);

/*
 * Per hook file: init attaches and reports each hook with
 * smith_hook_attached(), returning how many attached; exit detaches what
 * is not a kretprobe.
 */
int smith_exec_hooks_init(void);
void smith_exec_hooks_exit(void);
void smith_exec_hooks_missed(u64 missed[]);

int smith_connect_hooks_init(void);
void smith_connect_hooks_missed(u64 missed[]);

int smith_module_hooks_init(void);
void smith_module_hooks_exit(void);
void smith_module_hooks_missed(u64 missed[]);

#endif /* _SMITH_HOOKS_H */
