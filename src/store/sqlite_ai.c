/*
 * sqlite_ai.c - the SQLite backend of the AI jobs and the OCR queue
 * (store.h, "AI jobs and the OCR queue"; migration 7).
 *
 * AI jobs (table ai_jobs):
 *   store__sq_ai_job_add:     INSERT PENDING; a second job for the same
 *     inbound wamid is ERR_CONFLICT (the unique ext_id).
 *   store__sq_ai_job_waiting: one probe of the partial index ai_jobs_open
 *     (jobs not DONE, by customer): the ERP asks it for every message of
 *     a shop with an AI endpoint, so it must cost next to nothing while
 *     the table holds only finished jobs.
 *   store__sq_ai_job_claim:   PENDING → CLAIMED in one UPDATE ... RETURNING,
 *     only for jobs with no older job of the same customer not DONE, so a
 *     customer's jobs run one at a time and in order.
 *   store__sq_ai_job_finish:  CLAIMED → DONE (guarded UPDATE: a job ends once).
 *   store__sq_ai_job_release: CLAIMED → PENDING (a run that failed).
 *   store__sq_ai_job_recover: start-up: CLAIMED → PENDING (a crash mid-run).
 *
 * OCR queue (table ocr_queue): add (QUEUED), list by state in id order,
 * done (QUEUED → DONE, guarded), depth (a count over the partial index of
 * queued rows).
 *
 * Threads: as store_sqlite.c; every function uses only its connection.
 */
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "store/sqlite_internal.h"

/* ---- AI jobs ------------------------------------------------------------------ */

#define AI_JOB_COLS                                                                                \
	"id, tenant_id, kind, state, ext_id, from_id, name, type, body, context_id, sent_at,"      \
	" received_at, created_at, attempts, outcome, rewritten, done_at"

static void read_job(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct ai_job *j = row;
	j->id = sqlite3_column_int64(st, 0);
	j->tenant_id = sqlite3_column_int64(st, 1);
	j->kind = (enum ai_job_kind)sqlite3_column_int(st, 2);
	j->state = (enum ai_job_state)sqlite3_column_int(st, 3);
	j->ext_id = store__sq_col(st, 4, a);
	j->from = store__sq_col(st, 5, a);
	j->name = store__sq_col(st, 6, a);
	j->type = store__sq_col(st, 7, a);
	j->body = store__sq_col(st, 8, a);
	j->context_id = store__sq_col(st, 9, a);
	j->sent_at = sqlite3_column_int64(st, 10);
	j->received_at = sqlite3_column_int64(st, 11);
	j->created_at = sqlite3_column_int64(st, 12);
	j->attempts = sqlite3_column_int(st, 13);
	j->outcome = store__sq_col(st, 14, a);
	j->rewritten = store__sq_col(st, 15, a);
	j->done_at = sqlite3_column_int64(st, 16);
}

int store__sq_ai_job_add(struct store_conn *c, const struct ai_job *j, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO ai_jobs (tenant_id, kind, state, ext_id, from_id, name, type, body,"
	        " context_id, sent_at, received_at, created_at)"
	        " VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id";
	const char *what = "record AI job";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*id = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_AI_JOB_ADD, sql, what, &st, "iittttttiii", j->tenant_id,
	                    (int64_t)j->kind, j->ext_id, j->from, j->name, j->type, j->body,
	                    j->context_id, j->sent_at, j->received_at, j->created_at);
	if (rc == 0)
		rc = store__sq_returning(c, st, what, store__sq_read_int64, NULL, id);
	if (rc == ERR_CONFLICT)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not record AI job: message \"%s\" has one already",
		                 j->ext_id);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ai_job_waiting(struct store_conn *c, int64_t tenant_id, const char *from,
                             int *waiting)
{
	static const char sql[] = "SELECT count(*) FROM (SELECT 1 FROM ai_jobs"
	                          " WHERE tenant_id = ?1 AND from_id = ?2 AND state < 2 LIMIT 1)";
	const char *what = "look for AI jobs";
	sqlite3_stmt *st;
	int64_t n = 0;
	*waiting = 0;
	int rc = store__sq_prep(c, SQ_AI_JOB_WAITING, sql, what, &st, "it", tenant_id, from);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &n);
	if (rc < 0)
		return rc;
	*waiting = n > 0;
	return 0;
}

