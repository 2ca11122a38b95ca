// SPDX-License-Identifier: GPL-2.0
/*
 * stats.c - counters and the latency self-measurement, read by ioctl
 * (SMITH_IOC_GET_STATS, SMITH_IOC_GET_LATENCY) and as text in debugfs
 * (/sys/kernel/debug/smith/{stats,latency}).
 *
 * Per-hook counters and histograms are per CPU, so a hook only touches
 * its own CPU's cache lines; readers sum over CPUs.  A sum read while
 * hooks run is not a snapshot of one instant, only close to one.
 *
 * Latency histogram: log-linear buckets.  Values below 16 ns have one
 * bucket each; above, each power of two is split into 16 equal buckets,
 * so a reported percentile is within 1/16 (6.25%) of the true value.
 * Values from 2^40 ns (18 minutes) up share the last bucket.
 */
#include <linux/bitops.h>
#include <linux/debugfs.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/string.h>

#include "smith.h"
#include "record.h"
#include "transport.h"

DEFINE_PER_CPU(struct smith_hook_stats[SMITH_HOOK_COUNT], smith_hook_pcpu);

#define SMITH_LAT_SUB_BITS	4
#define SMITH_LAT_SUB		(1u << SMITH_LAT_SUB_BITS)
#define SMITH_LAT_MAX_BITS	40
#define SMITH_LAT_BUCKETS \
	(SMITH_LAT_SUB + (SMITH_LAT_MAX_BITS - SMITH_LAT_SUB_BITS) * SMITH_LAT_SUB)

struct smith_lat_hist {
	u64 buckets[SMITH_LAT_BUCKETS];
	u64 max;
};

static struct smith_lat_hist __percpu *smith_lat[SMITH_HOOK_COUNT];

/* Bitmasks of SMITH_HOOK_*; written at load only, before the device. */
static u32 smith_hooks_ok;
static u32 smith_hooks_bad;

static const char *const smith_hook_names[SMITH_HOOK_COUNT] = {
	[SMITH_HI_EXECVE]	= "execve",
	[SMITH_HI_EXECVEAT]	= "execveat",
	[SMITH_HI_CONNECT]	= "connect",
	[SMITH_HI_INIT_MODULE]	= "init_module",
	[SMITH_HI_FINIT_MODULE]	= "finit_module",
};

static struct dentry *smith_debugfs_dir;

void smith_hook_attached(unsigned int hook, int err)
{
	if (hook >= SMITH_HOOK_COUNT)
		return;
	if (err) {
		smith_hooks_bad |= BIT(hook);
		smith_hooks_ok &= ~BIT(hook);
		pr_warn("hook %s not attached: error %d\n",
			smith_hook_names[hook], err);
	} else {
		smith_hooks_ok |= BIT(hook);
		smith_hooks_bad &= ~BIT(hook);
	}
}

static unsigned int smith_lat_bucket(u64 ns)
{
	unsigned int e;

	if (ns < SMITH_LAT_SUB)
		return ns;
	e = ilog2(ns);
	if (e >= SMITH_LAT_MAX_BITS)
		return SMITH_LAT_BUCKETS - 1;
	return SMITH_LAT_SUB + (e - SMITH_LAT_SUB_BITS) * SMITH_LAT_SUB +
	       ((ns >> (e - SMITH_LAT_SUB_BITS)) & (SMITH_LAT_SUB - 1));
}

/* The middle of bucket b, the value a percentile in it is reported as. */
static u64 smith_lat_value(unsigned int b)
{
	unsigned int e, sub;
	u64 lo, width;

	if (b < SMITH_LAT_SUB)
		return b;
	e = (b - SMITH_LAT_SUB) / SMITH_LAT_SUB + SMITH_LAT_SUB_BITS;
	sub = (b - SMITH_LAT_SUB) % SMITH_LAT_SUB;
	width = 1ull << (e - SMITH_LAT_SUB_BITS);
	lo = (1ull << e) + sub * width;
	return lo + width / 2;
}

