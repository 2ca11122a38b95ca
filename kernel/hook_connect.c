// SPDX-License-Identifier: GPL-2.0
/*
 * hook_connect.c - every way to start an AF_INET or AF_INET6 connection:
 * connect(2), the 32-bit entries (socketcall SYS_CONNECT and the direct
 * compat call), io_uring IORING_OP_CONNECT, and TCP Fast Open
 * (sendto/sendmsg with MSG_FASTOPEN, which connects without connect).
 *
 * Below the system call layer, where the kernel already holds its own
 * copy of the sockaddr, so user memory is never read:
 *
 *  - a kretprobe on __sys_connect_file(), which every connect path but
 *    fast open goes through (syscall, socketcall, compat, io_uring).  Its
 *    entry handler copies the kernel's sockaddr, its return handler has
 *    the result the caller sees and the local address the kernel bound.
 *  - a kprobe on security_socket_connect(), the LSM hook that
 *    __sys_connect_file() calls before the protocol's connect.  A blocking
 *    connect holds its kretprobe instance for the whole handshake, so a
 *    flood of connects that never complete can use all of them: a call
 *    that finds none left is still seen here, and recorded at once
 *    without a result (SMITH_RF_NO_RESULT).  The kprobe knows which calls
 *    the kretprobe holds through a small table of tasks between the two
 *    probes (claimed at the kretprobe's entry, released here).
 *  - a kretprobe for fast open: on tcp_sendmsg_fastopen(), which only a
 *    fast open calls, where the kernel has it as a function of its own
 *    (6.1 on: MPTCP calls it too); where it is inlined (5.10), on
 *    __inet_stream_connect(), which every TCP connect calls (is_sendmsg
 *    set for fast open; every other call gives its instance back at once).
 *
 * Other families (unix, netlink, ...) are not recorded; the family is the
 * socket's, checked before any inet field is read.
 */
#include <linux/bitops.h>
#include <linux/errno.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/hash.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/net.h>
#include <linux/nospec.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/socket.h>
#include <linux/version.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/sock.h>

#include <asm/syscall.h>

#include "hooks.h"
#include "record.h"
#include "transport.h"

struct smith_connect_call {
	struct socket *sock;
	u16 family;		/* of the sockaddr asked for */
	u16 port;		/* host byte order */
	u8 addr[16];
	bool reached;		/* the LSM kprobe saw this call */
};

/* What the socket is: false unless AF_INET or AF_INET6. */
static bool smith_sock_inet(const struct socket *sock)
{
	const struct sock *sk = sock ? READ_ONCE(sock->sk) : NULL;
	u16 family;

	if (!sk)
		return false;
	family = READ_ONCE(sk->sk_family);
	return family == AF_INET || family == AF_INET6;
}

/*
 * The remote address from the kernel's copy of the sockaddr; false for
 * families other than AF_INET/AF_INET6 (AF_UNSPEC dissolves a UDP
 * association: no connection, not recorded).
 */
static bool smith_connect_addr(struct smith_connect_call *c,
			       const struct sockaddr *sa, int len)
{
	memset(c->addr, 0, sizeof(c->addr));
	c->port = 0;
	if (!sa || len < (int)sizeof(sa->sa_family))
		return false;
	c->family = sa->sa_family;
	if (c->family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const void *)sa;

		c->port = ntohs(sin->sin_port);
		memcpy(c->addr, &sin->sin_addr, 4);
		return true;
	}
	if (c->family == AF_INET6 &&
	    len >= (int)SIN6_LEN_RFC2133) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		c->port = ntohs(sin6->sin6_port);
		memcpy(c->addr, &sin6->sin6_addr, 16);
		return true;
	}
	return false;
}

static struct socket *smith_sock_from_file(struct file *file)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 11, 0)
	return sock_from_file(file);
#else
	int err;

	return sock_from_file(file, &err);
#endif
}

/* Scanned at most; a file past it is found only through the call's fd. */
#define SMITH_FD_SCAN_MAX	65536u

/*
 * The first argument of the system call the task is in: the socket's
 * descriptor for connect(2), sendto(2) and sendmsg(2), something else for
 * others (socketcall, io_uring_enter); only a candidate, checked against
 * the table.  Kernel threads have no call.
 */
