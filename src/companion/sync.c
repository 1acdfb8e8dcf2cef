/*
 * sync.c - POST /v1/sync: the operations a companion device saved while it
 * was offline, applied in order, each exactly once per shop.
 *
 *   {"device":"counter-1","ops":[{"id":"<1..64 bytes, the device's own>",
 *     "op":"order.create","args":{...},"at":"<device time>"}, ...]}
 *
 * The batch is one transaction; each operation runs in its own savepoint:
 *
 *   op not an object, bad id/op/args  → "rejected" invalid_op (not recorded:
 *                                       without a usable id it cannot be)
 *   (tenant, id) in companion_ops     → "duplicate": the first answer again,
 *                                       nothing applied; the same id with
 *                                       another operation → "rejected" id_reused
 *   SAVEPOINT; the operation          → applied: recorded with its result,
 *                                       RELEASE → "applied"
 *                                     → refused (unknown item, short stock):
 *                                       ROLLBACK TO, then recorded with its
 *                                       error → "rejected"
 *   a store error                     → the whole batch rolls back: 503, and
 *                                       the device sends it again
 *   COMMIT (durable) → 200 with one result per operation, in order.
 *
 * So a batch replayed after its answer was lost answers every operation
 * "duplicate" and changes nothing: the record of each operation commits in
 * the same transaction as its effects. An operation is recognised by the
 * SHA-256 of its name and its arguments (keys sorted, compact), so a
 * device that reuses an id for something else is told, not ignored.
 *
 * Operations: order.create {customer, lines, confirm}; order.confirm and
 * order.cancel {order_id}; stock.adjust {item, add | remove} - each through
 * erp_direct_* (the WhatsApp commands' own code).
 *
 * Threads: called by companion.c with cp->mu held.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/campaign.h"
#include "companion/companion_internal.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#define SYNC_DEVICE_MAX 64
#define SYNC_AT_MAX     64

/* One operation's outcome, before it becomes JSON. */
struct outcome {
	enum metrics_sync_status status;
	json_t *body;      /* {"result":...} or {"error":...}: what is recorded */
	const char *first; /* duplicate: "applied" or "rejected" */
};

static json_t *error_body(const char *code, const char *message)
{
	return json_pack("{s:o}", "error", companion__error(code, message));
}

/* The SHA-256 of "<op>\n<args, keys sorted>", or 0 on failure. */
static int digest_of(const char *op, json_t *args, char out[STORE_TOKEN_HASH_LEN + 1])
{
	char *a = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
	if (!a)
		return ERR_INVAL;
	size_t n = strlen(op) + 1 + strlen(a);
	char *text = malloc(n + 1);
	if (!text) {
		free(a);
		return ERR_INVAL;
	}
	snprintf(text, n + 1, "%s\n%s", op, a);
	int rc = campaign_token_hash(text, n, out);
	free(text);
	free(a);
	return rc;
}

static int64_t order_id_arg(json_t *args)
{
	json_t *v = json_object_get(args, "order_id");
	return json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
}

/*
 * Runs one operation in the open savepoint: 0 with *body the result or
 * *refusal/ *message set, or a store error. queued gets its outbox rows.
 */
static int apply(const struct erp_direct *d, const char *op, json_t *args,
                 struct erp_direct_result *res, const char **code, const char **message)
{
	*code = NULL;
	if (strcmp(op, "order.create") == 0) {
		struct erp_direct_line *lines = NULL;
		const char *customer = NULL;
		int n = 0, confirm = 1;
		if (companion__read_order(args, d->a, &customer, &lines, &n, &confirm, code,
		                          message) != 0)
			return 0;
		*code = NULL;
		return erp_direct_order(d, customer, lines, n, confirm, res);
	}
	if (strcmp(op, "order.confirm") == 0 || strcmp(op, "order.cancel") == 0) {
		int64_t id = order_id_arg(args);
		if (id <= 0) {
			*code = "invalid_op";
			*message = "\"args\" must hold \"order_id\", a positive whole number";
			return 0;
		}
		return op[6] == 'c' && op[7] == 'o' ? erp_direct_confirm(d, id, res)
		                                    : erp_direct_cancel(d, id, res);
	}
	if (strcmp(op, "stock.adjust") == 0) {
		json_t *item = json_object_get(args, "item"), *add = json_object_get(args, "add"),
		       *rem = json_object_get(args, "remove");
		json_t *qty = add ? add : rem;
		if (!json_is_string(item) || !!add == !!rem || !json_is_string(qty)) {
			*code = "invalid_op";
			*message =
			        "\"args\" must hold \"item\" and one of \"add\" or \"remove\" (a "
			        "quantity such as \"5 kg\")";
			return 0;
		}
		return erp_direct_stock(d, json_string_value(item), json_string_value(qty),
		                        rem != NULL, res);
	}
	*code = "unknown_op";
	*message = "op must be order.create, order.confirm, order.cancel or stock.adjust";
	return 0;
}

