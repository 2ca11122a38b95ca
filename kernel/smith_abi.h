/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * smith_abi.h - the one definition of everything the kernel module and
 * user space share: the mmap layout of /dev/smith, the ring's record
 * header, event and field ids, flag bits, ioctl numbers and the ABI
 * version.  The Go mirror lives in shm/abi.go; shm/abi_test.go compiles a
 * small C program against this file and fails if the two disagree.
 *
 * All integers are little-endian (the module only builds for little-endian
 * architectures).  Every structure is naturally aligned with explicit
 * padding, so its layout is the same for any compiler.
 *
 * mmap layout of /dev/smith (offsets in bytes, P = page size, S = data size):
 *
 *   [0, P)          consumer page   RW  struct smith_ring_consumer
 *   [P, 2P)         producer page   RO  struct smith_ring_meta
 *   [2P, 2P + S)    data            RO  records
 *
 * User space may map the consumer page writable and nothing else: the
 * permissions state the protocol, the reader owns only its position.
 *
 * The ring protocol (see kernel/ring.c for the code and the barrier pairs):
 *   - producer_pos and consumer_pos are 64-bit byte counters that never wrap;
 *     a position's offset in the data area is pos & (S - 1).
 *   - A record starts with struct smith_rec_hdr and occupies
 *     SMITH_REC_ALIGN(len) bytes.  Records never straddle the end of the
 *     data area: when one would, the producer first fills the tail with a
 *     pad record (SMITH_REC_DISCARD set, type SMITH_REC_PAD).
 *   - len has SMITH_REC_BUSY set while the producer is still writing the
 *     record; committing clears it with a store-release.  A reader that
 *     meets a BUSY record stops there and retries later.
 *   - A reader consumes by advancing consumer_pos with a store-release
 *     after it is done with the bytes (its commit position).
 *
 * Wake-ups (ABI 1.1).  The reader also publishes how far it has read,
 * read_pos, which may run ahead of consumer_pos (records read but not yet
 * delivered), and a watermark, wakeup_bytes.  The records the reader is
 * due to be woken for are "ready":
 *
 *     rp = read_pos, or consumer_pos if read_pos is outside
 *          [consumer_pos, producer_pos] (a 1.0 reader never writes it)
 *     ready = rp != producer_pos
 *             and the record at rp is committed (not BUSY)
 *             and (wakeup_bytes == 0
 *                  or producer_pos - rp >= wakeup_bytes
 *                  or producer_pos - consumer_pos >= S / 2   (filling)
 *                  or the record at rp, or right after a pad there, is a
 *                     "lost N" record                       (urgent))
 *
 * wakeup_bytes above S / 2 counts as S / 2.  poll() on /dev/smith is
 * readable exactly when ready holds.  A commit wakes the reader (from an
 * irq_work) when ready holds and the module has not woken it for this
 * read_pos yet: at most one wake-up per read position the reader
 * publishes, none per record.  Readers sleep with a bounded timeout (the
 * Go reader: 100 ms), which bounds the latency of records below the
 * watermark.
 */
#ifndef _SMITH_ABI_H
#define _SMITH_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#else
#include <linux/types.h>
#include <sys/ioctl.h>
#endif

/* ABI version: major changes break readers; minor changes only add. */
#define SMITH_ABI_MAJOR		1
#define SMITH_ABI_MINOR		2

#define SMITH_RING_MAGIC	0x48544d53u	/* "SMTH" little-endian */
#define SMITH_DEVICE_NAME	"smith"

/* Default and bounds of the data area, in bytes; always a power of two. */
#define SMITH_RING_DEFAULT_SIZE	(2u << 20)
#define SMITH_RING_MIN_SIZE	(64u << 10)
#define SMITH_RING_MAX_SIZE	(256u << 20)

/*
 * The largest record a producer writes.  A bound that is a quarter of the
 * ring at most keeps a full-size record placeable even right after a pad.
 */
#define SMITH_REC_MAX_LEN	(64u << 10)

