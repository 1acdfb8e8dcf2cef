/*
 * proc.h - process-wide set-up shared by the long-running commands (serve,
 * mock-bsp, loadgen): stop signals go to the main thread only, which waits
 * for one; room for the open files their connections need.
 */
#ifndef MUNIM_PROC_H
#define MUNIM_PROC_H

#include <signal.h>
#include <stdint.h>

/*
 * proc_block_stop_signals blocks SIGINT and SIGTERM in the calling thread
 * (and so in every thread it creates afterwards) and ignores SIGPIPE (a
 * peer that hangs up must not kill the process). Call it before starting
 * threads; *set receives the stop signals for proc_wait_stop.
 */
void proc_block_stop_signals(sigset_t *set);
/* proc_wait_stop waits for one of set's signals and returns its number. */
int proc_wait_stop(const sigset_t *set);
/*
 * proc_ensure_fds raises the soft limit on open files to need if it is
 * lower (as far as the hard limit allows). 0 when need fits, ERR_FULL when
 * it does not; *have gets the limit now in force (0 when unknown).
 */
int proc_ensure_fds(long long need, long long *have);

/*
 * proc_usage: the CPU time this process has used (user + system, seconds)
 * and its resident memory (bytes, from /proc/self/statm; 0 where that is
 * not readable). 0 or ERR_IO.
 */
int proc_usage(double *cpu_seconds, int64_t *rss_bytes);

#endif