/* The result of an applied operation, read back inside its savepoint. */
static int result_of(struct companion *cp, int64_t tenant_id, const char *op,
                     const struct erp_direct_result *res, struct arena *a, json_t **out)
{
	if (strncmp(op, "order.", 6) == 0) {
		json_t *o = NULL;
		int rc = companion__order_json(cp->conn, tenant_id, res->order_id, a, &o);
		if (rc < 0)
			return rc;
		*out = json_pack("{s:o, s:s}", "order", o, "message",
		                 res->message ? res->message : "");
		return 0;
	}
	*out = json_pack("{s:I, s:I, s:s}", "product_id", (json_int_t)res->product_id, "stock_base",
	                 (json_int_t)res->stock_after, "message", res->message ? res->message : "");
	return 0;
}

/*
 * One well-formed operation: duplicate, applied or rejected (*o), or a
 * store error (the batch must roll back). queued gains its outbox rows.
 */
static int run_op(struct companion *cp, int64_t tenant_id, const char *device, const char *id,
                  const char *op, json_t *args, const char *at, struct arena *a, struct outcome *o,
                  int64_t queued[PRIO_COUNT])
{
	struct store_conn *c = cp->conn;
	struct sync_op_record rec;
	char digest[STORE_TOKEN_HASH_LEN + 1];
	json_error_t jerr;
	memset(o, 0, sizeof(*o));
	if (digest_of(op, args, digest) != 0) {
		o->status = MSYNC_REJECTED;
		o->body = error_body("invalid_op", "the operation could not be read");
		return 0;
	}
	int rc = store_sync_op_get(c, tenant_id, id, a, &rec);
	if (rc == 0) {
		if (strcmp(rec.digest, digest) != 0) {
			o->status = MSYNC_REJECTED;
			o->body =
			        error_body("id_reused",
			                   arena_sprintf(a,
			                                 "id \"%s\" was used for another operation "
			                                 "(%s); nothing applied",
			                                 id, rec.op));
			return 0;
		}
		o->status = MSYNC_DUPLICATE;
		o->first = rec.rejected ? "rejected" : "applied";
		o->body = json_loads(rec.result, 0, &jerr);
		if (!o->body)
			o->body = json_object();
		return 0;
	}
	if (rc != ERR_NOTFOUND)
		return rc;

	struct erp_direct_result res;
	struct tenant t;
	const char *code = NULL, *message = NULL;
	json_t *result = NULL;
	memset(&res, 0, sizeof(res));
	if ((rc = store_savepoint(c)) < 0)
		return rc;
	/* read in this savepoint: an earlier operation may have moved stock */
	rc = store_tenant_get(c, tenant_id, a, &t);
	const char *actor = arena_sprintf(a, "app:%s", device);
	struct erp_direct d = {c, cp->cache, &t, actor, a};
	if (rc == 0)
		rc = apply(&d, op, args, &res, &code, &message);
	if (rc == 0 && !code && res.refusal) {
		code = res.refusal;
		message = res.message;
	}
	if (rc == 0 && !code)
		rc = result_of(cp, tenant_id, op, &res, a, &result);
	if (rc < 0) {
		json_decref(result);
		return rc;
	}
	if (code) { /* refused: undo what it did, keep the refusal */
		if ((rc = store_rollback_to(c)) < 0)
			return rc;
		erp_cache_clear(cp->cache);
		o->status = MSYNC_REJECTED;
		o->body = error_body(code, message);
	} else {
		o->status = MSYNC_APPLIED;
		o->body = json_pack("{s:o}", "result", result);
	}
	char *text = json_dumps(o->body, JSON_COMPACT);
	rec = (struct sync_op_record){
	        .client_id = id,
	        .device = device,
	        .op = op,
	        .digest = digest,
	        .rejected = o->status == MSYNC_REJECTED,
	        .result = text ? text : "{}",
	        .client_at = at,
	        .applied_at = clock_wall_ms(),
	};
	rc = store_sync_op_put(c, tenant_id, &rec);
	free(text);
	if (rc == 0 && o->status == MSYNC_APPLIED)
		rc = store_release(c);
	if (rc < 0)
		return rc;
	if (o->status == MSYNC_APPLIED)
		for (int p = 0; p < PRIO_COUNT; p++)
			queued[p] += res.queued[p];
	return 0;
}

/* "id" of an operation, when it is a usable one (1..64 bytes, no NUL). */
static const char *op_id(json_t *op)
{
	json_t *v = json_object_get(op, "id");
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (!s || n == 0 || n > STORE_SYNC_ID_MAX || strlen(s) != n)
		return NULL;
	return s;
}

