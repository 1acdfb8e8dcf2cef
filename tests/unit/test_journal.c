/*
 * test_journal.c - the send journal: records round-trip through the file;
 * replay stops at a torn or corrupt record and keeps everything before it;
 * a reopened torn file gets its tail cut before new records; empty and
 * missing files; ERR_INVAL, ERR_TOOBIG and ERR_IO (an unwritable path, a
 * directory, a write refused by RLIMIT_FSIZE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "send/journal.h"

/* One record's size in the file: length, row id, id, checksum. */
#define REC(n) (4 + 8 + (n) + 8)

struct fixture {
	char dir[64];
	char path[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/munim-test-journal-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/sendlog", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

#define MAX_SEEN 16

struct seen {
	int n;
	int64_t ids[MAX_SEEN];
	char msg[MAX_SEEN][JOURNAL_MSGID_MAX + 1];
	int stop_at; /* return ERR_CONFLICT at this call (1-based), 0: never */
};

static int collect(int64_t row_id, const char *msg_id, void *ud)
{
	struct seen *s = ud;
	if (s->n >= MAX_SEEN)
		return ERR_FULL;
	s->ids[s->n] = row_id;
	snprintf(s->msg[s->n], sizeof(s->msg[0]), "%s", msg_id);
	s->n++;
	return s->n == s->stop_at ? ERR_CONFLICT : 0;
}

static struct seen replay(const char *path)
{
	struct seen s = {0};
	assert_int_equal(journal_replay(path, collect, &s), 0);
	return s;
}

static int64_t file_size(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (int64_t)sb.st_size;
}

/* Writes three records: 1 "wamid.A", 2 a 256-byte id, -3 "x" (ids are opaque). */
static void write_three(const char *path, char *long_id)
{
	memset(long_id, 'L', JOURNAL_MSGID_MAX);
	long_id[JOURNAL_MSGID_MAX] = '\0';
	struct journal *j = NULL;
	assert_int_equal(journal_open(path, &j), 0);
	assert_int_equal(journal_append(j, 1, "wamid.A"), 0);
	assert_int_equal(journal_append(j, 2, long_id), 0);
	assert_int_equal(journal_append(j, -3, "x"), 0);
	assert_int_equal(journal_size(j), 0); /* buffered, not written */
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_size(j), REC(7) + REC(256) + REC(1));
	journal_close(j);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char long_id[JOURNAL_MSGID_MAX + 1];
	write_three(f->path, long_id);
	assert_int_equal(file_size(f->path), REC(7) + REC(256) + REC(1));
	struct seen s = replay(f->path);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ids[0], 1);
	assert_string_equal(s.msg[0], "wamid.A");
	assert_int_equal(s.ids[1], 2);
	assert_string_equal(s.msg[1], long_id);
	assert_int_equal(s.ids[2], -3);
	assert_string_equal(s.msg[2], "x");

	/* reopening appends after what is there; unsynced records never land */
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_size(j), REC(7) + REC(256) + REC(1));
	assert_int_equal(journal_append(j, INT64_MAX, "wamid.MAX"), 0);
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_sync(j), 0); /* nothing buffered: nothing to do */
	assert_int_equal(journal_append(j, 5, "never.synced"), 0);
	journal_close(j);
	s = replay(f->path);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.ids[3], INT64_MAX);
	assert_string_equal(s.msg[3], "wamid.MAX");

	/* the callback's nonzero return stops the replay and is returned */
	struct seen stop = {.stop_at = 2};
	assert_int_equal(journal_replay(f->path, collect, &stop), ERR_CONFLICT);
	assert_int_equal(stop.n, 2);
}

static void test_truncate_empties(void **state)
{
	struct fixture *f = *state;
	char long_id[JOURNAL_MSGID_MAX + 1];
	write_three(f->path, long_id);
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_append(j, 9, "dropped"), 0);
	assert_int_equal(journal_truncate(j), 0);
	assert_int_equal(journal_size(j), 0);
	assert_int_equal(file_size(f->path), 0);
	assert_int_equal(replay(f->path).n, 0);
	/* records after a truncation start the file afresh */
	assert_int_equal(journal_append(j, 7, "wamid.after"), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	struct seen s = replay(f->path);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ids[0], 7);
	journal_close(NULL); /* a no-op */
}

