@ SPDX-License-Identifier: GPL-2.0
@
@ hooktest32.s - an AArch32 (A32) program for kernel/hooktest on arm64
@ kernels: one system call through the AArch32 entry, chosen by argv[1],
@ then exit with its errno (0 when it succeeded, 255 on bad usage).
@ Static, no libc; scripts/vm/guest.sh assembles it into the arm64 guest
@ as /guest/hooktest32 (binutils-arm-linux-gnueabihf), and
@ kernel/hooktest/compat_arm64_test.go runs it.
@
@   hooktest32 e PATH [ARG...]     execve(PATH, {PATH, ARG..., NULL}, envp)
@   hooktest32 a PATH [ARG...]     execveat(AT_FDCWD, PATH, {PATH, ARG...,
@                                  NULL}, envp, 0)
@   hooktest32 i IMAGE PARAMS      init_module(IMAGE, strlen(IMAGE), PARAMS)
@   hooktest32 f PARAMS            finit_module(3, PARAMS, 0): the caller
@                                  opens the file as descriptor 3
@   hooktest32 c PORT              socket(AF_INET, SOCK_STREAM, 0), then
@                                  connect to 127.0.0.1:PORT (decimal)

	.syntax	unified
	.arch	armv7-a
	.arm

	@ The ARM EABI system call numbers (arch/arm/tools/syscall.tbl).
	.equ	SYS_execve, 11
	.equ	SYS_init_module, 128
	.equ	SYS_exit_group, 248
	.equ	SYS_socket, 281
	.equ	SYS_connect, 283
	.equ	SYS_finit_module, 379
	.equ	SYS_execveat, 387

	.text
	.global	_start
_start:
	ldr	r4, [sp]		@ argc
	add	r5, sp, #4		@ argv
	add	r6, r5, r4, lsl #2
	add	r6, r6, #4		@ envp: after argv's NULL
	cmp	r4, #3
	blt	usage
	ldr	r0, [r5, #4]		@ argv[1]: which call
	ldrb	r0, [r0]
	ldr	r8, [r5, #8]		@ argv[2]
	cmp	r0, #'e'
	beq	do_execve
	cmp	r0, #'a'
	beq	do_execveat
	cmp	r0, #'i'
	beq	do_init_module
	cmp	r0, #'f'
	beq	do_finit_module
	cmp	r0, #'c'
	beq	do_connect
usage:
	mov	r0, #255
	b	exit_status

do_execve:
	mov	r0, r8
	add	r1, r5, #8		@ &argv[2]
	mov	r2, r6
	ldr	r7, =SYS_execve
	svc	#0
	b	exit_errno

do_execveat:
	mvn	r0, #99			@ AT_FDCWD (-100)
	mov	r1, r8
	add	r2, r5, #8
	mov	r3, r6
	mov	r4, #0
	ldr	r7, =SYS_execveat
	svc	#0
	b	exit_errno

do_init_module:
	cmp	r4, #4
	blt	usage
	mov	r0, r8
	mov	r1, r8
1:	ldrb	r3, [r1], #1
	cmp	r3, #0
	bne	1b
	sub	r1, r1, r8
	sub	r1, r1, #1		@ strlen(IMAGE)
	ldr	r2, [r5, #12]		@ PARAMS
	ldr	r7, =SYS_init_module
	svc	#0
	b	exit_errno

do_finit_module:
	mov	r0, #3
	mov	r1, r8
	mov	r2, #0
	ldr	r7, =SYS_finit_module
	svc	#0
	b	exit_errno

do_connect:
	mov	r1, #0			@ the port: decimal digits of argv[2]
1:	ldrb	r3, [r8], #1
	sub	r3, r3, #'0'
	cmp	r3, #9
	bhi	2f
	add	r1, r1, r1, lsl #2
	add	r1, r3, r1, lsl #1	@ r1 = r1 * 10 + digit
	b	1b
2:	sub	sp, sp, #16		@ struct sockaddr_in
	mov	r3, #2			@ AF_INET
	strh	r3, [sp]
	lsr	r3, r1, #8
	strb	r3, [sp, #2]		@ sin_port, big-endian
	strb	r1, [sp, #3]
	ldr	r3, =0x0100007f		@ 127.0.0.1
	str	r3, [sp, #4]
	mov	r3, #0
	str	r3, [sp, #8]
	str	r3, [sp, #12]
	mov	r0, #2			@ AF_INET
	mov	r1, #1			@ SOCK_STREAM
	mov	r2, #0
	ldr	r7, =SYS_socket
	svc	#0
	cmp	r0, #0
	blt	exit_errno
	mov	r1, sp
	mov	r2, #16
	ldr	r7, =SYS_connect
	svc	#0

exit_errno:				@ r0: the last call's result
	cmp	r0, #0
	movge	r0, #0
	rsblt	r0, r0, #0
exit_status:
	ldr	r7, =SYS_exit_group
	svc	#0
	.ltorg

	@ No executable stack (the kernel warns about programs that ask for one).
	.section .note.GNU-stack, "", %progbits
