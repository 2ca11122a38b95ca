/* SPDX-License-Identifier: GPL-2.0 */
/*
 * arch.h - everything in the module that differs per CPU architecture.
 *
 * The rule: this is the only file that tests CONFIG_X86_64, CONFIG_ARM64
 * or names an architecture's registers or syscall entry symbols.  The hook
 * files name a syscall entry only through SMITH_SYSCALL_SYM() (and the
 * compat macros below) and read arguments only through the smith_arch_*()
 * helpers; an architecture is added here and nowhere else.
 *
 * Supported: x86_64 and arm64 (AArch64).  Any other architecture stops the
 * build below rather than probing symbols that do not exist or reading
 * the wrong registers.
 *
 * Syscall entry points.  Since 4.17 (x86_64) and 4.19 (arm64) every
 * syscall is built as a wrapper PREFIX_sys_NAME(const struct pt_regs *regs),
 * regs being the user's saved registers; the C function behind it is
 * static.  Older kernels have sys_NAME(args...), a plain C call.
 *
 * 32-bit callers (CONFIG_COMPAT: ia32 on x86_64, AArch32 on arm64) enter
 * through SMITH_COMPAT_SYSCALL_SYM(NAME) where the kernel has a compat
 * variant of NAME (execve, execveat; not connect, init_module,
 * finit_module).  For a call without one, x86_64 still has a separate ia32
 * wrapper, SMITH_COMPAT_NATIVE_SYSCALL_SYM(NAME); arm64's AArch32 table
 * points at the native __arm64_sys_NAME itself, so the native probe sees
 * those calls already (SMITH_ARCH_COMPAT_SHARES_NATIVE; in_compat_syscall()
 * tells them apart) and probing the symbol twice would record them twice:
 * only the compat variants (execve, execveat) are probed apart there.
 */
#ifndef _SMITH_ARCH_H
#define _SMITH_ARCH_H

#include <linux/ptrace.h>
#include <linux/types.h>

#if defined(CONFIG_X86_64)

#define SMITH_ARCH_NAME			"x86_64"
#define SMITH_SYSCALL_SYM(name)		"__x64_sys_" name
#define SMITH_COMPAT_SYSCALL_SYM(name)	"__ia32_compat_sys_" name
#define SMITH_COMPAT_NATIVE_SYSCALL_SYM(name)	"__ia32_sys_" name
#define SMITH_ARCH_COMPAT_SHARES_NATIVE	0
/* The 32-bit entries above are probed (failed execs, module loads). */
#define SMITH_ARCH_COMPAT_PROBES	IS_ENABLED(CONFIG_IA32_EMULATION)

/* The wrapper's argument, the user's registers: the first C argument. */
static inline const struct pt_regs *
smith_arch_wrapper_regs(const struct pt_regs *regs)
{
	return (const struct pt_regs *)regs->di;
}

/* Argument n (0-5) of a native syscall: di, si, dx, r10, r8, r9. */
static inline unsigned long smith_arch_syscall_arg(const struct pt_regs *u,
						   unsigned int n)
{
	switch (n) {
	case 0: return u->di;
	case 1: return u->si;
	case 2: return u->dx;
	case 3: return u->r10;
	case 4: return u->r8;
	default: return u->r9;
	}
}

/* Argument n (0-5) of an ia32 syscall (int 0x80): bx, cx, dx, si, di, bp. */
static inline unsigned long
smith_arch_compat_syscall_arg(const struct pt_regs *u, unsigned int n)
{
	switch (n) {
	case 0: return (u32)u->bx;
	case 1: return (u32)u->cx;
	case 2: return (u32)u->dx;
	case 3: return (u32)u->si;
	case 4: return (u32)u->di;
	default: return (u32)u->bp;
	}
}

/* Argument n (0-5) of a plain C call: di, si, dx, cx, r8, r9. */
static inline unsigned long smith_arch_call_arg(const struct pt_regs *regs,
						unsigned int n)
{
	switch (n) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->cx;
	case 4: return regs->r8;
	default: return regs->r9;
	}
}

#elif defined(CONFIG_ARM64)

#define SMITH_ARCH_NAME			"arm64"
#define SMITH_SYSCALL_SYM(name)		"__arm64_sys_" name
#define SMITH_COMPAT_SYSCALL_SYM(name)	"__arm64_compat_sys_" name
#define SMITH_COMPAT_NATIVE_SYSCALL_SYM(name)	"__arm64_sys_" name
#define SMITH_ARCH_COMPAT_SHARES_NATIVE	1
/*
 * AArch32 execve and execveat have their own entries,
 * __arm64_compat_sys_execve(at) (6.1 and 6.12), probed for their
 * failures; AArch32 module loads reach the native probes, which tell them
 * by in_compat_syscall() (hooks.h: smith_sys_compat()).  Tested with the
 * A32 program kernel/hooktest/aarch32/hooktest32.s.
 */
#define SMITH_ARCH_COMPAT_PROBES	IS_ENABLED(CONFIG_COMPAT)

/* The wrapper's argument, the user's registers: the first C argument, x0. */
static inline const struct pt_regs *
smith_arch_wrapper_regs(const struct pt_regs *regs)
{
	return (const struct pt_regs *)regs->regs[0];
}

/*
 * Argument n (0-5) of a native syscall: x0-x5.  x0 is overwritten with the
 * result only when the syscall returns, after the entry handler ran.
 */
static inline unsigned long smith_arch_syscall_arg(const struct pt_regs *u,
						   unsigned int n)
{
	return u->regs[min(n, 5u)];
}

/*
 * Argument n (0-5) of an AArch32 syscall: r0-r5, which the compat pt_regs
 * keeps in the low halves of regs[0]-regs[5] (r7, the number, in regs[7]).
 */
static inline unsigned long
smith_arch_compat_syscall_arg(const struct pt_regs *u, unsigned int n)
{
	return (u32)u->regs[min(n, 5u)];
}

/* Argument n (0-5) of a plain C call: x0-x5. */
static inline unsigned long smith_arch_call_arg(const struct pt_regs *regs,
						unsigned int n)
{
	return regs->regs[min(n, 5u)];
}

#else
#error "smith: supported architectures are x86_64 and arm64 (kernel/arch.h)"
#endif

#endif /* _SMITH_ARCH_H */