void smith_hook_latency_record(unsigned int hook, u64 ns)
{
	struct smith_lat_hist __percpu *h;

	if (hook >= SMITH_HOOK_COUNT)
		return;
	h = smith_lat[hook];
	this_cpu_inc(h->buckets[smith_lat_bucket(ns)]);
	/* A racing update on this CPU may lose a max; good enough. */
	if (ns > this_cpu_read(h->max))
		this_cpu_write(h->max, ns);
}

int smith_stats_init(void)
{
	int i;

	BUILD_BUG_ON(SMITH_HI_FINIT_MODULE + 1 != SMITH_HOOK_COUNT);
	BUILD_BUG_ON(BIT(SMITH_HI_EXECVE) != SMITH_HOOK_EXECVE);
	BUILD_BUG_ON(BIT(SMITH_HI_EXECVEAT) != SMITH_HOOK_EXECVEAT);
	BUILD_BUG_ON(BIT(SMITH_HI_CONNECT) != SMITH_HOOK_CONNECT);
	BUILD_BUG_ON(BIT(SMITH_HI_INIT_MODULE) != SMITH_HOOK_INIT_MODULE);
	BUILD_BUG_ON(BIT(SMITH_HI_FINIT_MODULE) != SMITH_HOOK_FINIT_MODULE);

	for (i = 0; i < SMITH_HOOK_COUNT; i++) {
		smith_lat[i] = alloc_percpu(struct smith_lat_hist);
		if (!smith_lat[i]) {
			smith_stats_exit();
			return -ENOMEM;
		}
	}
	return 0;
}

void smith_stats_exit(void)
{
	int i;

	for (i = 0; i < SMITH_HOOK_COUNT; i++) {
		free_percpu(smith_lat[i]);
		smith_lat[i] = NULL;
	}
}

void smith_stats_get(struct smith_stats *st)
{
	const struct smith_ring_meta *m = smith_shm_ring()->meta;
	const struct smith_ring_consumer *c = smith_shm_ring()->cons;
	u64 missed[SMITH_HOOK_COUNT] = { 0 };
	int cpu, i;

	memset(st, 0, sizeof(*st));
	smith_hooks_fold_missed();
	st->written = READ_ONCE(m->written);
	st->dropped_full = READ_ONCE(m->dropped_full);
	st->dropped_too_large = READ_ONCE(m->dropped_too_large);
	st->dropped_fault = READ_ONCE(m->dropped_fault);
	st->truncated = READ_ONCE(m->truncated);
	st->lost_records = READ_ONCE(m->lost_records);
	st->discarded = READ_ONCE(m->discarded);
	st->producer_pos = smp_load_acquire(&m->producer_pos);
	st->consumer_pos = READ_ONCE(c->consumer_pos);
	st->netlink_sent = smith_netlink_sent();
	st->netlink_failed = smith_netlink_failed();

	for_each_possible_cpu(cpu) {
		const struct smith_hook_stats *h = per_cpu(smith_hook_pcpu, cpu);

		for (i = 0; i < SMITH_HOOK_COUNT; i++) {
			st->hooks[i].events += READ_ONCE(h[i].events);
			st->hooks[i].missed += READ_ONCE(h[i].missed);
			st->hooks[i].faults += READ_ONCE(h[i].faults);
			st->hooks[i].truncated += READ_ONCE(h[i].truncated);
		}
	}
	/* Probe misses are counted by the kprobe core, not by our hooks. */
	smith_hooks_missed(missed);
	for (i = 0; i < SMITH_HOOK_COUNT; i++)
		st->hooks[i].missed += missed[i];
	/* Both kinds, as folded into the meta page and the stream. */
	st->hook_missed = READ_ONCE(m->hook_missed);
}

void smith_info_get(struct smith_info *info)
{
	const struct smith_ring *r = smith_shm_ring();

	memset(info, 0, sizeof(*info));
	info->abi_major = SMITH_ABI_MAJOR;
	info->abi_minor = SMITH_ABI_MINOR;
	info->transport = smith_params.send_type;
	info->data_size = r->mask + 1;
	info->page_size = PAGE_SIZE;
	info->max_record = r->max_record;
	info->argv_cap = smith_params.argv_cap;
	info->hooks_attached = smith_hooks_ok;
	info->hooks_failed = smith_hooks_bad;
	strscpy(info->version, SMITH_VERSION, sizeof(info->version));
}