/* Reads the batch; 0, or an answer written. */
static int read_batch(const char *body, size_t len, int64_t max, struct arena *a,
                      struct companion_answer *ans, json_t **root, const char **device,
                      json_t **ops)
{
	json_error_t jerr;
	*root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!json_is_object(*root)) {
		companion__fail(ans, a, 400, "invalid_json", "the body must be a JSON object");
		return ERR_INVAL;
	}
	json_t *dv = json_object_get(*root, "device");
	*ops = json_object_get(*root, "ops");
	if (dv && (!json_is_string(dv) || json_string_length(dv) > SYNC_DEVICE_MAX ||
	           strlen(json_string_value(dv)) != json_string_length(dv))) {
		companion__fail(ans, a, 400, "invalid_device",
		                arena_sprintf(a, "\"device\" must be text of at most %d bytes",
		                              SYNC_DEVICE_MAX));
		return ERR_INVAL;
	}
	*device = dv ? arena_strdup(a, json_string_value(dv)) : "";
	if (!json_is_array(*ops)) {
		companion__fail(ans, a, 400, "missing_ops", "the body must have \"ops\", a list");
		return ERR_INVAL;
	}
	if ((int64_t)json_array_size(*ops) > max) {
		companion__fail(
		        ans, a, 413, "batch_too_long",
		        arena_sprintf(a,
		                      "a sync carries at most %lld operations, this one has "
		                      "%zu; send them in smaller batches (nothing was applied)",
		                      (long long)max, json_array_size(*ops)));
		return ERR_TOOBIG;
	}
	return 0;
}

void companion__sync(struct companion *cp, int64_t tenant_id, const char *body, size_t len,
                     struct arena *a, struct companion_answer *ans, int64_t queued[PRIO_COUNT])
{
	struct store_conn *c = cp->conn;
	json_t *root = NULL, *ops = NULL;
	const char *device = "";
	uint64_t counts[MSYNC_COUNT] = {0};
	int64_t q[PRIO_COUNT] = {0};
	if (read_batch(body, len, cp->app->cfg.companion_sync_max_ops, a, ans, &root, &device,
	               &ops) != 0) {
		json_decref(root);
		return;
	}
	int rc = store_begin(c);
	if (rc < 0) {
		json_decref(root);
		companion__fail_store(ans, a, c, rc, "begin a sync");
		return;
	}
	json_t *results = json_array();
	for (size_t i = 0; i < json_array_size(ops); i++) {
		json_t *op = json_array_get(ops, i);
		const char *id = op_id(op);
		json_t *name = json_object_get(op, "op"), *args = json_object_get(op, "args");
		json_t *at = json_object_get(op, "at");
		struct outcome o;
		memset(&o, 0, sizeof(o));
		if (!json_is_object(op) || !id || !json_is_string(name) ||
		    (args && !json_is_object(args)) ||
		    (at && (!json_is_string(at) || json_string_length(at) > SYNC_AT_MAX))) {
			o.status = MSYNC_REJECTED;
			o.body = error_body(
			        "invalid_op",
			        arena_sprintf(
			                a,
			                "operation %zu must be {\"id\": 1 to %d bytes, \"op\": "
			                "text, \"args\": object, \"at\": text}",
			                i + 1, STORE_SYNC_ID_MAX));
		} else {
			json_t *empty = args ? NULL : json_object();
			rc = run_op(cp, tenant_id, device, id, json_string_value(name),
			            args ? args : empty, at ? json_string_value(at) : "", a, &o, q);
			json_decref(empty);
			if (rc < 0)
				break;
		}
		static const char *const names[MSYNC_COUNT] = {"applied", "duplicate", "rejected"};
		json_t *r = json_pack("{s:s?, s:s}", "id", id, "status", names[o.status]);
		if (o.first)
			json_object_set_new(r, "first", json_string(o.first));
		json_object_update(r, o.body);
		json_decref(o.body);
		json_array_append_new(results, r);
		counts[o.status]++;
	}
	if (rc >= 0)
		rc = store_commit(c);
	json_decref(root);
	if (rc < 0) {
		json_decref(results);
		companion__fail_store(ans, a, c, rc, "apply a sync");
		store_rollback(c);
		erp_cache_clear(cp->cache);
		return;
	}
	for (int s = 0; s < MSYNC_COUNT; s++)
		atomic_fetch_add(&cp->app->metrics.sync_ops[s], counts[s]);
	memcpy(queued, q, sizeof(q));
	log_info("companion.sync",
	         "tenant %lld device \"%s\": %llu applied, %llu duplicate, %llu rejected",
	         (long long)tenant_id, device, (unsigned long long)counts[MSYNC_APPLIED],
	         (unsigned long long)counts[MSYNC_DUPLICATE],
	         (unsigned long long)counts[MSYNC_REJECTED]);
	ans->status = 200;
	ans->body = companion__dump(a, json_pack("{s:o}", "results", results));
}
