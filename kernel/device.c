// SPDX-License-Identifier: GPL-2.0
/*
 * device.c - /dev/smith: one reader maps the ring, sleeps in poll() and
 * asks for configuration and counters by ioctl.
 *
 * mmap rules (offsets in pages, layout in smith_abi.h):
 *   - page 0, the consumer page, may be mapped writable (MAP_SHARED);
 *   - a mapping that covers any page from 1 on must be read-only: asking
 *     for PROT_WRITE is refused with EPERM, and VM_MAYWRITE is cleared so
 *     mprotect() cannot add it later;
 *   - a mapping that reaches past the end is refused with EINVAL.
 *
 * Lifetime: fops.owner pins the module while the device is open, and a
 * mapping holds the file open, so the ring memory cannot be freed under
 * a reader; rmmod then fails with EBUSY.
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "smith.h"
#include "transport.h"

/* One reader at a time: 0 free, 1 taken. */
static atomic_t smith_dev_taken = ATOMIC_INIT(0);

static int smith_dev_open(struct inode *inode, struct file *file)
{
	/* The node is 0600 root; this also refuses a capable-less root. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (atomic_cmpxchg(&smith_dev_taken, 0, 1) != 0)
		return -EBUSY;
	/* The ring is not reset: what the previous reader left is kept. */
	if (smith_params.send_type == SMITH_TRANSPORT_SHM)
		smith_reader_attach();
	return 0;
}

static int smith_dev_release(struct inode *inode, struct file *file)
{
	if (smith_params.send_type == SMITH_TRANSPORT_SHM)
		smith_reader_detach();
	atomic_set_release(&smith_dev_taken, 0);
	return 0;
}

static int smith_dev_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);
	unsigned long total = smith_shm_mem_size() >> PAGE_SHIFT;
	unsigned long pgoff = vma->vm_pgoff;

	if (pgoff >= total || pages > total - pgoff)
		return -EINVAL;
	/* A private writable copy of the consumer page would reach nobody. */
	if ((vma->vm_flags & VM_WRITE) && !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (pgoff + pages > SMITH_MMAP_META_PGOFF) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		smith_vma_clear_flags(vma, VM_MAYWRITE);
	}
	/* Checks the range against the area again and sets VM_DONTEXPAND. */
	return remap_vmalloc_range(vma, smith_shm_mem(), pgoff);
}

static __poll_t smith_dev_poll(struct file *file, poll_table *pt)
{
	smith_shm_poll_wait(file, pt);
	return smith_shm_poll_ready() ? EPOLLIN | EPOLLRDNORM : 0;
}

static long smith_dev_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case SMITH_IOC_GET_INFO: {
		struct smith_info info;

		smith_info_get(&info);
		return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
	}
	case SMITH_IOC_GET_STATS: {
		struct smith_stats st;

		smith_stats_get(&st);
		return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
	}
	case SMITH_IOC_EMIT_TEST: {
		struct smith_emit_test req;

		/* Records that no hook saw: only a module loaded for tests. */
		if (!smith_params.test_records)
			return -EPERM;
		if (copy_from_user(&req, uarg, sizeof(req)))
			return -EFAULT;
		return smith_emit_test(&req);
	}
	case SMITH_IOC_GET_LATENCY: {
		struct smith_latency lat;
		int err;

		if (copy_from_user(&lat, uarg, sizeof(lat)))
			return -EFAULT;
		err = smith_latency_get(&lat);
		if (err)
			return err;
		return copy_to_user(uarg, &lat, sizeof(lat)) ? -EFAULT : 0;
	}
	case SMITH_IOC_RESET_LATENCY:
		smith_latency_reset();
		return 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations smith_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= smith_dev_open,
	.release	= smith_dev_release,
	.mmap		= smith_dev_mmap,
	.poll		= smith_dev_poll,
	.unlocked_ioctl	= smith_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice smith_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= SMITH_DEVICE_NAME,
	.fops	= &smith_dev_fops,
	.mode	= 0600,
};

int smith_device_init(void)
{
	return misc_register(&smith_miscdev);
}

void smith_device_exit(void)
{
	misc_deregister(&smith_miscdev);
}