int store__sq_ai_job_claim(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
                           int *n)
{
	static const char sql[] =
	        "UPDATE ai_jobs SET state = 1, attempts = attempts + 1"
	        " WHERE id IN (SELECT j.id FROM ai_jobs j WHERE j.state = 0"
	        "  AND NOT EXISTS (SELECT 1 FROM ai_jobs k WHERE k.tenant_id = j.tenant_id"
	        "   AND k.from_id = j.from_id AND k.state < 2 AND k.id < j.id)"
	        "  ORDER BY j.id LIMIT ?1)"
	        " RETURNING " AI_JOB_COLS;
	const char *what = "claim AI jobs";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	void *rows = NULL;
	*out = NULL;
	*n = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_AI_JOB_CLAIM, sql, what, &st, "i", (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(struct ai_job), read_job, &rows, n);
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0) {
		*n = 0;
		return rc;
	}
	struct ai_job *jobs = rows;
	/* RETURNING gives no order: oldest first, as the claim chose them */
	for (int i = 1; i < *n; i++) {
		struct ai_job k = jobs[i];
		int j = i - 1;
		while (j >= 0 && jobs[j].id > k.id) {
			jobs[j + 1] = jobs[j];
			j--;
		}
		jobs[j + 1] = k;
	}
	*out = jobs;
	return 0;
}

/* Why a guarded UPDATE of job id touched nothing: ERR_NOTFOUND or ERR_CONFLICT. */
static int job_state_error(struct store_conn *c, int64_t id, const char *what)
{
	static const char sql[] = "SELECT state FROM ai_jobs WHERE id = ?1";
	sqlite3_stmt *st;
	int64_t state = 0;
	int rc = store__sq_prep(c, SQ_AI_JOB_STATE, sql, what, &st, "i", id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &state);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no job %lld", what,
		                   (long long)id);
	return store__errf(c, ERR_CONFLICT, "could not %s: job %lld is %s, not claimed", what,
	                   (long long)id, state == AI_JOB_DONE ? "done" : "pending");
}

int store__sq_ai_job_finish(struct store_conn *c, int64_t id, const char *outcome,
                            const char *rewritten, int64_t now)
{
	static const char sql[] = "UPDATE ai_jobs SET state = 2, outcome = ?2, rewritten = ?3,"
	                          " done_at = ?4 WHERE id = ?1 AND state = 1";
	const char *what = "finish AI job";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_AI_JOB_FINISH, sql, what, "itti", id, outcome, rewritten, now);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = job_state_error(c, id, what);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ai_job_release(struct store_conn *c, int64_t id)
{
	static const char sql[] = "UPDATE ai_jobs SET state = 0 WHERE id = ?1 AND state = 1";
	const char *what = "release AI job";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_AI_JOB_RELEASE, sql, what, "i", id);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = job_state_error(c, id, what);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ai_job_recover(struct store_conn *c, int *n)
{
	static const char sql[] = "UPDATE ai_jobs SET state = 0 WHERE state = 1";
	const char *what = "recover AI jobs";
	enum sq_op_mode mode;
	*n = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_AI_JOB_RECOVER, sql, what, "");
	if (rc == 0)
		*n = sqlite3_changes(store__sq_db(c));
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ai_job_get(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out)
{
	static const char sql[] = "SELECT " AI_JOB_COLS " FROM ai_jobs WHERE id = ?1";
	const char *what = "read AI job";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_AI_JOB_GET, sql, what, &st, "i", id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_job, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read AI job: no job %lld",
		                   (long long)id);
	return rc < 0 ? rc : 0;
}

