/*
 * proc.c - stop signals for the long-running commands: blocked in every
 * thread, taken synchronously by the main thread with sigwait, so no code
 * runs in a signal handler; the open-files limit their connections need.
 */
#include "core/proc.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/err.h"

void proc_block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int proc_wait_stop(const sigset_t *set)
{
	int sig = 0;
	sigwait(set, &sig);
	return sig;
}

int proc_ensure_fds(long long need, long long *have)
{
	struct rlimit rl;
	*have = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0; /* unknown: let open and accept say so */
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)need
		                      ? (rlim_t)need
		                      : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY) {
		*have = need;
		return 0;
	}
	*have = (long long)rl.rlim_cur;
	return *have >= need ? 0 : ERR_FULL;
}

int proc_usage(double *cpu_seconds, int64_t *rss_bytes)
{
	struct rusage ru;
	*cpu_seconds = 0;
	*rss_bytes = 0;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return ERR_IO;
	*cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	long long size = 0, resident = 0;
	if (fscanf(f, "%lld %lld", &size, &resident) == 2)
		*rss_bytes = (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
	fclose(f);
	return 0;
}