static void test_torn_tail(void **state)
{
	struct fixture *f = *state;
	char long_id[JOURNAL_MSGID_MAX + 1];
	int64_t two = REC(7) + REC(256);
	/* cut inside the last record's id, inside its checksum, inside the
	 * next header: the two whole records before the cut still replay */
	const int64_t cuts[] = {two + 13, two + REC(1) - 1, two + 3, two};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		unlink(f->path);
		write_three(f->path, long_id);
		assert_int_equal(truncate(f->path, (off_t)cuts[i]), 0);
		struct seen s = replay(f->path);
		assert_int_equal(s.n, 2);
		assert_string_equal(s.msg[1], long_id);
	}
	/* a torn tail is cut before new records, which would hide behind it */
	unlink(f->path);
	write_three(f->path, long_id);
	assert_int_equal(truncate(f->path, (off_t)(two + 13)), 0);
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_size(j), two);
	assert_int_equal(journal_append(j, 4, "wamid.new"), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	assert_int_equal(file_size(f->path), two + REC(9));
	struct seen s = replay(f->path);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ids[2], 4);
	assert_string_equal(s.msg[2], "wamid.new");
}

static void flip(const char *path, int64_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void test_flipped_byte(void **state)
{
	struct fixture *f = *state;
	char long_id[JOURNAL_MSGID_MAX + 1];
	/* a byte of the second record's id, row id, length and checksum: that
	 * record is rejected and the replay stops before the third */
	const int64_t offs[] = {REC(7) + 12 + 100, REC(7) + 4, REC(7) + 1, REC(7) + 12 + 256 + 2};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		unlink(f->path);
		write_three(f->path, long_id);
		flip(f->path, offs[i]);
		struct seen s = replay(f->path);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.ids[0], 1);
	}
	/* a length of zero (a zero-filled tail) ends the replay too */
	unlink(f->path);
	write_three(f->path, long_id);
	int fd = open(f->path, O_WRONLY | O_APPEND);
	static const char zeros[64];
	assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
	close(fd);
	assert_int_equal(replay(f->path).n, 3);
}

static void test_empty_and_missing(void **state)
{
	struct fixture *f = *state;
	/* missing: no records, not an error */
	assert_int_equal(replay(f->path).n, 0);
	/* journal_open creates it, empty */
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_size(j), 0);
	struct stat sb;
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(replay(f->path).n, 0);
	journal_close(j);
}

static void test_err_inval_and_err_toobig(void **state)
{
	struct fixture *f = *state;
	struct journal *j = (struct journal *)&j;
	assert_int_equal(journal_open("", &j), ERR_INVAL);
	assert_null(j);
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_append(j, 1, ""), ERR_INVAL);
	assert_int_equal(journal_append(j, 1, NULL), ERR_INVAL);
	char big[JOURNAL_MSGID_MAX + 2];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(journal_append(j, 1, big), ERR_TOOBIG);
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_size(j), 0); /* nothing was buffered */
	journal_close(j);
}

static void test_err_io_unwritable_path(void **state)
{
	struct fixture *f = *state;
	struct journal *j = (struct journal *)&j;
	char path[128];
	snprintf(path, sizeof(path), "%s/no-such-dir/sendlog", f->dir);
	assert_int_equal(journal_open(path, &j), ERR_IO);
	assert_null(j);
	/* a directory is no journal, to write or to read */
	assert_int_equal(journal_open(f->dir, &j), ERR_IO);
	struct seen s = {0};
	assert_int_equal(journal_replay(f->dir, collect, &s), ERR_IO);
	assert_int_equal(s.n, 0);
	/* a read-only file (unless we are root, who may write anyway) */
	if (geteuid() != 0) {
		int fd = open(f->path, O_WRONLY | O_CREAT, 0400);
		close(fd);
		assert_int_equal(journal_open(f->path, &j), ERR_IO);
	}
}

static void test_err_io_write_refused(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->path, &j), 0);
	assert_int_equal(journal_append(j, 1, "wamid.first"), 0);
	assert_int_equal(journal_sync(j), 0);
	/* the file may not grow past 50 bytes: the next record is written in
	 * part (a torn record), the sync fails and cuts it off */
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 50;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(journal_append(j, 2, "wamid.second-is-too-long-to-fit"), 0);
	int rc = journal_sync(j);
	int64_t size_then = file_size(f->path);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, ERR_IO);
	assert_int_equal(size_then, REC(11));
	assert_int_equal(journal_size(j), REC(11));
	/* the journal goes on, and the later record is not hidden */
	assert_int_equal(journal_append(j, 3, "wamid.third"), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	struct seen s = replay(f->path);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ids[0], 1);
	assert_int_equal(s.ids[1], 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_truncate_empties, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_err_inval_and_err_toobig, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_err_io_unwritable_path, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_err_io_write_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