/* mmap offsets, in pages of the running kernel. */
#define SMITH_MMAP_CONSUMER_PGOFF	0
#define SMITH_MMAP_META_PGOFF		1
#define SMITH_MMAP_DATA_PGOFF		2

/* Consumer page: the only memory user space writes. */
struct smith_ring_consumer {
	__u64 consumer_pos;		/* commit position: producers may reuse
					 * every byte before it */
	__u64 read_pos;			/* 1.1: the reader has seen every record
					 * before it; wake-ups and poll() count
					 * from here.  Untrusted: outside
					 * [consumer_pos, producer_pos] it is
					 * taken as consumer_pos. */
	__u64 wakeup_bytes;		/* 1.1: wake once producer_pos - read_pos
					 * reaches it; 0 = on the first record
					 * past read_pos (the 1.0 rule) */
};

/*
 * Producer page.  producer_pos sits on its own cache line so producers
 * updating it do not bounce the line that holds the static fields.
 * Counters are totals since the module loaded; they are updated with
 * atomic adds and may be read at any time.
 */
struct smith_ring_meta {
	__u32 magic;			/* SMITH_RING_MAGIC */
	__u16 abi_major;
	__u16 abi_minor;
	__u32 page_size;		/* bytes of a page: the mmap unit */
	__u32 max_record;		/* largest record len a producer writes */
	__u64 data_size;		/* S: power of two, whole pages */
	__u64 data_offset;		/* mmap offset of the data area */
	__u8 _pad0[32];

	__u64 producer_pos;		/* offset 64: store-release by producers */
	__u8 _pad1[56];

	/* offset 128: counters, struct smith_ring_counters */
	__u64 written;			/* records committed */
	__u64 dropped_full;		/* not written: ring had no room */
	__u64 dropped_too_large;	/* not written: longer than max_record */
	__u64 dropped_fault;		/* not written: user memory unreadable */
	__u64 truncated;		/* written with at least one field cut */
	__u64 hook_missed;		/* calls a probe could not see */
	__u64 lost_records;		/* "lost N" records written */
	__u64 discarded;		/* reserved, then discarded by the producer */
};

#define SMITH_META_COUNTERS_OFFSET	128

/* Bits of smith_rec_hdr.len. */
#define SMITH_REC_BUSY		(1u << 31)
#define SMITH_REC_DISCARD	(1u << 30)
#define SMITH_REC_LEN_MASK	(SMITH_REC_DISCARD - 1)
#define SMITH_REC_ALIGN(len)	(((len) + 7u) & ~7u)

/*
 * Every record starts with this header.  len counts the whole record,
 * header included, without the alignment padding.
 */
struct smith_rec_hdr {
	__u32 len;			/* bytes | SMITH_REC_BUSY | SMITH_REC_DISCARD */
	__u16 type;			/* enum smith_rec_type */
	__u16 flags;			/* SMITH_RF_* */
};

/*
 * Record types.  The event ids keep the x86_64 syscall numbers of the
 * original sensor so consumers of its data_type keep working.
 */
enum smith_rec_type {
	SMITH_REC_PAD		= 0,	/* ring filler, always DISCARD */
	SMITH_REC_LOST		= 1,	/* struct smith_lost */
	SMITH_REC_TEST		= 2,	/* struct smith_test_rec + payload */
	SMITH_EV_CONNECT	= 42,
	SMITH_EV_EXECVE		= 59,	/* execveat: SMITH_RF_EXECVEAT */
	SMITH_EV_INIT_MODULE	= 175,
	SMITH_EV_FINIT_MODULE	= 313,
};

/* Record flags (smith_rec_hdr.flags). */
#define SMITH_RF_TRUNCATED	(1u << 0)	/* a field was cut at its cap */
#define SMITH_RF_FAULT		(1u << 1)	/* a user read failed: partial */
#define SMITH_RF_EXECVEAT	(1u << 2)	/* the call was execveat */
#define SMITH_RF_COMPAT		(1u << 3)	/* 32-bit compat syscall */
#define SMITH_RF_NO_RESULT	(1u << 4)	/* seen at entry only: result 0, unknown */
#define SMITH_RF_RESTART	(1u << 5)	/* interrupted: EINTR or restarted */
#define SMITH_RF_FASTOPEN	(1u << 6)	/* connect: TCP Fast Open (sendto/sendmsg) */