static unsigned long smith_call_fd(void)
{
	unsigned long args[6];

	if (current->flags & PF_KTHREAD)
		return ULONG_MAX;
	syscall_get_arguments(current, task_pt_regs(current), args);
	return args[0];
}

/*
 * The descriptor of file in the current task's table, or -1 (io_uring's
 * registered files have none).  The kernel paths below the syscalls get
 * the file, not the number: the call's own descriptor argument is tried
 * first (one load), else the table is scanned, under RCU as /proc does.
 */
static int smith_fd_of(const struct file *file)
{
	struct files_struct *files = current->files;
	unsigned long hint = smith_call_fd();
	struct fdtable *fdt;
	unsigned int base, max;
	int ret = -1;

	if (!files || !file)
		return -1;
	rcu_read_lock();
	fdt = files_fdtable(files);
	max = READ_ONCE(fdt->max_fds);
	if (hint < max &&
	    rcu_access_pointer(fdt->fd[array_index_nospec(hint, max)]) == file) {
		rcu_read_unlock();
		return (int)hint;
	}
	max = min(max, SMITH_FD_SCAN_MAX);
	/* The open bits word by word, lowest first: no call per open fd. */
	for (base = 0; base < max && ret < 0; base += BITS_PER_LONG) {
		unsigned long open = READ_ONCE(fdt->open_fds[base / BITS_PER_LONG]);

		if (max - base < BITS_PER_LONG)
			open &= BIT(max - base) - 1;
		for (; open; open &= open - 1) {
			unsigned int fd = base + __ffs(open);

			if (rcu_access_pointer(fdt->fd[fd]) == file) {
				ret = fd;
				break;
			}
		}
	}
	rcu_read_unlock();
	return ret;
}

/* Protocol and local address of an inet socket, fd of its file. */
static void smith_connect_local(struct smith_connect_info *info,
				const struct socket *sock)
{
	const struct sock *sk = READ_ONCE(sock->sk);
	const struct inet_sock *inet;
	u16 family;

	info->fd = smith_fd_of(READ_ONCE(sock->file));
	if (!sk)
		return;
	family = READ_ONCE(sk->sk_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	/* Only now is sk known to be an inet_sock. */
	inet = inet_sk(sk);
	info->protocol = READ_ONCE(sk->sk_protocol);
	info->local_port = ntohs(READ_ONCE(inet->inet_sport));
	if (family == AF_INET) {
		__be32 a = READ_ONCE(inet->inet_saddr);

		memcpy(info->local_addr, &a, 4);
#if IS_ENABLED(CONFIG_IPV6)
	} else {
		memcpy(info->local_addr, &sk->sk_v6_rcv_saddr, 16);
#endif
	}
}

/*
 * What the caller sees of a result.  The ERESTART* codes never reach user
 * space: the call returns EINTR or is restarted by the kernel (and then
 * recorded again); SMITH_RF_RESTART marks them.
 */
static s64 smith_user_result(long ret, u16 *flags)
{
	switch (ret) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
	case -ERESTART_RESTARTBLOCK:
		*flags |= SMITH_RF_RESTART;
		return -EINTR;
	}
	return ret;
}

static void smith_connect_record(const struct smith_connect_call *c,
				 long ret, u16 flags)
{
	struct smith_connect_info info;
	struct smith_rec *r;
	s64 result;
	u64 t0;

	smith_hook_enter();
	t0 = smith_latency_start();
	memset(&info, 0, sizeof(info));
	info.family = c->family;
	info.remote_port = c->port;
	memcpy(info.remote_addr, c->addr, sizeof(info.remote_addr));
	smith_connect_local(&info, c->sock);

	result = smith_user_result(ret, &flags);
	r = smith_rec_begin_common(SMITH_HI_CONNECT, SMITH_EV_CONNECT, result,
				   SMITH_FIELD_SIZE(sizeof(info)));
	if (!r) {
		smith_hook_miss(SMITH_HI_CONNECT);
		goto out;
	}
	r->ev->hdr.flags |= flags;
	smith_rec_put_fixed(r, SMITH_F_CONNECT, &info, sizeof(info));
	smith_rec_submit(r);
out:
	smith_latency_end(SMITH_HI_CONNECT, t0);
	smith_hook_exit();
}

