// SPDX-License-Identifier: GPL-2.0
/*
 * hook_module.c - init_module(2) and finit_module(2).
 *
 * A kretprobe on each syscall records the call with its result: the
 * parameter string (user memory, still mapped at return), for finit_module
 * the path of the file descriptor, and the module's name.
 *
 * The name: the image is user memory (init_module) or a file
 * (finit_module) that only the loader may read, so the name is taken from
 * the module notifier instead.  MODULE_STATE_COMING is announced in the
 * loading task's own context once the image was accepted, before the
 * module's init runs.  The entry handler claims a slot for the task, the
 * notifier writes the name into the task's slot, the return handler takes
 * it out.  When no name came that way (the image was rejected before,
 * e.g. the module is loaded already), init_module's name is looked up in
 * the image itself: the name field of the struct module in its
 * .gnu.linkonce.this_module section, read from user memory without
 * faulting.  A finit_module file is not read (that could sleep), and an
 * image that is no module has no name.
 */
#include <linux/elf.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "hooks.h"
#include "record.h"
#include "transport.h"

/*
 * Loads in flight at once that can get a name.  Module loading is rare
 * and mostly serialised by the kernel; a load that finds no free slot is
 * still recorded, without its name.
 */
#define SMITH_MOD_SLOTS		16

struct smith_mod_slot {
	struct task_struct *task;	/* NULL: free */
	char name[MODULE_NAME_LEN];
};

/*
 * Raw: taken from kretprobe handlers (preemption disabled, also on
 * PREEMPT_RT) and from the notifier; held for a short copy only.
 */
static DEFINE_RAW_SPINLOCK(smith_mod_lock);
static struct smith_mod_slot smith_mod_slots[SMITH_MOD_SLOTS];

static int smith_mod_slot_claim(void)
{
	unsigned long flags;
	int i, slot = -1;

	raw_spin_lock_irqsave(&smith_mod_lock, flags);
	for (i = 0; i < SMITH_MOD_SLOTS; i++) {
		if (!smith_mod_slots[i].task) {
			smith_mod_slots[i].task = current;
			smith_mod_slots[i].name[0] = '\0';
			slot = i;
			break;
		}
	}
	raw_spin_unlock_irqrestore(&smith_mod_lock, flags);
	return slot;
}

/* Copy the slot's name out (empty if none came) and free the slot. */
static void smith_mod_slot_release(int slot, char *name)
{
	unsigned long flags;

	name[0] = '\0';
	if (slot < 0)
		return;
	raw_spin_lock_irqsave(&smith_mod_lock, flags);
	if (smith_mod_slots[slot].task == current) {
		strscpy(name, smith_mod_slots[slot].name, MODULE_NAME_LEN);
		smith_mod_slots[slot].task = NULL;
	}
	raw_spin_unlock_irqrestore(&smith_mod_lock, flags);
}

static int smith_mod_notify(struct notifier_block *nb, unsigned long state,
			    void *data)
{
	const struct module *mod = data;
	unsigned long flags;
	int i;

	if (state != MODULE_STATE_COMING)
		return NOTIFY_DONE;
	raw_spin_lock_irqsave(&smith_mod_lock, flags);
	for (i = 0; i < SMITH_MOD_SLOTS; i++) {
		if (smith_mod_slots[i].task == current) {
			strscpy(smith_mod_slots[i].name, mod->name,
				MODULE_NAME_LEN);
			break;
		}
	}
	raw_spin_unlock_irqrestore(&smith_mod_lock, flags);
	return NOTIFY_DONE;
}

static struct notifier_block smith_mod_nb = {
	.notifier_call = smith_mod_notify,
};

struct smith_mod_call {
	const void __user *image;	/* init_module only */
	unsigned long len;
	const char __user *params;
	int fd;				/* finit_module only */
	int slot;			/* name slot, -1 if none */
	bool compat;			/* through a 32-bit entry */
};

static const struct smith_sym smith_init_module_syms[] = {
	{ SMITH_SYSCALL_SYM("init_module"), true },
	{ "sys_init_module", false },
	{ }
};

static const struct smith_sym smith_finit_module_syms[] = {
	{ SMITH_SYSCALL_SYM("finit_module"), true },
	{ "sys_finit_module", false },
	{ }
};