/*
 * "Lost N": written in front of the next record that fits after drops, so
 * the stream itself shows the gap.  count is the number of records dropped
 * (any reason) since the previous lost record.
 */
struct smith_lost {
	struct smith_rec_hdr hdr;
	__u64 count;
};

/* Test records, produced on demand by SMITH_IOC_EMIT_TEST. */
struct smith_test_rec {
	struct smith_rec_hdr hdr;
	__u32 producer;			/* which producer wrote it */
	__u32 _pad;
	__u64 seq;			/* per-producer sequence, from 0 */
	/* followed by (len - sizeof) bytes: (seq + i) & 0xff for byte i */
};

/*
 * Event records: struct smith_event, then nfields fields.  Each field is a
 * struct smith_field followed by len bytes of value and padding to the next
 * 8-byte boundary.  Readers skip field ids they do not know.
 */
struct smith_event {
	struct smith_rec_hdr hdr;
	__u64 time_ns;			/* CLOCK_REALTIME, ns */
	__s64 result;			/* syscall return value (-errno on error) */
	__u32 pid;			/* thread id */
	__u32 tgid;			/* process id */
	__u32 ppid;			/* parent's tgid */
	__u32 pgid;
	__u32 sid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 pid_ns;			/* pid namespace inode number */
	__u32 mnt_ns;			/* mount namespace inode number */
	__u64 cgroup_id;		/* cgroup v2 id (kernfs node id); 0 if none */
	char comm[16];			/* NUL-padded */
	__u16 nfields;
	__u16 cpu;
	__u32 _pad;
};

struct smith_field {
	__u16 id;			/* enum smith_field_id */
	__u16 flags;			/* SMITH_FF_* */
	__u32 len;			/* value bytes, without padding */
};

#define SMITH_FF_TRUNCATED	(1u << 0)	/* value cut at its cap */
#define SMITH_FF_FAULT		(1u << 1)	/* value unreadable or partial */

enum smith_field_id {
	SMITH_F_EXE		= 1,	/* path of the task's executable */
	SMITH_F_NODENAME	= 2,	/* UTS nodename */
	SMITH_F_FILENAME	= 3,	/* execve: the path as passed */
	SMITH_F_ARGV		= 4,	/* execve: args, NUL-separated */
	SMITH_F_CWD		= 5,
	SMITH_F_STDIN		= 6,	/* target of fd 0 */
	SMITH_F_STDOUT		= 7,	/* target of fd 1 */
	SMITH_F_TTY		= 8,	/* controlling tty name */
	SMITH_F_CONNECT		= 9,	/* struct smith_connect_info */
	SMITH_F_MOD_NAME	= 10,	/* module name */
	SMITH_F_MOD_PATH	= 11,	/* finit_module: the fd's path */
	SMITH_F_MOD_PARAMS	= 12,	/* module parameters string */
	SMITH_F_EXE_ID		= 13,	/* 1.2, execve: struct smith_exe_id */
};

/* Value of SMITH_F_CONNECT.  Addresses are IPv6-sized; IPv4 uses 4 bytes. */
struct smith_connect_info {
	__u16 family;			/* AF_INET or AF_INET6 */
	__u16 protocol;			/* IPPROTO_TCP, IPPROTO_UDP, ... */
	__s32 fd;
	__u8 remote_addr[16];
	__u8 local_addr[16];
	__u16 remote_port;		/* host byte order */
	__u16 local_port;		/* host byte order */
	__u32 _pad;
};

/*
 * Value of SMITH_F_EXE_ID (ABI 1.2): the identity of the file a successful
 * exec loaded (the inode of bprm->file, the new mm's exe_file), read at
 * sched_process_exec, so a reader can cache per-file work without a
 * stat.  A failed exec loaded nothing: its value is all zeros (and its
 * result is negative).  Times and size are read without the inode's lock:
 * a file written at that moment may show a mix, which a reader comparing
 * them with fstat(2) sees as a change.
 */
