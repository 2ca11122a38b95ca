// SPDX-License-Identifier: GPL-2.0
/*
 * hook_connect.c - connect(2) on AF_INET and AF_INET6 sockets.
 *
 * A kretprobe on the syscall: the entry handler copies the caller's
 * sockaddr (the remote address as asked) while it is certainly mapped;
 * the return handler has the result and reads the socket's local address,
 * which the kernel has bound by then (also for EINPROGRESS and UDP).
 * Other families (unix, netlink, ...) are not recorded.
 *
 * The socket is found from the fd with fget_raw(), which takes a
 * reference under RCU without sleeping, and sock_from_file(); the
 * kretprobe handler runs with preemption disabled, so nothing that may
 * sleep (sockfd_lookup's fput path is fine, lock_sock() is not) is used.
 * The local address is read without the socket lock: each field is one
 * aligned word, a racing change gives the old or the new value.
 */
#include <linux/file.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/net.h>
#include <linux/ptrace.h>
#include <linux/socket.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <net/inet_sock.h>
#include <net/sock.h>

#include "hooks.h"
#include "record.h"
#include "transport.h"

struct smith_connect_call {
	int fd;
	u16 family;		/* from the caller's sockaddr, 0 if unread */
	u16 port;		/* host byte order */
	u8 addr[16];
	bool fault;		/* the sockaddr could not be read */
};

static const struct smith_sym smith_connect_syms[] = {
	{ SMITH_SYSCALL_SYM("connect"), true },
	{ "sys_connect", false },
	{ }
};

static struct smith_kretprobe smith_connect_krp;

static int smith_connect_entry(struct kretprobe_instance *ri,
			       struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;
	const void __user *uaddr;
	struct sockaddr_in6 sa;
	unsigned long alen;

	if (!smith_recording())
		return 1;
	c->fd = (int)smith_sys_arg(&smith_connect_krp, regs, 0);
	uaddr = (const void __user *)smith_sys_arg(&smith_connect_krp, regs, 1);
	alen = (u32)smith_sys_arg(&smith_connect_krp, regs, 2);
	memset(c->addr, 0, sizeof(c->addr));
	c->family = 0;
	c->port = 0;
	c->fault = false;

	alen = min_t(unsigned long, alen, sizeof(sa));
	if (alen < sizeof(sa.sin6_family))
		return 1;	/* refused with EINVAL before any connect */
	memset(&sa, 0, sizeof(sa));
	if (copy_from_user_nofault(&sa, uaddr, alen)) {
		/* The family comes from the socket at return. */
		c->fault = true;
		return 0;
	}
	switch (sa.sin6_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)&sa;

		c->port = ntohs(sin->sin_port);
		memcpy(c->addr, &sin->sin_addr, 4);
		break;
	}
	case AF_INET6:
		c->port = ntohs(sa.sin6_port);
		memcpy(c->addr, &sa.sin6_addr, 16);
		break;
	default:
		return 1;
	}
	c->family = sa.sin6_family;
	return 0;
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

/* Protocol and local address of the socket; false if fd is no socket. */
static bool smith_connect_local(struct smith_connect_info *info, int fd,
				u16 *family)
{
	struct file *file = fget_raw(fd);
	struct socket *sock;
	struct sock *sk;
	bool ok = false;

	if (!file)
		return false;
	sock = smith_sock_from_file(file);
	sk = sock ? READ_ONCE(sock->sk) : NULL;
	if (sk) {
		const struct inet_sock *inet = inet_sk(sk);

		*family = READ_ONCE(sk->sk_family);
		info->protocol = READ_ONCE(sk->sk_protocol);
		info->local_port = ntohs(READ_ONCE(inet->inet_sport));
		if (*family == AF_INET) {
			__be32 a = READ_ONCE(inet->inet_saddr);

			memcpy(info->local_addr, &a, 4);
#if IS_ENABLED(CONFIG_IPV6)
		} else if (*family == AF_INET6) {
			memcpy(info->local_addr, &sk->sk_v6_rcv_saddr, 16);
#endif
		}
		ok = true;
	}
	fput(file);
	return ok;
}

static int smith_connect_ret(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct smith_connect_call *c = (void *)ri->data;
	long ret = regs_return_value(regs);
	struct smith_connect_info info;
	struct smith_rec *r;
	u16 sock_family = 0;
	u64 t0;

	if (!smith_recording())
		return 0;
	smith_hook_enter();
	t0 = smith_latency_start();

	memset(&info, 0, sizeof(info));
	info.fd = c->fd;
	info.family = c->family;
	info.remote_port = c->port;
	memcpy(info.remote_addr, c->addr, sizeof(info.remote_addr));
	smith_connect_local(&info, c->fd, &sock_family);
	if (c->fault)
		info.family = sock_family;
	if (info.family != AF_INET && info.family != AF_INET6)
		goto out;

	r = smith_rec_begin(SMITH_HI_CONNECT, SMITH_EV_CONNECT, ret);
	if (!r) {
		smith_hook_count(SMITH_HI_CONNECT, missed);
		goto out;
	}
	smith_rec_put_common(r);
	smith_rec_put(r, SMITH_F_CONNECT, &info, sizeof(info),
		      c->fault ? SMITH_FF_FAULT : 0);
	smith_rec_submit(r);
out:
	smith_latency_end(SMITH_HI_CONNECT, t0);
	smith_hook_exit();
	return 0;
}

static struct smith_kretprobe smith_connect_krp = {
	.rp = {
		.entry_handler = smith_connect_entry,
		.handler = smith_connect_ret,
		.data_size = sizeof(struct smith_connect_call),
	},
	.syms = smith_connect_syms,
	.hook = SMITH_HI_CONNECT,
};

/*
 * A blocking connect holds its instance for the whole handshake (seconds
 * to minutes against a silent peer): many per CPU, bounded in memory
 * (about 100 bytes each).
 */
#define SMITH_CONNECT_MAXACTIVE_PER_CPU	64
#define SMITH_CONNECT_MAXACTIVE_CAP	4096

int smith_connect_hooks_init(void)
{
	int err = smith_kretprobe_register(&smith_connect_krp,
			smith_maxactive(SMITH_CONNECT_MAXACTIVE_PER_CPU,
					SMITH_CONNECT_MAXACTIVE_CAP));

	smith_hook_attached(SMITH_HI_CONNECT, err);
	return !err;
}

void smith_connect_hooks_missed(u64 missed[])
{
	if (smith_connect_krp.sym)
		missed[SMITH_HI_CONNECT] +=
			READ_ONCE(smith_connect_krp.rp.nmissed);
}
