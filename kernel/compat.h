/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - kernel version guards, in one place.
 *
 * Tested here: Debian 5.10, 6.1 and 6.12 (x86_64), 6.1 and 6.12 (arm64).  The guards for older kernels
 * (3.10 as in CentOS 7, 4.18 as in RHEL 8) follow the mainline history
 * but are not tested: vendor kernels backport features ahead of their
 * version number, so a guard may need adjusting on them.
 */
#ifndef _SMITH_COMPAT_H
#define _SMITH_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>

/* ktime_get_mono_fast_ns() arrived in 3.17; before, local_clock() it is. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 17, 0)
#include <linux/sched.h>
#define ktime_get_mono_fast_ns()	local_clock()
#endif

/* vma->vm_flags became read-only behind helpers in 6.3. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline void smith_vma_clear_flags(struct vm_area_struct *vma,
					 unsigned long flags)
{
	vm_flags_clear(vma, flags);
}
#else
static inline void smith_vma_clear_flags(struct vm_area_struct *vma,
					 unsigned long flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/* poll masks are __poll_t with EPOLL* names since 4.16. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 16, 0)
typedef unsigned int __poll_t;
#define EPOLLIN		POLLIN
#define EPOLLRDNORM	POLLRDNORM
#endif

/* compat_ptr_ioctl() arrived in 5.5. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 5, 0)
#define compat_ptr_ioctl	NULL
#endif

/* strscpy() arrived in 4.3. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 3, 0)
#define strscpy(dst, src, n)	strlcpy(dst, src, n)
#endif

/* netlink_capable() arrived in 3.15; before, the sender's caps were not kept. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 15, 0)
#define netlink_capable(skb, cap)	capable(cap)
#endif

/* DEFINE_SHOW_ATTRIBUTE() arrived in 4.16. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 16, 0)
#define DEFINE_SHOW_ATTRIBUTE(__name)					\
static int __name ## _open(struct inode *inode, struct file *file)	\
{									\
	return single_open(file, __name ## _show, inode->i_private);	\
}									\
static const struct file_operations __name ## _fops = {			\
	.owner		= THIS_MODULE,					\
	.open		= __name ## _open,				\
	.read		= seq_read,					\
	.llseek		= seq_lseek,					\
	.release	= single_release,				\
}
#endif

/*
 * User-memory reads from probe context: the *_nofault names arrived in
 * 5.8; before that the same helpers were called *_unsafe.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 8, 0)
#define copy_from_user_nofault		probe_user_read
#define strncpy_from_user_nofault	strncpy_from_unsafe_user
#endif

#endif /* _SMITH_COMPAT_H */