int smith_latency_get(struct smith_latency *lat)
{
	u64 rank[3], total = 0, max = 0, seen = 0;
	u64 *out[3] = { &lat->median_ns, &lat->p95_ns, &lat->p99_ns };
	static const unsigned int pct[3] = { 50, 95, 99 };
	struct smith_lat_hist __percpu *h;
	unsigned int b, k = 0;
	int cpu;

	if (lat->hook >= SMITH_HOOK_COUNT)
		return -EINVAL;
	h = smith_lat[lat->hook];
	lat->_pad = 0;

	for_each_possible_cpu(cpu) {
		const struct smith_lat_hist *c = per_cpu_ptr(h, cpu);

		for (b = 0; b < SMITH_LAT_BUCKETS; b++)
			total += READ_ONCE(c->buckets[b]);
		max = max_t(u64, max, READ_ONCE(c->max));
	}
	lat->count = total;
	lat->max_ns = max;
	lat->median_ns = lat->p95_ns = lat->p99_ns = 0;
	if (!total)
		return 0;

	/* The smallest value v with at least pct% of the samples <= v. */
	for (k = 0; k < 3; k++)
		rank[k] = DIV_ROUND_UP_ULL(total * pct[k], 100);
	k = 0;
	for (b = 0; b < SMITH_LAT_BUCKETS && k < 3; b++) {
		for_each_possible_cpu(cpu)
			seen += READ_ONCE(per_cpu_ptr(h, cpu)->buckets[b]);
		while (k < 3 && seen >= rank[k])
			*out[k++] = min_t(u64, smith_lat_value(b), max);
	}
	/* Samples added while summing: the rest are at most max. */
	while (k < 3)
		*out[k++] = max;
	return 0;
}

void smith_latency_reset(void)
{
	int cpu, i;

	/* Racing samples may survive or be lost; a reset is approximate. */
	for (i = 0; i < SMITH_HOOK_COUNT; i++)
		for_each_possible_cpu(cpu)
			memset(per_cpu_ptr(smith_lat[i], cpu), 0,
			       sizeof(struct smith_lat_hist));
}