int store__sq_ai_job_count(struct store_conn *c, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM ai_jobs WHERE state < 2";
	const char *what = "count AI jobs";
	sqlite3_stmt *st;
	*n = 0;
	int rc = store__sq_prep(c, SQ_AI_JOB_COUNT, sql, what, &st, "");
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, n);
	return rc < 0 ? rc : 0;
}

/* ---- the OCR queue ----------------------------------------------------------------- */

#define OCR_COLS                                                                                   \
	"id, tenant_id, from_id, ext_id, type, media_id, mime_type, caption, state, created_at,"   \
	" done_at, note"

static void read_ocr(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct ocr_item *o = row;
	o->id = sqlite3_column_int64(st, 0);
	o->tenant_id = sqlite3_column_int64(st, 1);
	o->from = store__sq_col(st, 2, a);
	o->ext_id = store__sq_col(st, 3, a);
	o->type = store__sq_col(st, 4, a);
	o->media_id = store__sq_col(st, 5, a);
	o->mime_type = store__sq_col(st, 6, a);
	o->caption = store__sq_col(st, 7, a);
	o->state = (enum ocr_state)sqlite3_column_int(st, 8);
	o->created_at = sqlite3_column_int64(st, 9);
	o->done_at = sqlite3_column_int64(st, 10);
	o->note = store__sq_col(st, 11, a);
}

int store__sq_ocr_add(struct store_conn *c, const struct ocr_item *o, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO ocr_queue (tenant_id, from_id, ext_id, type, media_id, mime_type,"
	        " caption, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
	const char *what = "queue media for reading";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*id = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_OCR_ADD, sql, what, &st, "itttttti", o->tenant_id, o->from,
	                    o->ext_id, o->type, o->media_id, o->mime_type, o->caption,
	                    o->created_at);
	if (rc == 0)
		rc = store__sq_returning(c, st, what, store__sq_read_int64, NULL, id);
	if (rc == ERR_CONFLICT)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not queue media for reading: message \"%s\" is queued "
		                 "already",
		                 o->ext_id);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ocr_list(struct store_conn *c, enum ocr_state state, int64_t after_id, int limit,
                       struct arena *a, struct ocr_item **out, int *n)
{
	static const char sql[] = "SELECT " OCR_COLS " FROM ocr_queue"
	                          " WHERE state = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
	const char *what = "list the OCR queue";
	sqlite3_stmt *st;
	void *rows = NULL;
	*out = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_OCR_LIST, sql, what, &st, "iii", (int64_t)state, after_id,
	                        (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(struct ocr_item), read_ocr, &rows, n);
	if (rc < 0)
		return rc;
	*out = rows;
	return 0;
}

int store__sq_ocr_done(struct store_conn *c, int64_t id, const char *note, int64_t now)
{
	static const char sql[] = "UPDATE ocr_queue SET state = 1, note = ?2, done_at = ?3"
	                          " WHERE id = ?1 AND state = 0";
	static const char sel[] = "SELECT state FROM ocr_queue WHERE id = ?1";
	const char *what = "mark media read";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int64_t state = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_OCR_DONE, sql, what, "iti", id, note, now);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0) {
		rc = store__sq_prep(c, SQ_OCR_STATE, sel, what, &st, "i", id);
		if (rc == 0)
			rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &state);
		if (rc == 0)
			rc = store__errf(c, ERR_NOTFOUND, "could not mark media read: no item %lld",
			                 (long long)id);
		else if (rc == 1)
			rc = store__errf(c, ERR_CONFLICT,
			                 "could not mark media read: item %lld is done already",
			                 (long long)id);
	}
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ocr_depth(struct store_conn *c, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM ocr_queue WHERE state = 0";
	const char *what = "count the OCR queue";
	sqlite3_stmt *st;
	*n = 0;
	int rc = store__sq_prep(c, SQ_OCR_DEPTH, sql, what, &st, "");
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, n);
	return rc < 0 ? rc : 0;
}
