// SPDX-License-Identifier: GPL-2.0
/*
 * ringstress - the C side of shm's cross-language stress test.  Several
 * threads write SMITH_REC_TEST records through kernel/ring.c (built with
 * ring_user.h) into a ring in a shared file the Go test maps and reads.
 *
 *   ringstress RING_FD EVENT_FD DATA_SIZE PRODUCERS RECORDS SEED
 *
 * RING_FD is a file of 2 pages + DATA_SIZE bytes (inherited descriptor);
 * the ring is laid out in it with smith_ring_init, then "ready" is
 * printed.  When a commit says the reader may be asleep, an 8-byte 1 is
 * written to EVENT_FD (an eventfd).  Each producer attempts RECORDS
 * records, seq 0..RECORDS-1, of random sizes; some attempts are too large
 * or counted as faults on purpose, and some extra reservations are
 * discarded (or dropped, when the ring is full).  At the end one line per
 * producer,
 *   producer P attempts A dropped D too_large T faults F discarded X
 *     extra_dropped E
 * and "lost_pending N" (drops not yet reported by a lost record).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

static struct smith_ring ring;
static int event_fd;
static unsigned long long records;
static unsigned long long seed;

struct producer {
	pthread_t thread;
	u32 id;
	unsigned long long dropped, too_large, faults, discarded, extra_dropped;
};

static u64 xorshift(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void wake(bool w)
{
	u64 one = 1;

	if (w && write(event_fd, &one, sizeof(one)) != sizeof(one) &&
	    errno != EAGAIN) {
		perror("ringstress: write eventfd");
		exit(1);
	}
}

/*
 * After a drop for lack of room, give the reader time to catch up, so most
 * attempts are read and drops stay a minority.  A reader that makes no
 * progress for two seconds is taken as stuck (a missed wake-up): then the
 * producers stop waiting, finish, and the Go test reports it.
 */
static int reader_stuck;

static void back_off(void)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!READ_ONCE(reader_stuck) &&
	       READ_ONCE(ring.meta->producer_pos) -
	       READ_ONCE(ring.cons->consumer_pos) > (ring.mask + 1) / 2) {
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 2)
			WRITE_ONCE(reader_stuck, 1);
	}
}

static void fill(struct smith_test_rec *t, u32 len, u32 producer, u64 seq)
{
	u8 *p = (u8 *)(t + 1);
	u32 i;

	t->producer = producer;
	t->_pad = 0;
	t->seq = seq;
	for (i = 0; i < len - sizeof(*t); i++)
		p[i] = (u8)(seq + i);
}

static u32 pick_len(u64 *rnd)
{
	u64 x = xorshift(rnd);

	if (x % 1024 == 0)	/* too large: dropped and counted */
		return ring.max_record + 1 + (u32)(x >> 32) % 64;
	if (x % 128 == 1)	/* anything up to the maximum */
		return sizeof(struct smith_test_rec) +
		       (u32)(x >> 32) % (ring.max_record - sizeof(struct smith_test_rec) + 1);
	return sizeof(struct smith_test_rec) + (u32)(x >> 32) % 200;
}

/* A record of len bytes the ring refused: too large, or the ring full. */
static void refused(struct producer *p, u32 len)
{
	p->dropped++;
	if (len > ring.max_record)
		p->too_large++;
	else
		back_off();
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	u64 rnd = seed * 0x9e3779b97f4a7c15ull + p->id + 1;
	static __thread u8 buf[SMITH_REC_MAX_LEN + 64] __attribute__((aligned(8)));
	unsigned long long seq;

	for (seq = 0; seq < records; seq++) {
		u32 len = pick_len(&rnd);
		u64 x = xorshift(&rnd);
		struct smith_rec_hdr *h;

		if (x % 2048 == 7) {
			/* a record lost before the ring, like a user fault */
			smith_ring_count_drop(&ring, &ring.meta->dropped_fault);
			p->faults++;
			continue;
		}
		if (x % 512 == 3) {
			/* reserved and given back: the reader never sees it */
			h = smith_ring_reserve(&ring, 64, SMITH_REC_TEST, 0);
			if (h) {
				wake(smith_ring_discard(&ring, h));
				p->discarded++;
			} else {
				/* a failed reservation is a counted drop too */
				p->extra_dropped++;
			}
		}
		if (x % 8 == 5 && len <= sizeof(buf)) {
			/* the copy-in path */
			struct smith_test_rec *t = (void *)buf;
			bool w = false;

			t->hdr.len = len;
			t->hdr.type = SMITH_REC_TEST;
			t->hdr.flags = (u16)(seq & 0xff);
			fill(t, len, p->id, seq);
			if (smith_ring_write(&ring, buf, len, &w))
				wake(w);
			else
				refused(p, len);
			continue;
		}
		h = smith_ring_reserve(&ring, len, SMITH_REC_TEST,
				       (u16)(seq & 0xff));
		if (!h) {
			refused(p, len);
			continue;
		}
		fill((struct smith_test_rec *)h, len, p->id, seq);
		wake(smith_ring_commit(&ring, h));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct producer *prods;
	unsigned long long size;
	long ps = sysconf(_SC_PAGESIZE);
	int fd, n, i;
	u8 *mem;

	if (argc != 7) {
		fprintf(stderr, "usage: %s RING_FD EVENT_FD DATA_SIZE PRODUCERS RECORDS SEED\n",
			argv[0]);
		return 2;
	}
	fd = atoi(argv[1]);
	event_fd = atoi(argv[2]);
	size = strtoull(argv[3], NULL, 0);
	n = atoi(argv[4]);
	records = strtoull(argv[5], NULL, 0);
	seed = strtoull(argv[6], NULL, 0);
	if (n < 1 || size < SMITH_RING_MIN_SIZE || (size & (size - 1))) {
		fprintf(stderr, "ringstress: bad arguments\n");
		return 2;
	}

	mem = mmap(NULL, 2 * ps + size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (mem == MAP_FAILED) {
		perror("ringstress: mmap");
		return 1;
	}
	smith_ring_init(&ring, (void *)mem, (void *)(mem + ps), mem + 2 * ps,
			size, ps, 2 * ps);
	printf("ready\n");
	fflush(stdout);

	prods = calloc(n, sizeof(*prods));
	if (!prods) {
		perror("ringstress: calloc");
		return 1;
	}
	for (i = 0; i < n; i++) {
		prods[i].id = i;
		if (pthread_create(&prods[i].thread, NULL, produce, &prods[i])) {
			fprintf(stderr, "ringstress: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(prods[i].thread, NULL);
	for (i = 0; i < n; i++)
		printf("producer %u attempts %llu dropped %llu too_large %llu faults %llu discarded %llu extra_dropped %llu\n",
		       prods[i].id, records, prods[i].dropped,
		       prods[i].too_large, prods[i].faults,
		       prods[i].discarded, prods[i].extra_dropped);
	printf("lost_pending %llu\n", (unsigned long long)ring.lost_pending);
	return 0;
}
