// SPDX-License-Identifier: GPL-2.0
/*
 * profmark - execute the marker instruction of the tbcount QEMU plugin
 * (benchmark/profile/tbcount.c) once: the plugin writes a snapshot of its
 * counters.  On a machine without the plugin it is a no-op.
 */
int main(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80, 0x48, 0x54, 0x4d, 0x53"); /* nopl 0x534d5448(%rax) */
	return 0;
}
