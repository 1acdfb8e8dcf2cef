/*
 * cluster_internal.h - what the cluster module's files share: running a
 * Lua script on the connection, and the names of the keys.
 */
#ifndef MUNIM_CLUSTER_INTERNAL_H
#define MUNIM_CLUSTER_INTERNAL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

/* Every key munim writes starts with this. */
#define CLUSTER_PREFIX "munim:"
/* Most arguments (keys and values) a script is run with. */
#define CLUSTER_ARGS_MAX 24

/*
 * A Lua script: its text, and the SHA1 Redis gave it when loaded ("" until
 * then). EVALSHA runs it; a NOSCRIPT answer (a restarted or flushed
 * server) loads it again and runs it once more.
 */
struct cluster__script {
	const char *name; /* for messages */
	const char *text;
	char sha[41];
};

/*
 * cluster__eval runs script s with nkeys keys then the other arguments
 * (argv[0..argc), each NUL-terminated) and gives its reply in *out (free
 * with freeReplyObject). A call made while the connection is down and its
 * retry not yet due fails at once with ERR_AGAIN and no I/O. On a
 * connection error or timeout the connection is dropped and its retry
 * scheduled (backoff from 250 ms, doubling, at most 1 s): ERR_IO or
 * ERR_TIMEOUT. A script error is ERR_PROTO (the connection stays). The
 * reason in cluster_redis_errmsg. now_ms is the caller's wall clock.
 */
int cluster__eval(struct cluster_redis *r, struct cluster__script *s, int nkeys, int argc,
                  const char *const *argv, int64_t now_ms, redisReply **out);

/* cluster__int: the integer at element i of an array reply, or def. */
int64_t cluster__int(const redisReply *rep, size_t i, int64_t def);

#endif
