// SPDX-License-Identifier: GPL-2.0
/*
 * netlink.c - the netlink transport (send_type=1): every record is one
 * SMITH_NLMSG_RECORD message, unicast to the one agent that registered
 * with SMITH_NLMSG_HELLO.
 *
 * Messages are allocated with GFP_ATOMIC and sent without blocking from
 * the hook itself: a full socket buffer or a vanished listener drops the
 * record and counts it in netlink_failed, the hook never waits.
 *
 * On PREEMPT_RT waking the socket's reader takes a sleeping lock, which a
 * probe handler must not do: there the hook only queues the message
 * (lock-free, bounded) and an irq_work, which runs in a kernel thread on
 * RT, sends it.
 *
 * The socket exists only in the initial network namespace, and only a
 * sender with CAP_SYS_ADMIN may register.  When the registered socket is
 * closed (NETLINK_URELEASE) the registration is cleared and, with
 * record_without_reader=0, recording stops until the next HELLO.
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/irq_work.h>
#include <linux/llist.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/skbuff.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "smith.h"
#include "transport.h"

static struct sock *smith_nl_sock;
/* Port id of the registered agent, 0 when none; set by HELLO. */
static u32 smith_nl_portid;
static atomic_t smith_nl_seq = ATOMIC_INIT(0);
static atomic64_t smith_nl_sent = ATOMIC64_INIT(0);
static atomic64_t smith_nl_failed = ATOMIC64_INIT(0);

u64 smith_netlink_sent(void)
{
	return atomic64_read(&smith_nl_sent);
}

u64 smith_netlink_failed(void)
{
	return atomic64_read(&smith_nl_failed);
}

/*
 * A message with room for len bytes of record; *rec points at that room.
 * NULL (counted as failed) when there is no listener or no memory.
 */
struct sk_buff *smith_netlink_alloc(u32 len, struct smith_rec_hdr **rec)
{
	struct nlmsghdr *nlh;
	struct sk_buff *skb;

	if (!READ_ONCE(smith_nl_portid) || len > SMITH_REC_MAX_LEN ||
	    len < sizeof(struct smith_rec_hdr))
		goto fail;
	skb = nlmsg_new(len, GFP_ATOMIC);
	if (!skb)
		goto fail;
	nlh = nlmsg_put(skb, 0, atomic_inc_return(&smith_nl_seq),
			SMITH_NLMSG_RECORD, len, 0);
	if (!nlh) {
		kfree_skb(skb);
		goto fail;
	}
	*rec = nlmsg_data(nlh);
	return skb;
fail:
	atomic64_inc(&smith_nl_failed);
	return NULL;
}

static int smith_nl_unicast(struct sk_buff *skb)
{
	u32 portid = READ_ONCE(smith_nl_portid);
	int err;

	if (!portid) {
		kfree_skb(skb);
		atomic64_inc(&smith_nl_failed);
		return -ENOTCONN;
	}
	/* Consumes skb whatever the result; MSG_DONTWAIT: never blocks. */
	err = netlink_unicast(smith_nl_sock, skb, portid, MSG_DONTWAIT);
	if (err < 0) {
		atomic64_inc(&smith_nl_failed);
		return err;
	}
	atomic64_inc(&smith_nl_sent);
	return 0;
}

/*
 * PREEMPT_RT only: messages waiting for the irq_work.  The skb's own list
 * pointers are free until it is sent, so one llist_node fits in its
 * control buffer.  Bounded, so a starved sender cannot eat memory.
 */
#define SMITH_NL_QUEUE_MAX	4096
static LLIST_HEAD(smith_nl_queue);
static atomic_t smith_nl_queued = ATOMIC_INIT(0);
static struct irq_work smith_nl_work;

static struct llist_node *smith_nl_node(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct llist_node) > sizeof(skb->cb));
	return (struct llist_node *)skb->cb;
}

static void smith_nl_flush(struct irq_work *work)
{
	struct llist_node *n, *next;

	n = llist_reverse_order(llist_del_all(&smith_nl_queue));
	for (; n; n = next) {
		struct sk_buff *skb = container_of((void *)n, struct sk_buff, cb);

		next = n->next;
		atomic_dec(&smith_nl_queued);
		smith_nl_unicast(skb);
	}
}

/*
 * Send a message from smith_netlink_alloc(); consumes skb.  0 when sent
 * (on PREEMPT_RT: queued), else -errno and counted in netlink_failed.
 */
int smith_netlink_send(struct sk_buff *skb)
{
	if (!IS_ENABLED(CONFIG_PREEMPT_RT))
		return smith_nl_unicast(skb);
	if (atomic_inc_return(&smith_nl_queued) > SMITH_NL_QUEUE_MAX) {
		atomic_dec(&smith_nl_queued);
		kfree_skb(skb);
		atomic64_inc(&smith_nl_failed);
		return -ENOBUFS;
	}
	llist_add(smith_nl_node(skb), &smith_nl_queue);
	irq_work_queue(&smith_nl_work);
	return 0;
}

/* Runs in the sender's process context. */
static void smith_nl_input(struct sk_buff *skb)
{
	struct nlmsghdr *nlh;

	if (skb->len < NLMSG_HDRLEN)
		return;
	nlh = nlmsg_hdr(skb);
	if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > skb->len)
		return;
	if (nlh->nlmsg_type != SMITH_NLMSG_HELLO)
		return;
	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		pr_notice_ratelimited("netlink hello from port %u refused: not privileged\n",
				      NETLINK_CB(skb).portid);
		return;
	}
	WRITE_ONCE(smith_nl_portid, NETLINK_CB(skb).portid);
	pr_info("netlink reader registered, port %u\n", NETLINK_CB(skb).portid);
	smith_reader_attach();
}

static int smith_nl_notify(struct notifier_block *nb, unsigned long event,
			   void *ptr)
{
	struct netlink_notify *n = ptr;

	if (event != NETLINK_URELEASE || n->protocol != SMITH_NETLINK_PROTO ||
	    !net_eq(n->net, &init_net))
		return NOTIFY_DONE;
	if (cmpxchg(&smith_nl_portid, n->portid, 0) == n->portid &&
	    n->portid) {
		pr_info("netlink reader gone, port %u\n", n->portid);
		smith_reader_detach();
	}
	return NOTIFY_DONE;
}

static struct notifier_block smith_nl_notifier = {
	.notifier_call = smith_nl_notify,
};

int smith_netlink_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.input = smith_nl_input,
	};
	int err;

	init_irq_work(&smith_nl_work, smith_nl_flush);
	err = netlink_register_notifier(&smith_nl_notifier);
	if (err)
		return err;
	smith_nl_sock = netlink_kernel_create(&init_net, SMITH_NETLINK_PROTO,
					      &cfg);
	if (!smith_nl_sock) {
		netlink_unregister_notifier(&smith_nl_notifier);
		pr_err("netlink protocol %d is in use or unavailable\n",
		       SMITH_NETLINK_PROTO);
		return -EBUSY;
	}
	return 0;
}

/* Called after the hooks are gone: nothing sends any more. */
void smith_netlink_exit(void)
{
	if (!smith_nl_sock)
		return;
	/* Send what is queued (PREEMPT_RT) while the socket still exists. */
	irq_work_sync(&smith_nl_work);
	smith_nl_flush(&smith_nl_work);
	netlink_kernel_release(smith_nl_sock);
	smith_nl_sock = NULL;
	netlink_unregister_notifier(&smith_nl_notifier);
}