/*
 * Calls the kretprobe holds, between its entry and the LSM hook.  A slot
 * is held only for that short stretch (no sleeping lies between them), so
 * blocked connects do not fill the table; when it is full anyway the
 * kretprobe lets the call go and the LSM kprobe records it.
 */
#define SMITH_CONNECT_SLOTS	64

static struct {
	struct task_struct *task;
	struct smith_connect_call *call;
} smith_connect_slots[SMITH_CONNECT_SLOTS];

static unsigned int smith_slot_hash(const struct task_struct *t)
{
	return hash_ptr((void *)t, 6) % SMITH_CONNECT_SLOTS;
}

static bool smith_connect_claim(struct smith_connect_call *c)
{
	unsigned int i, h = smith_slot_hash(current);

	for (i = 0; i < SMITH_CONNECT_SLOTS; i++) {
		unsigned int s = (h + i) % SMITH_CONNECT_SLOTS;

		if (READ_ONCE(smith_connect_slots[s].task))
			continue;
		/*
		 * Only the owning task reads its slot's call, later in the
		 * same call: program order is enough once the slot is ours.
		 */
		if (cmpxchg(&smith_connect_slots[s].task, NULL, current) ==
		    NULL) {
			WRITE_ONCE(smith_connect_slots[s].call, c);
			return true;
		}
	}
	return false;
}

/* The current task's claimed call, released; NULL if none. */
static struct smith_connect_call *smith_connect_release(void)
{
	unsigned int i, h = smith_slot_hash(current);

	for (i = 0; i < SMITH_CONNECT_SLOTS; i++) {
		unsigned int s = (h + i) % SMITH_CONNECT_SLOTS;

		if (READ_ONCE(smith_connect_slots[s].task) == current) {
			struct smith_connect_call *c =
				READ_ONCE(smith_connect_slots[s].call);

			smp_store_release(&smith_connect_slots[s].task, NULL);
			return c;
		}
	}
	return NULL;
}

/*
 * int __sys_connect_file(file, kernel sockaddr, addrlen, file_flags): the
 * result is an int, its register's upper half undefined.
 */
static int smith_connect_entry(struct kretprobe_instance *ri,
			       struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;
	struct file *file = (void *)smith_func_arg(regs, 0);

	if (!smith_recording())
		return 1;
	c->sock = smith_sock_from_file(file);
	c->reached = false;
	if (!smith_sock_inet(c->sock) ||
	    !smith_connect_addr(c, (void *)smith_func_arg(regs, 1),
				(int)smith_func_arg(regs, 2)))
		return 1;
	return smith_connect_claim(c) ? 0 : 1;
}

static int smith_connect_ret(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;

	/* Not reached: refused before the LSM hook; still our slot. */
	if (!c->reached)
		smith_connect_release();
	if (smith_recording())
		smith_connect_record(c, (int)regs_return_value(regs), 0);
	return 0;
}

/* security_socket_connect(sock, kernel sockaddr, addrlen) */
static int smith_connect_lsm(struct kprobe *p, struct pt_regs *regs)
{
	struct smith_connect_call *held, c;

	if (!smith_recording())
		return 0;
	held = smith_connect_release();
	if (held) {
		held->reached = true;
		return 0;
	}
	/* The kretprobe had no instance (or no slot) for this call. */
	c.sock = (void *)smith_func_arg(regs, 0);
	if (!smith_sock_inet(c.sock) ||
	    !smith_connect_addr(&c, (void *)smith_func_arg(regs, 1),
				(int)smith_func_arg(regs, 2)))
		return 0;
	smith_connect_record(&c, 0, SMITH_RF_NO_RESULT);
	return 0;
}

static const struct smith_sym smith_fastopen_syms[] = {
	{ "tcp_sendmsg_fastopen", false },
	{ "__inet_stream_connect", false },
	{ }
};

static struct smith_kretprobe smith_fastopen_krp;

/*
 * int tcp_sendmsg_fastopen(sk, msg, copied, size, uarg): the address is
 * msg's, the kernel's copy.  Or, where that is inlined,
 * __inet_stream_connect(sock, kernel sockaddr, addrlen, flags,
 * is_sendmsg): is_sendmsg is set only by tcp_sendmsg_fastopen().
 */
