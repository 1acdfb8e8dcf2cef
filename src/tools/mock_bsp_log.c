/*
 * mock_bsp_log.c - the mock BSP's memory of what it accepted.
 *
 * Design
 *   A ring of records: message i lives in recs[i % max_msgs] while
 *   oldest <= i < next. A record is 64 bytes of fixed fields plus one
 *   allocation of exactly its strings ("wamid\0phone\0context\0body\0",
 *   the context "" when the message quotes none), so a
 *   million messages of a few hundred bytes stay in a few hundred MB, and
 *   max_bytes caps that sum whatever the bodies are. The ring is one calloc:
 *   the kernel commits its pages only as messages arrive.
 *
 *   Two hash chains index the ring: by quoted wamid (context.message_id)
 *   and by recipient. A bucket holds the newest message of that hash (as
 *   index + 1, so a zeroed table is empty); each record links to the next
 *   older message of the same bucket. Newer messages are always pushed at
 *   the head, so a chain runs newest to oldest and a walk stops at the
 *   first link older than `oldest`: evicting needs no unlinking.
 *
 * Invariants: next - oldest <= max_msgs; bytes = sum of held blob sizes <=
 * max_bytes (a single message larger than max_bytes is still kept alone).
 *
 *   The replies feed (mock_log_replies) is what loadgen's collector
 *   polls: per message only its index, time and quoted wamid, written as
 *   short text lines straight from the records, without the bodies.
 *
 * Threading: one mutex around every call; queries copy their matches out
 * so no caller holds the lock while formatting (the replies feed formats
 * its few bytes a message under the lock: cheaper than copying them).
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

struct mock_rec {
	uint64_t index;
	int64_t received_ms;
	uint64_t ctx_hash; /* 0: quotes nothing */
	uint64_t to_hash;
	uint64_t ctx_next; /* older message in the same bucket, as index + 1 */
	uint64_t to_next;
	char *blob;
	size_t blob_len;
};

struct mock_log {
	pthread_mutex_t mu;
	struct mock_rec *recs;
	size_t max_msgs;
	size_t max_bytes;
	uint64_t oldest, next;
	size_t bytes;
	uint64_t *ctx_head, *to_head; /* index + 1 of the newest in the bucket */
	uint64_t mask;                /* buckets - 1 */
};

static uint64_t key_hash(const char *s)
{
	uint64_t h = hash_fnv1a(s, strlen(s));
	return h ? h : 1;
}

struct mock_log *mock_log_new(size_t max_msgs, size_t max_bytes)
{
	struct mock_log *l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->max_msgs = max_msgs ? max_msgs : 1;
	l->max_bytes = max_bytes;
	l->recs = xcalloc(l->max_msgs, sizeof(*l->recs));
	size_t buckets = 1024;
	while (buckets < l->max_msgs)
		buckets *= 2;
	l->mask = buckets - 1;
	l->ctx_head = xcalloc(buckets, sizeof(uint64_t));
	l->to_head = xcalloc(buckets, sizeof(uint64_t));
	return l;
}

/* Drops the oldest message; caller holds mu and oldest < next. */
static void evict_oldest(struct mock_log *l)
{
	struct mock_rec *r = &l->recs[l->oldest % l->max_msgs];
	l->bytes -= r->blob_len;
	free(r->blob);
	r->blob = NULL;
	r->blob_len = 0;
	l->oldest++;
}

