// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - module parameters, load and unload.
 *
 * Load order: validate parameters, counters, ring memory, netlink socket
 * (send_type=1), hooks, debugfs, /dev/smith.  Recording starts only when a
 * reader attaches (an open of /dev/smith, or a netlink hello).  Unload
 * runs in reverse and is safe with hooks in flight: see transport.h.
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "smith.h"
#include "record.h"
#include "transport.h"

struct smith_params smith_params = {
	.argv_cap	= SMITH_ARGV_CAP_DEFAULT,
	.send_type	= SMITH_TRANSPORT_SHM,
};

static unsigned long ring_size = SMITH_RING_DEFAULT_SIZE;
module_param(ring_size, ulong, 0444);
MODULE_PARM_DESC(ring_size,
		 "bytes of ring data: power of two, 64 KiB..256 MiB (default 2 MiB)");

module_param_named(send_type, smith_params.send_type, uint, 0444);
MODULE_PARM_DESC(send_type, "transport: 1 netlink, 2 shared memory (default 2)");

module_param_named(argv_cap, smith_params.argv_cap, uint, 0444);
MODULE_PARM_DESC(argv_cap, "bytes of argv kept per exec, 256..32768 (default 4096)");

bool smith_record_without_reader = true;
module_param_named(record_without_reader, smith_record_without_reader, bool, 0444);
MODULE_PARM_DESC(record_without_reader,
		 "keep recording while the reader is away once one attached (default Y); N records only while a reader is attached");

module_param_named(measure_latency, smith_params.measure_latency, bool, 0644);
MODULE_PARM_DESC(measure_latency, "measure per-hook latency histograms (default N)");

module_param_named(kernel_print, smith_params.kernel_print, bool, 0644);
MODULE_PARM_DESC(kernel_print, "log every record, rate-limited; debugging only (default N)");

/* Read-only: a running sensor cannot be switched to accept forged records. */
module_param_named(test_records, smith_params.test_records, bool, 0444);
MODULE_PARM_DESC(test_records, "allow SMITH_IOC_EMIT_TEST, which writes test records into the stream; tests and benchmarks only (default N)");

static int __init smith_check_params(void)
{
	if (!is_power_of_2(ring_size) || ring_size < SMITH_RING_MIN_SIZE ||
	    ring_size > SMITH_RING_MAX_SIZE || ring_size % PAGE_SIZE) {
		pr_err("ring_size=%lu invalid: need a power of two of whole pages between %u and %u\n",
		       ring_size, SMITH_RING_MIN_SIZE, SMITH_RING_MAX_SIZE);
		return -EINVAL;
	}
	if (smith_params.send_type != SMITH_TRANSPORT_NETLINK &&
	    smith_params.send_type != SMITH_TRANSPORT_SHM) {
		pr_err("send_type=%u invalid: 1 (netlink) or 2 (shared memory)\n",
		       smith_params.send_type);
		return -EINVAL;
	}
	/*
	 * Netlink allocates each message in the hook, with preemption
	 * disabled: PREEMPT_RT's allocator may sleep there.
	 */
	if (IS_ENABLED(CONFIG_PREEMPT_RT) &&
	    smith_params.send_type == SMITH_TRANSPORT_NETLINK) {
		pr_err("send_type=1 (netlink) is not available on PREEMPT_RT kernels: use 2 (shared memory)\n");
		return -EOPNOTSUPP;
	}
	if (smith_params.argv_cap < SMITH_ARGV_CAP_MIN ||
	    smith_params.argv_cap > SMITH_ARGV_CAP_MAX) {
		pr_err("argv_cap=%u invalid: need %u..%u\n",
		       smith_params.argv_cap, SMITH_ARGV_CAP_MIN,
		       SMITH_ARGV_CAP_MAX);
		return -EINVAL;
	}
	return 0;
}

/*
 * After the probes are gone: free the per-CPU record buffers, unless the
 * in-flight count says a handler may still use them (it cannot, by
 * construction: transport.h, "Safe unload"; they are leaked then, with
 * the warning of smith_wait_hooks_idle()).  Returns whether memory the
 * handlers write is being leaked.
 */
static bool smith_free_record_buffers(void)
{
	if (!smith_wait_hooks_idle())
		return true;
	smith_record_exit();
	return false;
}

static int __init smith_init(void)
{
	bool leak = false;
	int err;

	err = smith_check_params();
	if (err)
		return err;
	err = smith_stats_init();
	if (err)
		return err;
	err = smith_transport_init(ring_size);
	if (err)
		goto out_stats;
	if (smith_params.send_type == SMITH_TRANSPORT_NETLINK) {
		err = smith_netlink_init();
		if (err)
			goto out_transport;
	}
	/* Hooks attach before the device exists: no reader, not recording. */
	err = smith_hooks_init();
	if (err) {
		pr_err("no hook could be attached (error %d)\n", err);
		goto out_netlink;
	}
	smith_debugfs_init();
	/* Last: once /dev/smith exists a reader may attach. */
	err = smith_device_init();
	if (err)
		goto out_hooks;
	pr_info("loaded, version %s, %s transport, ring %lu bytes\n",
		SMITH_VERSION,
		smith_params.send_type == SMITH_TRANSPORT_SHM ? "shm" : "netlink",
		ring_size);
	return 0;

out_hooks:
	smith_debugfs_exit();
	smith_recording_stop();
	smith_hooks_exit();
	leak = smith_free_record_buffers();
out_netlink:
	smith_recording_stop();
	smith_netlink_exit();
out_transport:
	smith_transport_exit(leak);
out_stats:
	smith_stats_exit();
	return err;
}

static void __exit smith_exit(void)
{
	bool leak;

	/* No reader can be attached: fops.owner pinned us while open. */
	smith_device_exit();
	/* New calls skip the hooks from here on. */
	smith_recording_stop();
	/* Unregisters every probe and waits for running handlers. */
	smith_hooks_exit();
	/* Only now is no handler using its CPU's record buffer. */
	leak = smith_free_record_buffers();
	smith_debugfs_exit();
	smith_netlink_exit();
	smith_transport_exit(leak);
	smith_stats_exit();
	pr_info("unloaded\n");
}

module_init(smith_init);
module_exit(smith_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Smith: execve, connect and module-load sensor");
MODULE_VERSION(SMITH_VERSION);
