// SPDX-License-Identifier: GPL-2.0
/*
 * tbcount - a QEMU TCG plugin that counts the guest instructions executed
 * per translation-block start address, and writes a snapshot of all the
 * counters each time the guest executes the marker instruction.
 *
 *   qemu-system-x86_64 ... -plugin benchmark/profile/tbcount.so,out=FILE
 *
 * The marker is "nopl 0x534d5448(%rax)" (0f 1f 80 48 54 4d 53, "HTMS"),
 * which benchmark/profile/profmark.c executes.  Snapshot k is written to
 * FILE as a line "mark k" followed by one line "ADDR INSNS EXECS" (hex,
 * decimal, decimal: instructions executed in blocks starting there, and
 * how many times such a block ran) per address whose counter is not zero;
 * the counters are cumulative since boot.  At exit a last snapshot is written (line "mark end").
 *
 * Counting is inline (two adds per executed block, no callback), so that
 * the guest runs at close to its usual speed.  A block interrupted by an
 * exception part-way is counted whole; blocks rarely cross a function
 * boundary, so a block start address stands for the function holding it,
 * and the runs of the block at a function's first instruction are its
 * calls.  A repeated string instruction (rep movsb, rep stosb) runs as one
 * block per iteration under TCG, and -icount counts each iteration as one
 * instruction: so do these counters.
 *
 * The QEMU plugin header is not installed with Debian's QEMU: the few
 * declarations needed are written out below, after the documented plugin
 * API (version 1, QEMU 4.2 to 8.1).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the plugin API (include/qemu/qemu-plugin.h) --- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;
/* --- end of the plugin API --- */

static const unsigned char marker[] = { 0x0f, 0x1f, 0x80, 0x48, 0x54, 0x4d, 0x53 };

struct counter {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t execs;
	struct counter *next; /* hash chain */
	struct counter *all;  /* every counter, for the snapshots */
};

#define HASH_BITS 20
static struct counter *table[1u << HASH_BITS];
static struct counter *all;
static FILE *out;
static unsigned marks;

static struct counter *lookup(uint64_t vaddr)
{
	uint64_t h = (vaddr * 0x9e3779b97f4a7c15ull) >> (64 - HASH_BITS);
	struct counter *c;

	for (c = table[h]; c; c = c->next)
		if (c->vaddr == vaddr)
			return c;
	c = calloc(1, sizeof(*c));
	if (!c) {
		qemu_plugin_outs("tbcount: out of memory\n");
		abort();
	}
	c->vaddr = vaddr;
	c->next = table[h];
	table[h] = c;
	c->all = all;
	all = c;
	return c;
}

static void snapshot(const char *label)
{
	struct counter *c;

	fprintf(out, "mark %s\n", label);
	for (c = all; c; c = c->all)
		if (c->insns)
			fprintf(out, "%llx %llu %llu\n", (unsigned long long)c->vaddr,
				(unsigned long long)c->insns, (unsigned long long)c->execs);
	fflush(out);
}

static void on_marker(unsigned int vcpu, void *udata)
{
	char label[16];

	(void)vcpu;
	(void)udata;
	snprintf(label, sizeof(label), "%u", marks++);
	snapshot(label);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);
	struct counter *c = lookup(qemu_plugin_tb_vaddr(tb));

	(void)id;
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &c->insns, n);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &c->execs, 1);
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

		if (qemu_plugin_insn_size(insn) == sizeof(marker) &&
		    memcmp(qemu_plugin_insn_data(insn), marker, sizeof(marker)) == 0)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
	}
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	(void)id;
	(void)udata;
	snapshot("end");
	fclose(out);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
							       int argc, char **argv)
{
	const char *path = "tbcount.out";
	int i;

	(void)info;
	for (i = 0; i < argc; i++)
		if (strncmp(argv[i], "out=", 4) == 0)
			path = argv[i] + 4;
	out = fopen(path, "w");
	if (!out) {
		qemu_plugin_outs("tbcount: cannot open the output file\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