static int smith_fastopen_entry(struct kretprobe_instance *ri,
				struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;
	const struct sockaddr *sa;
	int len;

	if (!smith_recording())
		return 1;
	if (READ_ONCE(smith_fastopen_krp.sym) == smith_fastopen_syms) {
		const struct sock *sk = (void *)smith_func_arg(regs, 0);
		const struct msghdr *msg = (void *)smith_func_arg(regs, 1);

		c->sock = READ_ONCE(sk->sk_socket);
		sa = msg->msg_name;
		len = msg->msg_namelen;
	} else {
		if (!smith_func_arg(regs, 4))
			return 1;
		c->sock = (void *)smith_func_arg(regs, 0);
		sa = (void *)smith_func_arg(regs, 1);
		len = (int)smith_func_arg(regs, 2);
	}
	c->reached = true;
	if (!smith_sock_inet(c->sock) || !smith_connect_addr(c, sa, len))
		return 1;
	return 0;
}

static int smith_fastopen_ret(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;

	if (smith_recording())
		smith_connect_record(c, (int)regs_return_value(regs),
				     SMITH_RF_FASTOPEN);
	return 0;
}

static const struct smith_sym smith_connect_syms[] = {
	{ "__sys_connect_file", false },
	{ }
};

SMITH_DEFINE_KRETPROBE(smith_connect_krp, SMITH_HI_CONNECT, smith_connect_syms,
		       struct smith_connect_call, smith_connect_entry,
		       smith_connect_ret);

SMITH_DEFINE_KRETPROBE(smith_fastopen_krp, SMITH_HI_CONNECT, smith_fastopen_syms,
		       struct smith_connect_call, smith_fastopen_entry,
		       smith_fastopen_ret);

static bool smith_connect_kp_ok;	/* written at init only */

static struct kprobe smith_connect_kp = {
	.symbol_name = "security_socket_connect",
	.pre_handler = smith_connect_lsm,
};

/*
 * Instances: a blocking connect holds one for its handshake; beyond them
 * the LSM kprobe still records the call (without its result).
 */
#define SMITH_CONNECT_MAXACTIVE_PER_CPU	64
#define SMITH_CONNECT_MAXACTIVE_CAP	4096
#define SMITH_FASTOPEN_MAXACTIVE_PER_CPU	16
#define SMITH_FASTOPEN_MAXACTIVE_CAP		1024

int smith_connect_hooks_init(void)
{
	int err, kerr, ferr;

	memset(smith_connect_slots, 0, sizeof(smith_connect_slots));
	kerr = smith_kprobe_register(&smith_connect_kp);
	smith_connect_kp_ok = !kerr;
	if (kerr)
		pr_err("connect: no kprobe on %s (error %d)\n",
		       smith_connect_kp.symbol_name, kerr);
	err = smith_kretprobe_register(&smith_connect_krp,
			smith_maxactive(SMITH_CONNECT_MAXACTIVE_PER_CPU,
					SMITH_CONNECT_MAXACTIVE_CAP));
	ferr = smith_kretprobe_register(&smith_fastopen_krp,
			smith_maxactive(SMITH_FASTOPEN_MAXACTIVE_PER_CPU,
					SMITH_FASTOPEN_MAXACTIVE_CAP));
	if (ferr)
		pr_err("connect: no fast open probe (error %d)\n", ferr);
	/* Attached when no path is left unseen. */
	if (!err && (kerr || ferr))
		err = kerr ? kerr : ferr;
	smith_hook_attached(SMITH_HI_CONNECT, err);
	return !err;
}

/*
 * With the LSM kprobe attached, a call the connect kretprobe missed is
 * still recorded (without its result): not a miss.  On
 * __inet_stream_connect, the fast open kretprobe's misses include plain
 * connects that found its instances all held by fast opens: an upper
 * bound.
 */
void smith_connect_hooks_missed(u64 missed[])
{
	if (smith_connect_kp_ok)
		missed[SMITH_HI_CONNECT] += READ_ONCE(smith_connect_kp.nmissed);
	else
		smith_kretprobe_missed(&smith_connect_krp, missed);
	smith_kretprobe_missed(&smith_fastopen_krp, missed);
}
