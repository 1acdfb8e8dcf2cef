/*
 * proc.c - stop signals for the long-running commands: blocked in every
 * thread, taken synchronously by the main thread with sigwait, so no code
 * runs in a signal handler.
 */
#include "core/proc.h"

#include <pthread.h>

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