/* The 32-bit entries (int $0x80, sysenter). */
static const struct smith_sym smith_init_module32_syms[] = {
	{ SMITH_COMPAT_NATIVE_SYSCALL_SYM("init_module"), true, true },
	{ }
};

static const struct smith_sym smith_finit_module32_syms[] = {
	{ SMITH_COMPAT_NATIVE_SYSCALL_SYM("finit_module"), true, true },
	{ }
};

/* init_module(umod, len, uargs) through probe p. */
static int smith_init_module_save(struct kretprobe_instance *ri,
				  struct pt_regs *regs,
				  const struct smith_kretprobe *p)
{
	struct smith_mod_call *c = (void *)ri->data;

	if (!smith_recording())
		return 1;
	c->image = (const void __user *)smith_sys_arg(p, regs, 0);
	c->len = smith_sys_arg(p, regs, 1);
	c->params = (const char __user *)smith_sys_arg(p, regs, 2);
	c->fd = -1;
	c->compat = smith_sys_compat(p);
	c->slot = smith_mod_slot_claim();
	return 0;
}

/* finit_module(fd, uargs, flags) through probe p. */
static int smith_finit_module_save(struct kretprobe_instance *ri,
				   struct pt_regs *regs,
				   const struct smith_kretprobe *p)
{
	struct smith_mod_call *c = (void *)ri->data;

	if (!smith_recording())
		return 1;
	c->image = NULL;
	c->len = 0;
	c->fd = (int)smith_sys_arg(p, regs, 0);
	c->params = (const char __user *)smith_sys_arg(p, regs, 1);
	c->compat = smith_sys_compat(p);
	c->slot = smith_mod_slot_claim();
	return 0;
}

/* Sections of an image looked at, at most: modules have a few dozen. */
#define SMITH_ELF_MAX_SECTIONS	512

static const char smith_this_module[] = ".gnu.linkonce.this_module";

static bool smith_image_read(void *dst, const void __user *image,
			     unsigned long len, u64 off, size_t n)
{
	if (off > len || n > len - off)
		return false;
	return !copy_from_user_nofault(dst, image + off, n);
}

/* The module's name from an init_module image in user memory. */
static bool smith_image_name(const void __user *image, unsigned long len,
			     char *name)
{
	char secname[sizeof(smith_this_module)];
	Elf64_Shdr sh, strsh;
	Elf64_Ehdr eh;
	unsigned int i;

	if (!image || !smith_image_read(&eh, image, len, 0, sizeof(eh)))
		return false;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(sh) ||
	    eh.e_shnum > SMITH_ELF_MAX_SECTIONS || eh.e_shstrndx >= eh.e_shnum)
		return false;
	if (!smith_image_read(&strsh, image, len,
			      eh.e_shoff + (u64)eh.e_shstrndx * sizeof(sh),
			      sizeof(sh)))
		return false;
	for (i = 1; i < eh.e_shnum; i++) {
		if (!smith_image_read(&sh, image, len,
				      eh.e_shoff + (u64)i * sizeof(sh),
				      sizeof(sh)))
			return false;
		if (sh.sh_name >= strsh.sh_size ||
		    !smith_image_read(secname, image, len,
				      strsh.sh_offset + sh.sh_name,
				      sizeof(secname)) ||
		    memcmp(secname, smith_this_module, sizeof(secname)))
			continue;
		if (sh.sh_type == SHT_NOBITS ||
		    sh.sh_size < offsetof(struct module, name) + MODULE_NAME_LEN ||
		    !smith_image_read(name, image, len,
				      sh.sh_offset + offsetof(struct module, name),
				      MODULE_NAME_LEN))
			return false;
		name[MODULE_NAME_LEN - 1] = '\0';
		return name[0] != '\0';
	}
	return false;
}

