// SPDX-License-Identifier: GPL-2.0
/*
 * hookloop - the syscall loops of the hook-cost benchmark.
 *
 *   hookloop exec N PROGRAM [SAMPLES]  fork + execve(PROGRAM) + wait, N times
 *   hookloop connect N [SAMPLES]       TCP connect + close to a listener on
 *                                      127.0.0.1, N times
 *
 * Prints one JSON line: {"op":..,"n":..,"total_ns":..,"mean_ns":..,
 * "median_ns":..,"p95_ns":..,"p99_ns":..,"max_ns":..}.  With SAMPLES, the
 * N per-iteration times (ns, one per line) are written to that file too,
 * for the latency CDF.
 *
 * Plain C rather than Go: the loop must be nothing but the syscalls being
 * measured.  A Go loop would add the scheduler, the garbage collector and
 * the netpoller (a Go connect is non-blocking plus epoll, not the blocking
 * connect most programs make) to every iteration.
 *
 * The client closes with SO_LINGER 0 (a reset), so no socket lingers in
 * TIME_WAIT and a long loop never runs out of local ports; the listener is
 * a child process that accepts and closes as fast as it can.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "hookloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int exec_once(const char *prog)
{
	char *const argv[] = { (char *)prog, NULL };
	char *const envp[] = { NULL };
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(prog, argv, envp);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "hookloop: %s did not exit 0 (status %d)\n",
			prog, status);
		exit(1);
	}
	return 0;
}

/* Start a child that accepts and closes; returns the port it listens on. */
static int start_listener(pid_t *child)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname");
	*child = fork();
	if (*child < 0)
		die("fork");
	if (*child == 0) {
		for (;;) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
			else if (errno != EINTR && errno != ECONNABORTED)
				_exit(1);
		}
	}
	close(fd);
	return ntohs(sa.sin_port);
}

static void connect_once(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of a sorted array. */
static uint64_t quantile(const uint64_t *v, long n, double q)
{
	long i = (long)(q * n + 0.999999) - 1;

	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void usage(void)
{
	fprintf(stderr,
		"usage: hookloop exec N PROGRAM [SAMPLES]\n"
		"       hookloop connect N [SAMPLES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *op, *prog = NULL, *samples = NULL;
	pid_t listener = 0;
	uint64_t *t, start, total;
	int port = 0;
	long i, n;

	if (argc < 3)
		usage();
	op = argv[1];
	n = strtol(argv[2], NULL, 10);
	if (n <= 0 || n > 100000000)
		usage();
	if (!strcmp(op, "exec")) {
		if (argc < 4 || argc > 5)
			usage();
		prog = argv[3];
		if (argc == 5)
			samples = argv[4];
	} else if (!strcmp(op, "connect")) {
		if (argc > 4)
			usage();
		if (argc == 4)
			samples = argv[3];
		port = start_listener(&listener);
	} else {
		usage();
	}

	t = calloc(n, sizeof(*t));
	if (!t)
		die("calloc");
	/* One untimed iteration: page cache, listener scheduled, etc. */
	if (prog)
		exec_once(prog);
	else
		connect_once(port);

	total = now_ns();
	for (i = 0; i < n; i++) {
		start = now_ns();
		if (prog)
			exec_once(prog);
		else
			connect_once(port);
		t[i] = now_ns() - start;
	}
	total = now_ns() - total;

	if (listener > 0) {
		kill(listener, SIGKILL);
		waitpid(listener, NULL, 0);
	}
	if (samples) {
		FILE *f = fopen(samples, "w");

		if (!f)
			die(samples);
		for (i = 0; i < n; i++)
			fprintf(f, "%llu\n", (unsigned long long)t[i]);
		if (fclose(f))
			die(samples);
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("{\"op\":\"%s\",\"n\":%ld,\"total_ns\":%llu,\"mean_ns\":%llu,"
	       "\"median_ns\":%llu,\"p95_ns\":%llu,\"p99_ns\":%llu,"
	       "\"max_ns\":%llu}\n",
	       op, n, (unsigned long long)total,
	       (unsigned long long)(total / n),
	       (unsigned long long)quantile(t, n, 0.5),
	       (unsigned long long)quantile(t, n, 0.95),
	       (unsigned long long)quantile(t, n, 0.99),
	       (unsigned long long)t[n - 1]);
	free(t);
	return 0;
}
