// SPDX-License-Identifier: GPL-2.0
/*
 * ringscript - replays a script of producer operations through
 * kernel/ring.c (user-space build) on a fresh ring, for shm's test that the
 * Go producer writes the same bytes and makes the same decisions.
 *
 *   ringscript DATA_SIZE DUMP_FILE < script
 *
 * One operation per line; one result line per operation on stdout:
 *   w LEN FLAGS SEQ   write a test record        -> "w OK WAKE"
 *   r LEN SEQ         reserve a test record      -> "r OK"
 *   c                 commit the oldest reserved -> "c WAKE"
 *   d                 discard the oldest reserved -> "d WAKE"
 *   f                 count a user-fault drop    -> "f"
 *   a                 the reader consumes all    -> "a"
 *   s RP WB           the reader stores read_pos RP and wakeup_bytes WB
 *                                                -> "s"
 * At the end the whole memory (consumer page, meta page, data; 4096-byte
 * pages) is written to DUMP_FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define PAGE 4096
#define MAX_HELD 64

static void fill(u8 *rec, u32 len, u16 flags, u64 seq)
{
	struct smith_test_rec *t = (void *)rec;
	u32 i;

	t->hdr.type = SMITH_REC_TEST;
	t->hdr.flags = flags;
	t->producer = 1;
	t->_pad = 0;
	t->seq = seq;
	for (i = sizeof(*t); i < len; i++)
		rec[i] = (u8)(seq + i - sizeof(*t));
}

int main(int argc, char **argv)
{
	static u8 buf[SMITH_REC_MAX_LEN] __attribute__((aligned(8)));
	struct smith_rec_hdr *held[MAX_HELD];
	int nheld = 0;
	struct smith_ring r;
	unsigned long long size, len, flags, seq;
	char line[128];
	u8 *mem;
	FILE *f;

	if (argc != 3)
		return 2;
	size = strtoull(argv[1], NULL, 0);
	mem = aligned_alloc(PAGE, 2 * PAGE + size);
	if (!mem)
		return 1;
	memset(mem, 0, 2 * PAGE + size);
	smith_ring_init(&r, (void *)mem, (void *)(mem + PAGE), mem + 2 * PAGE,
			size, PAGE, 2 * PAGE);

	while (fgets(line, sizeof(line), stdin)) {
		bool wake = false, ok;

		switch (line[0]) {
		case 'w':
			if (sscanf(line + 1, "%llu %llu %llu", &len, &flags, &seq) != 3 ||
			    len < sizeof(struct smith_test_rec) || len > sizeof(buf))
				return 2;
			fill(buf, len, flags, seq);
			ok = smith_ring_write(&r, buf, len, &wake);
			printf("w %d %d\n", ok, wake);
			break;
		case 'r': {
			struct smith_rec_hdr *h;

			if (sscanf(line + 1, "%llu %llu", &len, &seq) != 2 ||
			    len < sizeof(struct smith_test_rec) || nheld == MAX_HELD)
				return 2;
			h = smith_ring_reserve(&r, len, SMITH_REC_TEST, 0);
			if (h) {
				/* the payload only: the header stays BUSY */
				fill(buf, len, 0, seq);
				memcpy(h + 1, buf + sizeof(*h), len - sizeof(*h));
				held[nheld++] = h;
			}
			printf("r %d\n", h != NULL);
			break;
		}
		case 'c':
		case 'd':
			if (!nheld)
				return 2;
			wake = line[0] == 'c' ? smith_ring_commit(&r, held[0]) :
						smith_ring_discard(&r, held[0]);
			memmove(held, held + 1, --nheld * sizeof(held[0]));
			printf("%c %d\n", line[0], wake);
			break;
		case 'f':
			smith_ring_count_drop(&r, &r.meta->dropped_fault);
			printf("f\n");
			break;
		case 's': {
			unsigned long long rp, wb;

			if (sscanf(line + 1, "%llu %llu", &rp, &wb) != 2)
				return 2;
			WRITE_ONCE(r.cons->read_pos, rp);
			WRITE_ONCE(r.cons->wakeup_bytes, wb);
			printf("s\n");
			break;
		}
		case 'a':
			smp_store_release(&r.cons->consumer_pos,
					  smp_load_acquire(&r.meta->producer_pos));
			printf("a\n");
			break;
		default:
			return 2;
		}
	}
	f = fopen(argv[2], "w");
	if (!f || fwrite(mem, 1, 2 * PAGE + size, f) != 2 * PAGE + size ||
	    fclose(f))
		return 1;
	return 0;
}
