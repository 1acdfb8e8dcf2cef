/*
 * journal.c - the send journal: an append-only file of provider
 * acceptances, written before the store records them (see journal.h and
 * sender.c for why).
 *
 * Record layout (integers little-endian), 20 + n bytes:
 *
 *   +---------+--------------+---------------------+------------------------+
 *   | n (u32) | row id (i64) | message id, n bytes | FNV-1a 64 of the rest  |
 *   +---------+--------------+---------------------+------------------------+
 *     1 <= n <= JOURNAL_MSGID_MAX; the checksum covers n, row id and id.
 *
 * Invariants
 *   - j->size is the length of the file's leading run of whole records;
 *     whatever follows (a record torn by a crash or by a failed write) is
 *     cut off (ftruncate) before anything is appended, so a record once
 *     synced is never hidden from replay behind garbage.
 *   - Replay trusts nothing: a length out of range, a short read or a
 *     checksum mismatch ends it, and every record before that is handed on.
 *
 * Threading: a struct journal is used by one thread at a time.
 */
#include "send/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/xalloc.h"

#define JOURNAL_HEAD 12 /* n and row id */
#define JOURNAL_SUM  8

struct journal {
	int fd;
	int64_t size;   /* bytes of whole records in the file */
	int torn;       /* a failed write may have left bytes past size */
	struct buf buf; /* records appended since the last sync */
};

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int scan(FILE *f, journal_fn fn, void *ud, int64_t *whole);

/* Makes a newly created file's name durable: fsync of its directory. */
static int sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return ERR_IO;
	int rc = fsync(fd) == 0 ? 0 : ERR_IO;
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int journal_open(const char *path, struct journal **out)
{
	*out = NULL;
	if (!path || !*path) {
		errno = EINVAL;
		return ERR_INVAL;
	}
	int created = 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		created = fd >= 0;
		if (fd < 0 && errno == EEXIST) /* another opener won the race */
			fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0)
		return ERR_IO;
	struct stat sb;
	if (fstat(fd, &sb) != 0 || (created && sync_dir(path) != 0))
		goto fail;
	if (!S_ISREG(sb.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	/* a crash may have left a torn record at the end: appending after it
	 * would hide the new records from replay, so the first write cuts it */
	int64_t whole = 0;
	if (sb.st_size > 0) {
		FILE *f = fopen(path, "rbe");
		if (!f)
			goto fail;
		int rc = scan(f, NULL, NULL, &whole);
		int saved = errno;
		fclose(f);
		errno = saved;
		if (rc != 0)
			goto fail;
	}
	struct journal *j = xcalloc(1, sizeof(*j));
	j->fd = fd;
	j->size = whole;
	j->torn = whole != (int64_t)sb.st_size;
	buf_init(&j->buf);
	*out = j;
	return 0;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return ERR_IO;
}

int journal_append(struct journal *j, int64_t row_id, const char *msg_id)
{
	size_t n = msg_id ? strlen(msg_id) : 0;
	if (n == 0)
		return ERR_INVAL;
	if (n > JOURNAL_MSGID_MAX)
		return ERR_TOOBIG;
	unsigned char rec[JOURNAL_HEAD + JOURNAL_MSGID_MAX + JOURNAL_SUM];
	put_u32(rec, (uint32_t)n);
	put_u64(rec + 4, (uint64_t)row_id);
	memcpy(rec + JOURNAL_HEAD, msg_id, n);
	put_u64(rec + JOURNAL_HEAD + n, hash_fnv1a(rec, JOURNAL_HEAD + n));
	buf_append(&j->buf, rec, JOURNAL_HEAD + n + JOURNAL_SUM);
	return 0;
}

/* cut_back drops whatever a failed write left past the last whole record. */
static int cut_back(struct journal *j)
{
	if (ftruncate(j->fd, (off_t)j->size) != 0)
		return ERR_IO;
	j->torn = 0;
	return 0;
}

int journal_sync(struct journal *j)
{
	int rc = 0;
	if (j->buf.len == 0)
		return 0;
	if (j->torn && cut_back(j) != 0) {
		rc = ERR_IO;
		goto out;
	}
	size_t off = 0;
	while (off < j->buf.len) {
		ssize_t w = write(j->fd, j->buf.data + off, j->buf.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			int saved = errno;
			j->torn = 1;
			cut_back(j); /* if this fails, the next sync tries again */
			errno = saved;
			rc = ERR_IO;
			goto out;
		}
		off += (size_t)w;
	}
	/* the records are whole in the file whether or not they reach the disk */
	j->size += (int64_t)j->buf.len;
	if (fdatasync(j->fd) != 0)
		rc = ERR_IO;
out:
	buf_reset(&j->buf);
	return rc;
}

int64_t journal_size(const struct journal *j)
{
	return j->size;
}

int journal_truncate(struct journal *j)
{
	buf_reset(&j->buf);
	if (ftruncate(j->fd, 0) != 0)
		return ERR_IO;
	j->size = 0;
	j->torn = 0;
	return 0;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	close(j->fd);
	buf_release(&j->buf);
	free(j);
}

/*
 * scan reads records from f, calling fn (if not NULL) for each intact one,
 * until the end, a torn or corrupt record, or fn's nonzero return (which
 * it returns). *whole gets the offset just past the last intact record.
 */
static int scan(FILE *f, journal_fn fn, void *ud, int64_t *whole)
{
	unsigned char rec[JOURNAL_HEAD + JOURNAL_MSGID_MAX + JOURNAL_SUM];
	char msg_id[JOURNAL_MSGID_MAX + 1];
	int rc = 0;
	*whole = 0;
	for (;;) {
		if (fread(rec, 1, JOURNAL_HEAD, f) != JOURNAL_HEAD)
			break;
		uint32_t n = get_u32(rec);
		if (n == 0 || n > JOURNAL_MSGID_MAX)
			break;
		if (fread(rec + JOURNAL_HEAD, 1, n + JOURNAL_SUM, f) != n + JOURNAL_SUM)
			break;
		if (get_u64(rec + JOURNAL_HEAD + n) != hash_fnv1a(rec, JOURNAL_HEAD + n))
			break;
		memcpy(msg_id, rec + JOURNAL_HEAD, n);
		msg_id[n] = '\0';
		if (memchr(msg_id, '\0', n)) /* not what journal_append writes */
			break;
		*whole += JOURNAL_HEAD + n + JOURNAL_SUM;
		if (fn && (rc = fn((int64_t)get_u64(rec + 4), msg_id, ud)) != 0)
			break;
	}
	if (rc == 0 && ferror(f))
		rc = ERR_IO;
	return rc;
}

int journal_replay(const char *path, journal_fn fn, void *ud)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return errno == ENOENT ? 0 : ERR_IO;
	int64_t whole;
	int rc = scan(f, fn, ud, &whole);
	int saved = errno;
	fclose(f);
	errno = saved;
	return rc;
}
