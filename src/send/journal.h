/*
 * journal.h - the sender's local record of acceptances: "outbox row R was
 * accepted by the provider with message id M", made durable before the
 * store hears of it.
 *
 * An append-only file: records are buffered by journal_append and written
 * with one write(2) and one fdatasync by journal_sync. After a crash,
 * journal_replay hands back every intact record, so the rows the provider
 * had accepted are marked ACCEPTED instead of being sent again. Replaying a
 * record the store already has is harmless, so truncation needs no fsync.
 *
 * A journal handle belongs to one thread at a time; journal_replay reads
 * the file by path and needs no handle.
 */
#ifndef MUNIM_JOURNAL_H
#define MUNIM_JOURNAL_H

#include <stdint.h>

/* Longest provider message id a record holds (the sender's cap too). */
#define JOURNAL_MSGID_MAX 256

struct journal;

/*
 * journal_open opens path for appending, creating it (mode 0600) if
 * missing; the intact records already in the file stay, a torn or corrupt
 * tail is cut off before the next write. Returns 0, ERR_INVAL (empty path)
 * or ERR_IO (errno says why; also for a path that is not a regular file).
 * *out belongs to the caller (journal_close).
 */
int journal_open(const char *path, struct journal **out);
/*
 * journal_append buffers one record in memory; nothing reaches the file
 * before journal_sync. ERR_INVAL for an empty msg_id, ERR_TOOBIG for one
 * longer than JOURNAL_MSGID_MAX bytes.
 */
int journal_append(struct journal *j, int64_t row_id, const char *msg_id);
/*
 * journal_sync writes every buffered record with one write(2), then
 * fdatasync. Returns 0 or ERR_IO (errno says why); either way the buffer is
 * empty afterwards. After a failed write the file is cut back to its last
 * whole record (or, if that fails too, before the next write), so a torn
 * record never hides later ones; the records of a failed sync may or may
 * not be in the file.
 */
int journal_sync(struct journal *j);
/* Bytes in the file (records written, not those still buffered). */
int64_t journal_size(const struct journal *j);
/*
 * journal_truncate empties the file (ftruncate to 0, no fsync: a record
 * that survives a crash is replayed harmlessly) and drops buffered records.
 * 0 or ERR_IO.
 */
int journal_truncate(struct journal *j);
/* journal_close closes the file; buffered records are dropped. NULL: no-op. */
void journal_close(struct journal *j);

/* Called for each intact record; a nonzero return stops the replay. */
typedef int (*journal_fn)(int64_t row_id, const char *msg_id, void *ud);
/*
 * journal_replay calls fn for each intact record of the file at path, in
 * the order written, and stops silently at the first torn or corrupt one.
 * A missing file has no records. Returns 0, ERR_IO (errno says why), or
 * fn's nonzero return.
 */
int journal_replay(const char *path, journal_fn fn, void *ud);

#endif
