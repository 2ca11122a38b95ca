// SPDX-License-Identifier: GPL-2.0
/*
 * smith_hooktest.c - the module the init_module/finit_module guest tests
 * load: it does nothing, and refuses to load when asked to (fail=1), so a
 * load rejected after its image was accepted can be recorded too.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static int fail;
module_param(fail, int, 0444);
MODULE_PARM_DESC(fail, "refuse to load with -EINVAL when non-zero");

static int __init smith_hooktest_init(void)
{
	return fail ? -EINVAL : 0;
}

static void __exit smith_hooktest_exit(void)
{
}

module_init(smith_hooktest_init);
module_exit(smith_hooktest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Smith hook tests: a module to load and unload");
