// SPDX-License-Identifier: GPL-2.0
/*
 * ringbench - the cost of kernel/ring.c's reserve + commit (user-space
 * build), for shm's BenchmarkCProducer.
 *
 *   ringbench DATA_SIZE THREADS RECORDS LEN
 *
 * THREADS producer threads each reserve, fill (the test header) and commit
 * RECORDS records of LEN bytes while one consumer thread reads headers and
 * moves consumer_pos on every 64 records. Prints one line:
 *   cpu_ns_per_record C wall_ns_per_record W dropped D
 * where C is the producers' CPU time (CLOCK_THREAD_CPUTIME_ID, lock
 * spinning included) per record written or dropped.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring.h"

#define PAGE 4096

static struct smith_ring ring;
static unsigned long long records;
static u32 rec_len;
static int producers_left;

struct producer {
	pthread_t thread;
	u32 id;
	unsigned long long dropped;
	long long cpu_ns;
};

static long long ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	long long start = ns(CLOCK_THREAD_CPUTIME_ID);
	unsigned long long seq;

	for (seq = 0; seq < records; seq++) {
		struct smith_test_rec *t;

		t = (void *)smith_ring_reserve(&ring, rec_len, SMITH_REC_TEST, 0);
		if (!t) {
			p->dropped++;
			continue;
		}
		t->producer = p->id;
		t->seq = seq;
		smith_ring_commit(&ring, &t->hdr);
	}
	p->cpu_ns = ns(CLOCK_THREAD_CPUTIME_ID) - start;
	__atomic_fetch_sub(&producers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void consume(void)
{
	u64 cons = 0, n = 0;

	for (;;) {
		u64 prod = smp_load_acquire(&ring.meta->producer_pos);
		struct smith_rec_hdr *h;
		u32 len;

		if (cons == prod) {
			if (!__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE) &&
			    cons == smp_load_acquire(&ring.meta->producer_pos))
				break;
			smp_store_release(&ring.cons->consumer_pos, cons);
			continue;
		}
		h = (void *)(ring.data + (cons & ring.mask));
		len = smp_load_acquire(&h->len);
		if (len & SMITH_REC_BUSY)
			continue;
		cons += SMITH_REC_ALIGN(len & SMITH_REC_LEN_MASK);
		if (++n % 64 == 0)
			smp_store_release(&ring.cons->consumer_pos, cons);
	}
	smp_store_release(&ring.cons->consumer_pos, cons);
}

int main(int argc, char **argv)
{
	unsigned long long size, dropped = 0;
	long long wall, cpu = 0;
	struct producer *prods;
	int n, i;
	u8 *mem;

	if (argc != 5)
		return 2;
	size = strtoull(argv[1], NULL, 0);
	n = atoi(argv[2]);
	records = strtoull(argv[3], NULL, 0);
	rec_len = atoi(argv[4]);
	if (n < 1 || rec_len < sizeof(struct smith_test_rec))
		return 2;
	mem = aligned_alloc(PAGE, 2 * PAGE + size);
	prods = calloc(n, sizeof(*prods));
	if (!mem || !prods)
		return 1;
	memset(mem, 0, 2 * PAGE + size);
	smith_ring_init(&ring, (void *)mem, (void *)(mem + PAGE), mem + 2 * PAGE,
			size, PAGE, 2 * PAGE);

	producers_left = n;
	wall = ns(CLOCK_MONOTONIC);
	for (i = 0; i < n; i++) {
		prods[i].id = i;
		if (pthread_create(&prods[i].thread, NULL, produce, &prods[i]))
			return 1;
	}
	consume();
	for (i = 0; i < n; i++) {
		pthread_join(prods[i].thread, NULL);
		cpu += prods[i].cpu_ns;
		dropped += prods[i].dropped;
	}
	wall = ns(CLOCK_MONOTONIC) - wall;
	printf("cpu_ns_per_record %.2f wall_ns_per_record %.2f dropped %llu\n",
	       (double)cpu / (n * records), (double)wall / (n * records),
	       dropped);
	return 0;
}
