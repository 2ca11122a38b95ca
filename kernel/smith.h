/* SPDX-License-Identifier: GPL-2.0 */
/*
 * smith.h - what the core files of the module (main, device, transport,
 * netlink, stats) share with each other.  Hooks use transport.h only.
 */
#ifndef _SMITH_H
#define _SMITH_H

#include <linux/types.h>
#include "smith_abi.h"
#include "ring.h"

#ifndef SMITH_VERSION
#define SMITH_VERSION "0.0.0"
#endif

/* Load-time configuration beyond what hooks read (struct smith_params). */
extern bool smith_record_without_reader;

/* transport.c: the ring memory and its reader-facing state. */
int smith_transport_init(u64 data_size);
void smith_transport_exit(bool leak);
struct smith_ring *smith_shm_ring(void);
void *smith_shm_mem(void);
size_t smith_shm_mem_size(void);
bool smith_shm_poll_ready(void);
void smith_shm_poll_wait(struct file *file, struct poll_table_struct *pt);

/*
 * Reader attach/detach: switch recording on or off under one lock.
 * smith_reader_attach() turns recording on; smith_reader_detach() turns it
 * off only when record_without_reader is off.  smith_recording_stop() is
 * final (module exit).
 */
void smith_reader_attach(void);
void smith_reader_detach(void);
void smith_recording_stop(void);
bool smith_wait_hooks_idle(void);

/* Write the SMITH_IOC_EMIT_TEST records; returns how many were written. */
long smith_emit_test(const struct smith_emit_test *req);

/* Bound of SMITH_IOC_EMIT_TEST's count per call. */
#define SMITH_EMIT_TEST_MAX	(1u << 20)

/* netlink.c */
int smith_netlink_init(void);
void smith_netlink_exit(void);
struct sk_buff *smith_netlink_alloc(u32 len, struct smith_rec_hdr **rec);
int smith_netlink_send(struct sk_buff *skb);
u64 smith_netlink_sent(void);
u64 smith_netlink_failed(void);

/* stats.c */
int smith_stats_init(void);
void smith_stats_exit(void);
void smith_stats_get(struct smith_stats *st);
void smith_info_get(struct smith_info *info);
int smith_latency_get(struct smith_latency *lat);
void smith_latency_reset(void);
int smith_debugfs_init(void);
void smith_debugfs_exit(void);

/* device.c */
int smith_device_init(void);
void smith_device_exit(void);

#endif /* _SMITH_H */