static int smith_stats_show(struct seq_file *s, void *unused)
{
	struct smith_stats st;
	struct smith_info info;
	int i;

	smith_stats_get(&st);
	smith_info_get(&info);
	seq_printf(s, "version %s\nabi %u.%u\ntransport %s\n", info.version,
		   info.abi_major, info.abi_minor,
		   info.transport == SMITH_TRANSPORT_NETLINK ? "netlink" : "shm");
	seq_printf(s, "data_size %llu\nargv_cap %u\nrecording %d\n",
		   info.data_size, info.argv_cap, smith_recording());
	seq_printf(s, "written %llu\ndropped_full %llu\ndropped_too_large %llu\n",
		   st.written, st.dropped_full, st.dropped_too_large);
	seq_printf(s, "dropped_fault %llu\ntruncated %llu\nhook_missed %llu\n",
		   st.dropped_fault, st.truncated, st.hook_missed);
	seq_printf(s, "lost_records %llu\ndiscarded %llu\n",
		   st.lost_records, st.discarded);
	seq_printf(s, "netlink_sent %llu\nnetlink_failed %llu\n",
		   st.netlink_sent, st.netlink_failed);
	seq_printf(s, "producer_pos %llu\nconsumer_pos %llu\n",
		   st.producer_pos, st.consumer_pos);
	seq_puts(s, "hook attached events missed faults truncated\n");
	for (i = 0; i < SMITH_HOOK_COUNT; i++)
		seq_printf(s, "%s %s %llu %llu %llu %llu\n", smith_hook_names[i],
			   info.hooks_attached & BIT(i) ? "yes" :
			   info.hooks_failed & BIT(i) ? "failed" : "no",
			   st.hooks[i].events, st.hooks[i].missed,
			   st.hooks[i].faults, st.hooks[i].truncated);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(smith_stats);

static int smith_latency_show(struct seq_file *s, void *unused)
{
	struct smith_latency lat;
	unsigned int i;

	seq_printf(s, "measuring %d\n", READ_ONCE(smith_params.measure_latency));
	seq_puts(s, "hook count median_ns p95_ns p99_ns max_ns\n");
	for (i = 0; i < SMITH_HOOK_COUNT; i++) {
		lat.hook = i;
		if (smith_latency_get(&lat))
			continue;
		seq_printf(s, "%s %llu %llu %llu %llu %llu\n",
			   smith_hook_names[i], lat.count, lat.median_ns,
			   lat.p95_ns, lat.p99_ns, lat.max_ns);
	}
	return 0;
}

/*
 * A debugfs text file that any write resets (echo 1 > FILE): latency and,
 * with SMITH_STEPS, steps.  i_private says which.
 */
struct smith_resettable {
	int (*show)(struct seq_file *s, void *unused);
	void (*reset)(void);
};

static int smith_resettable_open(struct inode *inode, struct file *file)
{
	const struct smith_resettable *r = inode->i_private;

	return single_open(file, r->show, NULL);
}

static ssize_t smith_resettable_write(struct file *file,
				      const char __user *buf, size_t len,
				      loff_t *ppos)
{
	const struct smith_resettable *r = file_inode(file)->i_private;

	r->reset();
	return len;
}

static const struct file_operations smith_resettable_fops = {
	.owner		= THIS_MODULE,
	.open		= smith_resettable_open,
	.read		= seq_read,
	.write		= smith_resettable_write,
	.llseek		= seq_lseek,
	.release	= single_release,
};

static struct smith_resettable smith_latency_file = {
	.show	= smith_latency_show,
	.reset	= smith_latency_reset,
};

#ifdef SMITH_STEPS
static const char *const smith_step_names[SMITH_ST_COUNT] = {
	[SMITH_ST_BEGIN]	= "begin",
	[SMITH_ST_EXE]		= "exe",
	[SMITH_ST_NODENAME]	= "nodename",
	[SMITH_ST_CWD]		= "cwd",
	[SMITH_ST_FD]		= "fd",
	[SMITH_ST_TTY]		= "tty",
	[SMITH_ST_USER]		= "user",
	[SMITH_ST_KVAL]		= "kval",
	[SMITH_ST_SUBMIT]	= "submit",
};

/* "hook step calls total_ns" for every step that ran. */
static int smith_steps_show(struct seq_file *s, void *unused)
{
	u64 ns[SMITH_ST_COUNT], calls[SMITH_ST_COUNT];
	unsigned int h, i;

	seq_puts(s, "hook step calls total_ns\n");
	for (h = 0; h < SMITH_HOOK_COUNT; h++) {
		smith_steps_get(h, ns, calls);
		for (i = 0; i < SMITH_ST_COUNT; i++)
			if (calls[i])
				seq_printf(s, "%s %s %llu %llu\n",
					   smith_hook_names[h],
					   smith_step_names[i], calls[i],
					   ns[i]);
	}
	return 0;
}

static struct smith_resettable smith_steps_file = {
	.show	= smith_steps_show,
	.reset	= smith_steps_reset,
};
#endif

/* debugfs is for humans; the module works without it. */
int smith_debugfs_init(void)
{
	smith_debugfs_dir = debugfs_create_dir(SMITH_DEVICE_NAME, NULL);
	if (IS_ERR_OR_NULL(smith_debugfs_dir)) {
		smith_debugfs_dir = NULL;
		return 0;
	}
	debugfs_create_file("stats", 0400, smith_debugfs_dir, NULL,
			    &smith_stats_fops);
	debugfs_create_file("latency", 0600, smith_debugfs_dir,
			    &smith_latency_file, &smith_resettable_fops);
#ifdef SMITH_STEPS
	debugfs_create_file("steps", 0600, smith_debugfs_dir,
			    &smith_steps_file, &smith_resettable_fops);
#endif
	return 0;
}

void smith_debugfs_exit(void)
{
	debugfs_remove_recursive(smith_debugfs_dir);
	smith_debugfs_dir = NULL;
}