void mock_log_free(struct mock_log *l)
{
	if (!l)
		return;
	while (l->oldest < l->next)
		evict_oldest(l);
	free(l->recs);
	free(l->ctx_head);
	free(l->to_head);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

uint64_t mock_log_add(struct mock_log *l, int64_t received_ms, const char *wamid,
                      const char *phone_number_id, const char *to, const char *context,
                      const char *body, size_t body_len)
{
	if (!context)
		context = "";
	size_t wl = strlen(wamid), pl = strlen(phone_number_id), cl = strlen(context);
	size_t len = wl + 1 + pl + 1 + cl + 1 + body_len + 1;
	char *blob = xmalloc(len);
	char *p = blob;
	memcpy(p, wamid, wl + 1);
	p += wl + 1;
	memcpy(p, phone_number_id, pl + 1);
	p += pl + 1;
	memcpy(p, context, cl + 1);
	p += cl + 1;
	memcpy(p, body, body_len);
	blob[len - 1] = '\0';
	uint64_t ch = *context ? key_hash(context) : 0;
	uint64_t th = key_hash(to);

	pthread_mutex_lock(&l->mu);
	while (l->oldest < l->next &&
	       (l->next - l->oldest >= l->max_msgs || l->bytes + len > l->max_bytes))
		evict_oldest(l);
	uint64_t i = l->next++;
	struct mock_rec *r = &l->recs[i % l->max_msgs];
	r->index = i;
	r->received_ms = received_ms;
	r->blob = blob;
	r->blob_len = len;
	l->bytes += len;
	r->ctx_hash = ch;
	r->ctx_next = 0;
	if (ch) {
		r->ctx_next = l->ctx_head[ch & l->mask];
		l->ctx_head[ch & l->mask] = i + 1;
	}
	r->to_hash = th;
	r->to_next = l->to_head[th & l->mask];
	l->to_head[th & l->mask] = i + 1;
	pthread_mutex_unlock(&l->mu);
	return i;
}

static void hit_copy(const struct mock_rec *r, struct mock_hit *h)
{
	char *b = xmalloc(r->blob_len);
	memcpy(b, r->blob, r->blob_len);
	h->index = r->index;
	h->received_ms = r->received_ms;
	h->wamid = b;
	h->phone_number_id = b + strlen(b) + 1;
	h->context = h->phone_number_id + strlen(h->phone_number_id) + 1;
	h->body = h->context + strlen(h->context) + 1;
}

/*
 * walk follows one chain (by context, else by recipient), keeping the
 * indexes that match every filter, newest first, in *idx (grown as needed;
 * the caller frees it). Newest-first queries stop at max matches.
 */
static int walk(const struct mock_log *l, const struct mock_query *q, uint64_t **idx, int max)
{
	size_t cap = 64;
	*idx = xmalloc(cap * sizeof(**idx));
	int by_ctx = q->context != NULL;
	uint64_t h = key_hash(by_ctx ? q->context : q->to);
	uint64_t th = q->to ? key_hash(q->to) : 0;
	uint64_t link = by_ctx ? l->ctx_head[h & l->mask] : l->to_head[h & l->mask];
	int n = 0;
	while (link && n < max) {
		uint64_t i = link - 1;
		if (i < l->oldest || i < q->since)
			break;
		const struct mock_rec *r = &l->recs[i % l->max_msgs];
		int match =
		        by_ctx ? r->ctx_hash == h && (!th || r->to_hash == th) : r->to_hash == h;
		if (match) {
			if ((size_t)n == cap) {
				cap *= 2;
				*idx = xrealloc(*idx, cap * sizeof(**idx));
			}
			(*idx)[n++] = i;
		}
		link = by_ctx ? r->ctx_next : r->to_next;
	}
	return n;
}

void mock_log_query(struct mock_log *l, const struct mock_query *q, struct mock_hit **out, int *n,
                    uint64_t *next)
{
	int limit = q->limit > 0 ? q->limit : 1;
	struct mock_hit *hits = xcalloc((size_t)limit, sizeof(*hits));
	uint64_t *idx = NULL;
	int k = 0;
	pthread_mutex_lock(&l->mu);
	uint64_t from = q->since > l->oldest ? q->since : l->oldest;
	if (q->context || q->to) {
		int m = walk(l, q, &idx, q->newest_first ? limit : INT_MAX);
		/* idx is newest first; the oldest-first answer takes its tail */
		for (int j = 0; j < m && k < limit; j++) {
			uint64_t i = q->newest_first ? idx[j] : idx[m - 1 - j];
			hit_copy(&l->recs[i % l->max_msgs], &hits[k++]);
		}
	} else if (q->newest_first) {
		for (uint64_t i = l->next; i > from && k < limit; i--)
			hit_copy(&l->recs[(i - 1) % l->max_msgs], &hits[k++]);
	} else {
		for (uint64_t i = from; i < l->next && k < limit; i++)
			hit_copy(&l->recs[i % l->max_msgs], &hits[k++]);
	}
	uint64_t nx = l->next;
	pthread_mutex_unlock(&l->mu);
	free(idx);
	/* an incremental poll resumes after the newest message returned, or
	 * at the end when everything matching was returned */
	if (!q->newest_first && k == limit)
		nx = hits[k - 1].index + 1;
	*out = hits;
	*n = k;
	*next = nx;
}

/* The context as the feed shows it: itself when all of it is '!'..'~', else "-". */
static void put_context(struct buf *b, const char *ctx)
{
	size_t n = 0;
	for (; ctx[n]; n++)
		if ((unsigned char)ctx[n] <= ' ' || (unsigned char)ctx[n] > '~')
			break;
	if (n == 0 || ctx[n])
		buf_append(b, "-", 1);
	else
		buf_append(b, ctx, n);
}

void mock_log_replies(struct mock_log *l, uint64_t since, int limit, struct buf *out, int *n,
                      uint64_t *next)
{
	int k = 0;
	pthread_mutex_lock(&l->mu);
	uint64_t i = since > l->oldest ? since : l->oldest;
	for (; i < l->next && k < limit; i++, k++) {
		const struct mock_rec *r = &l->recs[i % l->max_msgs];
		const char *ctx = r->blob + strlen(r->blob) + 1; /* past the wamid */
		ctx += strlen(ctx) + 1;                          /* past the phone_number_id */
		buf_put_u64(out, r->index);
		buf_putc(out, ' ');
		buf_put_u64(out, r->received_ms > 0 ? (uint64_t)r->received_ms : 0);
		buf_putc(out, ' ');
		put_context(out, ctx);
		buf_putc(out, '\n');
	}
	/* as mock_log_query: after the last one returned, or the end */
	*next = k == limit ? i : l->next;
	pthread_mutex_unlock(&l->mu);
	*n = k;
}

void mock_hits_free(struct mock_hit *hits, int n)
{
	if (!hits)
		return;
	for (int i = 0; i < n; i++)
		free(hits[i].wamid);
	free(hits);
}

void mock_log_clear(struct mock_log *l)
{
	pthread_mutex_lock(&l->mu);
	while (l->oldest < l->next)
		evict_oldest(l);
	pthread_mutex_unlock(&l->mu);
}

void mock_log_counts(struct mock_log *l, uint64_t *held, uint64_t *bytes, uint64_t *next)
{
	pthread_mutex_lock(&l->mu);
	*held = l->next - l->oldest;
	*bytes = l->bytes;
	*next = l->next;
	pthread_mutex_unlock(&l->mu);
}
