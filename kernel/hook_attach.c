// SPDX-License-Identifier: GPL-2.0
/*
 * hook_attach.c - attaching and detaching every hook: kretprobes on the
 * first system call symbol of a list that the running kernel has,
 * tracepoints found by name, and the order of init and exit.
 */
#include <linux/atomic.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

#include "hooks.h"
#include "record.h"
#include "transport.h"

/*
 * Every kretprobe attached, so that exit unregisters them in one call: one
 * RCU grace period for all instead of one each.  Written at init and exit
 * only, which the module loader serialises.
 */
#define SMITH_MAX_KRETPROBES	12

static struct kretprobe *smith_kretprobes[SMITH_MAX_KRETPROBES];
static struct smith_kretprobe *smith_kretprobe_hooks[SMITH_MAX_KRETPROBES];
static unsigned int smith_nr_kretprobes;

int smith_kretprobe_register(struct smith_kretprobe *p, int maxactive)
{
	const struct smith_sym *s;
	int err = -ENOENT;

	if (WARN_ON_ONCE(smith_nr_kretprobes >= SMITH_MAX_KRETPROBES))
		return -ENOSPC;

	for (s = p->syms; s->name; s++) {
		memset(&p->rp.kp, 0, sizeof(p->rp.kp));
		p->rp.kp.symbol_name = s->name;
		p->rp.maxactive = maxactive;
		p->rp.nmissed = 0;
		/* The handlers read sym: set before they can run. */
		p->sym = s;
		err = register_kretprobe(&p->rp);
		if (!err) {
			smith_kretprobes[smith_nr_kretprobes] = &p->rp;
			smith_kretprobe_hooks[smith_nr_kretprobes++] = p;
			return 0;
		}
	}
	p->sym = NULL;
	return err;
}

void smith_kretprobe_missed(const struct smith_kretprobe *p, u64 missed[])
{
	if (p->sym)
		missed[p->hook] += READ_ONCE(p->rp.nmissed);
}

/* Entry kprobes, unregistered with the kretprobes.  Init/exit only. */
#define SMITH_MAX_KPROBES	4

static struct kprobe *smith_kprobes[SMITH_MAX_KPROBES];
static unsigned int smith_nr_kprobes;

int smith_kprobe_register(struct kprobe *p)
{
	int err;

	if (WARN_ON_ONCE(smith_nr_kprobes >= SMITH_MAX_KPROBES))
		return -ENOSPC;
	p->addr = NULL;
	p->flags = 0;
	p->nmissed = 0;
	err = register_kprobe(p);
	if (!err)
		smith_kprobes[smith_nr_kprobes++] = p;
	return err;
}

static void smith_kretprobes_unregister_all(void)
{
	unsigned int i;

	/*
	 * unregister_kprobes() and unregister_kretprobes() each end in an
	 * RCU grace period; the kprobes' comes first, the kretprobes' ends
	 * them both.
	 */
	if (smith_nr_kprobes) {
		unregister_kprobes(smith_kprobes, smith_nr_kprobes);
		for (i = 0; i < smith_nr_kprobes; i++)
			smith_kprobes[i] = NULL;
		smith_nr_kprobes = 0;
	}
	if (!smith_nr_kretprobes)
		return;
	/* Ends with an RCU grace period: no handler runs after this. */
	unregister_kretprobes(smith_kretprobes, smith_nr_kretprobes);
	for (i = 0; i < smith_nr_kretprobes; i++) {
		smith_kretprobe_hooks[i]->sym = NULL;
		smith_kretprobes[i] = NULL;
		smith_kretprobe_hooks[i] = NULL;
	}
	smith_nr_kretprobes = 0;
}

static void smith_tp_match(struct tracepoint *tp, void *priv)
{
	struct smith_tracepoint *t = priv;

	if (!strcmp(tp->name, t->name))
		t->tp = tp;
}

int smith_tracepoint_register(struct smith_tracepoint *t)
{
	int err;

	t->tp = NULL;
	for_each_kernel_tracepoint(smith_tp_match, t);
	if (!t->tp)
		return -ENOENT;
	err = tracepoint_probe_register(t->tp, t->probe, NULL);
	if (err)
		t->tp = NULL;
	return err;
}

/* The caller ends with tracepoint_synchronize_unregister(). */
void smith_tracepoint_unregister(struct smith_tracepoint *t)
{
	if (!t->tp)
		return;
	tracepoint_probe_unregister(t->tp, t->probe, NULL);
	t->tp = NULL;
}

/* Probe misses already counted in the meta page. */
static atomic64_t smith_missed_folded = ATOMIC64_INIT(0);

int smith_hooks_init(void)
{
	int err, attached = 0;

	atomic64_set(&smith_missed_folded, 0);
	err = smith_record_init();
	if (err) {
		pr_err("no memory for the per-CPU record buffers\n");
		return err;
	}
	attached += smith_exec_hooks_init();
	attached += smith_connect_hooks_init();
	attached += smith_module_hooks_init();
	if (!attached) {
		pr_err("no hook could be attached\n");
		smith_hooks_exit();
		smith_record_exit();
		return -ENOENT;
	}
	return 0;
}

void smith_hooks_exit(void)
{
	smith_exec_hooks_exit();
	smith_kretprobes_unregister_all();
	/* The notifier may run until it is unregistered, not after. */
	smith_module_hooks_exit();
	/* Tracepoint probes may still run until this grace period ends. */
	tracepoint_synchronize_unregister();
	/* The per-CPU buffers go after smith_wait_hooks_idle(): main.c. */
}

void smith_hooks_missed(u64 missed[SMITH_HOOK_COUNT])
{
	smith_exec_hooks_missed(missed);
	smith_connect_hooks_missed(missed);
	smith_module_hooks_missed(missed);
}

void smith_hooks_fold_missed(void)
{
	u64 missed[SMITH_HOOK_COUNT] = { 0 };
	s64 total = 0, old;
	int i;

	smith_hooks_missed(missed);
	for (i = 0; i < SMITH_HOOK_COUNT; i++)
		total += missed[i];
	old = atomic64_read(&smith_missed_folded);
	/* One winner per increase; a loser's delta is the winner's. */
	if (total > old &&
	    atomic64_cmpxchg(&smith_missed_folded, old, total) == old)
		smith_count_missed(total - old);
}

static DEFINE_PER_CPU(unsigned long, smith_fold_tick);

void smith_hooks_fold_missed_tick(void)
{
	unsigned long now = jiffies;

	/* A race on this CPU only folds twice or a tick later. */
	if (this_cpu_read(smith_fold_tick) == now)
		return;
	this_cpu_write(smith_fold_tick, now);
	smith_hooks_fold_missed();
}