static void smith_mod_record(unsigned int hook, u16 type,
			     const struct smith_mod_call *c, long ret)
{
	char name[MODULE_NAME_LEN];
	struct smith_rec *r;
	u64 t0;

	/* Always free the slot, recording or not. */
	smith_mod_slot_release(c->slot, name);
	if (!smith_recording())
		return;
	smith_hook_enter();
	t0 = smith_latency_start();
	r = smith_rec_begin(hook, type, ret);
	if (!r) {
		smith_hook_miss(hook);
		goto out;
	}
	if (c->compat)
		r->ev->hdr.flags |= SMITH_RF_COMPAT;
	smith_rec_put_common(r);
	if (!name[0] && !smith_image_name(c->image, c->len, name))
		name[0] = '\0';
	if (name[0])
		smith_rec_put_str(r, SMITH_F_MOD_NAME, name, sizeof(name));
	if (c->fd >= 0)
		smith_rec_put_fd(r, SMITH_F_MOD_PATH, c->fd);
	if (c->params)
		smith_rec_put_user_str(r, SMITH_F_MOD_PARAMS, c->params,
				       SMITH_PARAMS_CAP);
	smith_rec_submit(r);
out:
	smith_latency_end(hook, t0);
	smith_hook_exit();
}

static int smith_init_module_ret(struct kretprobe_instance *ri,
				 struct pt_regs *regs)
{
	smith_mod_record(SMITH_HI_INIT_MODULE, SMITH_EV_INIT_MODULE,
			 (void *)ri->data, regs_return_value(regs));
	return 0;
}

static int smith_finit_module_ret(struct kretprobe_instance *ri,
				  struct pt_regs *regs)
{
	smith_mod_record(SMITH_HI_FINIT_MODULE, SMITH_EV_FINIT_MODULE,
			 (void *)ri->data, regs_return_value(regs));
	return 0;
}

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_init_module_krp, SMITH_HI_INIT_MODULE,
			       smith_init_module_syms,
			       struct smith_mod_call, smith_init_module_save,
			       smith_init_module_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_finit_module_krp, SMITH_HI_FINIT_MODULE,
			       smith_finit_module_syms,
			       struct smith_mod_call, smith_finit_module_save,
			       smith_finit_module_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_init_module32_krp, SMITH_HI_INIT_MODULE,
			       smith_init_module32_syms,
			       struct smith_mod_call, smith_init_module_save,
			       smith_init_module_ret);

SMITH_DEFINE_SYSCALL_KRETPROBE(smith_finit_module32_krp, SMITH_HI_FINIT_MODULE,
			       smith_finit_module32_syms,
			       struct smith_mod_call, smith_finit_module_save,
			       smith_finit_module_ret);

/* A module's init may sleep for long; loads are few. */
#define SMITH_MOD_MAXACTIVE_PER_CPU	4
#define SMITH_MOD_MAXACTIVE_CAP		256

int smith_module_hooks_init(void)
{
	int maxactive = smith_maxactive(SMITH_MOD_MAXACTIVE_PER_CPU,
					SMITH_MOD_MAXACTIVE_CAP);
	int err, n = 0;

	err = register_module_notifier(&smith_mod_nb);
	if (err)
		pr_warn("module notifier: error %d, module names not recorded\n",
			err);

	err = smith_kretprobe_register(&smith_init_module_krp, maxactive);
	smith_hook_attached(SMITH_HI_INIT_MODULE, err);
	n += !err;

	err = smith_kretprobe_register(&smith_finit_module_krp, maxactive);
	smith_hook_attached(SMITH_HI_FINIT_MODULE, err);
	n += !err;

	/* arm64: AArch32 loads reach the native probes (arch.h). */
	if (SMITH_ARCH_COMPAT_PROBES && !SMITH_ARCH_COMPAT_SHARES_NATIVE) {
		err = smith_kretprobe_register(&smith_init_module32_krp,
					       maxactive);
		if (err)
			pr_warn("kretprobe 32-bit init_module: error %d, not recorded\n",
				err);
		err = smith_kretprobe_register(&smith_finit_module32_krp,
					       maxactive);
		if (err)
			pr_warn("kretprobe 32-bit finit_module: error %d, not recorded\n",
				err);
	}
	return n;
}

void smith_module_hooks_exit(void)
{
	unregister_module_notifier(&smith_mod_nb);
}

void smith_module_hooks_missed(u64 missed[])
{
	smith_kretprobe_missed(&smith_init_module_krp, missed);
	smith_kretprobe_missed(&smith_finit_module_krp, missed);
	smith_kretprobe_missed(&smith_init_module32_krp, missed);
	smith_kretprobe_missed(&smith_finit_module32_krp, missed);
}
