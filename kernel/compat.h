/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - kernel version guards, in one place.
 *
 * Tested here: Debian 5.10, 6.1 (also PREEMPT_RT) and 6.12 on x86_64, 6.1
 * and 6.12 on arm64.  The source needs 5.8 or later:
 * copy_from_kernel_nofault() and copy_from_user_nofault() (5.8),
 * __sys_connect_file() (the connect probe, 5.5), cgroup_id() (5.5),
 * regs_get_kernel_argument() (5.1), strscpy_pad() (5.2).  Older kernels
 * stop the build here rather than with guards that were never built.
 */
#ifndef _SMITH_COMPAT_H
#define _SMITH_COMPAT_H

#include <linux/version.h>
#include <linux/fs.h>
#include <linux/mm.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 8, 0)
#error "smith needs Linux 5.8 or later (see compat.h)"
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

/*
 * Inode times: i_ctime went behind inode_get_ctime() in 6.6, i_mtime
 * behind inode_get_mtime() in 6.7 (both split into sec/nsec in 6.11).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline struct timespec64 smith_inode_mtime(const struct inode *inode)
{
	return inode_get_mtime(inode);
}
#else
static inline struct timespec64 smith_inode_mtime(const struct inode *inode)
{
	return inode->i_mtime;
}
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
static inline struct timespec64 smith_inode_ctime(const struct inode *inode)
{
	return inode_get_ctime(inode);
}
#else
static inline struct timespec64 smith_inode_ctime(const struct inode *inode)
{
	return inode->i_ctime;
}
#endif

#endif /* _SMITH_COMPAT_H */