struct smith_exe_id {
	__u64 ino;			/* i_ino */
	__s64 size;			/* i_size, bytes */
	__s64 mtime_sec;		/* modification time */
	__s64 ctime_sec;		/* status change time */
	__u32 mtime_nsec;
	__u32 ctime_nsec;
	__u32 dev;			/* i_sb->s_dev as stat(2)'s st_dev encodes
					 * it (new_encode_dev) */
	__u32 _pad;
};

/* Transports (module parameter send_type, the original SEND_TYPE). */
#define SMITH_TRANSPORT_NETLINK	1
#define SMITH_TRANSPORT_SHM	2

/* Netlink: protocol number and message type carrying one record. */
#define SMITH_NETLINK_PROTO	30
#define SMITH_NLMSG_RECORD	0x20
#define SMITH_NLMSG_HELLO	0x21	/* agent registers its port id */

/* ioctl interface. */
#define SMITH_IOC_MAGIC		'S'

struct smith_info {
	__u16 abi_major;
	__u16 abi_minor;
	__u32 transport;		/* SMITH_TRANSPORT_* */
	__u64 data_size;
	__u32 page_size;
	__u32 max_record;
	__u32 argv_cap;			/* bytes of argv kept per exec */
	__u32 hooks_attached;		/* bitmask of SMITH_HOOK_* attached */
	__u32 hooks_failed;		/* bitmask of SMITH_HOOK_* that failed */
	__u32 _pad;
	char version[32];		/* module version string */
};

#define SMITH_HOOK_EXECVE	(1u << 0)
#define SMITH_HOOK_EXECVEAT	(1u << 1)
#define SMITH_HOOK_CONNECT	(1u << 2)
#define SMITH_HOOK_INIT_MODULE	(1u << 3)
#define SMITH_HOOK_FINIT_MODULE	(1u << 4)
#define SMITH_HOOK_COUNT	5

/* Per-hook counters, indexed by the bit number of SMITH_HOOK_*. */
struct smith_hook_stats {
	__u64 events;			/* records built */
	__u64 missed;			/* kretprobe maxactive exhausted */
	__u64 faults;			/* user memory reads that failed */
	__u64 truncated;		/* fields cut at their cap */
};

struct smith_stats {
	__u64 written;
	__u64 dropped_full;
	__u64 dropped_too_large;
	__u64 dropped_fault;
	__u64 truncated;
	__u64 hook_missed;
	__u64 lost_records;
	__u64 discarded;
	__u64 netlink_sent;
	__u64 netlink_failed;		/* no listener or socket full */
	__u64 producer_pos;
	__u64 consumer_pos;
	struct smith_hook_stats hooks[SMITH_HOOK_COUNT];
};

/* Ask the module to write count test records of len bytes each. */
struct smith_emit_test {
	__u32 count;
	__u32 len;			/* record len, header included */
	__u32 producer;
	__u32 _pad;
	__u64 first_seq;
};

/* Per-hook latency histogram of the in-kernel hook time, in ns. */
struct smith_latency {
	__u32 hook;			/* in: SMITH_HOOK_* bit number */
	__u32 _pad;
	__u64 count;
	__u64 median_ns;
	__u64 p95_ns;
	__u64 p99_ns;
	__u64 max_ns;
};

#define SMITH_IOC_GET_INFO	_IOR(SMITH_IOC_MAGIC, 1, struct smith_info)
#define SMITH_IOC_GET_STATS	_IOR(SMITH_IOC_MAGIC, 2, struct smith_stats)
#define SMITH_IOC_EMIT_TEST	_IOW(SMITH_IOC_MAGIC, 3, struct smith_emit_test)
#define SMITH_IOC_GET_LATENCY	_IOWR(SMITH_IOC_MAGIC, 4, struct smith_latency)
#define SMITH_IOC_RESET_LATENCY	_IO(SMITH_IOC_MAGIC, 5)

#endif /* _SMITH_ABI_H */
