/*
 * migrations_sqlite.c - the SQLite schema, as numbered migrations.
 *
 * Migration i+1 is store__sq_migrations[i]: a NULL-terminated array of SQL
 * statements (one string each: ISO C caps a literal at 4095 characters)
 * that store_migrate runs in its own transaction together with the row
 * (version, applied_at) in schema_migrations. A migration, once released,
 * never changes: a new need is a new migration appended at the end.
 *
 * Invariants the schema itself enforces:
 *   - stock never negative (CHECK) and the ledger is append-only (triggers),
 *     so the sum of a product's ledger equals its stock;
 *   - one invoice per order, invoice numbers unique per tenant and FY, and
 *     (tenant, fy, seq) unique: with the counter row that is the gapless series;
 *   - the inbox deduplicates by (ext_id, status); its id is AUTOINCREMENT,
 *     so ids are time-ordered and never reused (appends stay at the right
 *     edge of the b-tree, and "oldest first" is "smallest id").
 *   - queue tables (inbox, outbox) carry no foreign keys: their hot inserts
 *     pay for no extra lookups, and ingest checks the tenant itself.
 */
#include "store/sqlite_internal.h"

static const char *const migration_1[] = {
        "CREATE TABLE tenants ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " phone_number_id TEXT NOT NULL UNIQUE,"
        " gstin TEXT NOT NULL DEFAULT '',"
        " state_code TEXT NOT NULL DEFAULT '',"
        " upi_id TEXT NOT NULL DEFAULT '',"
        " owner_numbers TEXT NOT NULL DEFAULT '',"
        " address TEXT NOT NULL DEFAULT '',"
        " created_at INTEGER NOT NULL)",
        "CREATE TABLE customers ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " wa_id TEXT NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " state_code TEXT NOT NULL DEFAULT '',"
        " last_inbound_at INTEGER NOT NULL DEFAULT 0,"
        " UNIQUE (tenant_id, wa_id))",
        "CREATE TABLE products ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " sku TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        " aliases TEXT NOT NULL DEFAULT '',"
        " unit TEXT NOT NULL,"
        " base_per_unit INTEGER NOT NULL CHECK (base_per_unit > 0),"
        " price_paise INTEGER NOT NULL CHECK (price_paise >= 0),"
        " gst_rate_bp INTEGER NOT NULL CHECK (gst_rate_bp BETWEEN 0 AND 10000),"
        " hsn TEXT NOT NULL DEFAULT '',"
        " stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),"
        " UNIQUE (tenant_id, sku))",
        "CREATE INDEX products_by_name ON products (tenant_id, name)",
        "CREATE TABLE stock_ledger ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " product_id INTEGER NOT NULL REFERENCES products(id),"
        " delta INTEGER NOT NULL,"
        " reason TEXT NOT NULL,"
        " ref_id INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL)",
        "CREATE INDEX stock_ledger_by_product ON stock_ledger (product_id)",
        "CREATE TRIGGER stock_ledger_no_update BEFORE UPDATE ON stock_ledger"
        " BEGIN SELECT RAISE(ABORT, 'stock_ledger is append-only'); END",
        "CREATE TRIGGER stock_ledger_no_delete BEFORE DELETE ON stock_ledger"
        " BEGIN SELECT RAISE(ABORT, 'stock_ledger is append-only'); END",
        "CREATE TABLE orders ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " customer_id INTEGER NOT NULL REFERENCES customers(id),"
        " status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 2),"
        " total_paise INTEGER NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL)",
        "CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id, id)",
        "CREATE INDEX orders_by_status ON orders (tenant_id, status, updated_at)",
        "CREATE TABLE order_lines ("
        " order_id INTEGER NOT NULL REFERENCES orders(id),"
        " line_no INTEGER NOT NULL,"
        " product_id INTEGER NOT NULL REFERENCES products(id),"
        " name TEXT NOT NULL,"
        " unit TEXT NOT NULL,"
        " base_per_unit INTEGER NOT NULL,"
        " qty_base INTEGER NOT NULL,"
        " price_paise INTEGER NOT NULL,"
        " gst_rate_bp INTEGER NOT NULL,"
        " hsn TEXT NOT NULL DEFAULT '',"
        " amount_paise INTEGER NOT NULL,"
        " PRIMARY KEY (order_id, line_no)) WITHOUT ROWID",
        "CREATE TABLE invoice_counters ("
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " fy TEXT NOT NULL,"
        " next_seq INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, fy)) WITHOUT ROWID",
        "CREATE TABLE invoices ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " order_id INTEGER NOT NULL UNIQUE REFERENCES orders(id),"
        " customer_id INTEGER NOT NULL REFERENCES customers(id),"
        " number TEXT NOT NULL,"
        " fy TEXT NOT NULL,"
        " seq INTEGER NOT NULL,"
        " issued_at INTEGER NOT NULL,"
        " intra_state INTEGER NOT NULL,"
        " place_of_supply TEXT NOT NULL,"
        " taxable_paise INTEGER NOT NULL,"
        " cgst_paise INTEGER NOT NULL,"
        " sgst_paise INTEGER NOT NULL,"
        " igst_paise INTEGER NOT NULL,"
        " round_off_paise INTEGER NOT NULL,"
        " total_paise INTEGER NOT NULL,"
        " UNIQUE (tenant_id, fy, seq),"
        " UNIQUE (tenant_id, number))",
        "CREATE INDEX invoices_by_customer ON invoices (tenant_id, customer_id, id)",
        "CREATE INDEX invoices_by_date ON invoices (tenant_id, issued_at)",
        "CREATE TABLE inbox ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " part INTEGER NOT NULL,"
        " tenant_id INTEGER NOT NULL,"
        " kind INTEGER NOT NULL,"
        " ext_id TEXT NOT NULL,"
        " status TEXT NOT NULL DEFAULT '',"
        " from_id TEXT NOT NULL DEFAULT '',"
        " name TEXT NOT NULL DEFAULT '',"
        " type TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL DEFAULT '',"
        " context_id TEXT NOT NULL DEFAULT '',"
        " sent_at INTEGER NOT NULL DEFAULT 0,"
        " received_at INTEGER NOT NULL,"
        " error_code INTEGER NOT NULL DEFAULT 0,"
        " error_title TEXT NOT NULL DEFAULT '',"
        " callback_data TEXT NOT NULL DEFAULT '',"
        " state INTEGER NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT NOT NULL DEFAULT '')",
        "CREATE UNIQUE INDEX inbox_dedup ON inbox (ext_id, status)",
        "CREATE INDEX inbox_pending ON inbox (part, id) WHERE state = 0",
        "CREATE TABLE outbox ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " tenant_id INTEGER NOT NULL,"
        " priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),"
        " state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 7),"
        " phone_number_id TEXT NOT NULL,"
        " to_id TEXT NOT NULL,"
        " reply_to TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at INTEGER NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " inbound_received_at INTEGER NOT NULL DEFAULT 0,"
        " provider_msg_id TEXT,"
        " last_error_code INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT NOT NULL DEFAULT '',"
        " early_state INTEGER NOT NULL DEFAULT 0,"
        " updated_at INTEGER NOT NULL)",
        "CREATE INDEX outbox_due ON outbox (priority, next_attempt_at, id) WHERE state = 0",
        "CREATE INDEX outbox_sending ON outbox (id) WHERE state = 1",
        "CREATE INDEX outbox_by_provider_id ON outbox (provider_msg_id)"
        " WHERE provider_msg_id IS NOT NULL",
        "CREATE TABLE audit_log ("
        " id INTEGER PRIMARY KEY,"
        " tenant_id INTEGER NOT NULL,"
        " actor TEXT NOT NULL,"
        " action TEXT NOT NULL,"
        " detail TEXT NOT NULL DEFAULT '',"
        " created_at INTEGER NOT NULL)",
        "CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, created_at)",
        NULL,
};

/*
 * 2: tenants.catalog_rev, bumped by every change to one of the tenant's
 * products (a new product, a rename, a price, a stock movement...), so a
 * copy of the catalogue read at revision r is exact while the tenant is
 * still at r (the workers' catalogue cache, erp/cache.c).
 */
static const char *const migration_2[] = {
        "ALTER TABLE tenants ADD COLUMN catalog_rev INTEGER NOT NULL DEFAULT 0",
        "CREATE TRIGGER products_rev_insert AFTER INSERT ON products"
        " BEGIN UPDATE tenants SET catalog_rev = catalog_rev + 1 WHERE id = NEW.tenant_id; END",
        "CREATE TRIGGER products_rev_update AFTER UPDATE ON products"
        " BEGIN UPDATE tenants SET catalog_rev = catalog_rev + 1"
        " WHERE id IN (OLD.tenant_id, NEW.tenant_id); END",
        "CREATE TRIGGER products_rev_delete AFTER DELETE ON products"
        " BEGIN UPDATE tenants SET catalog_rev = catalog_rev + 1 WHERE id = OLD.tenant_id; END",
        NULL,
};

/*
 * 3: outbox_counts, rows of the outbox by priority and state, kept by
 * triggers in the same transactions as the rows themselves: the gauges read
 * 16 numbers at start-up instead of counting a history of millions of rows
 * (a scan that, done in one snapshot, also held the WAL from being reset).
 * Filled from the rows already there (the one time this scan runs).
 */
static const char *const migration_3[] = {
        "CREATE TABLE outbox_counts ("
        " priority INTEGER NOT NULL,"
        " state INTEGER NOT NULL,"
        " n INTEGER NOT NULL,"
        " PRIMARY KEY (priority, state)) WITHOUT ROWID",
        "INSERT INTO outbox_counts (priority, state, n)"
        " SELECT priority, state, count(*) FROM outbox GROUP BY priority, state",
        "CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN"
        " INSERT INTO outbox_counts (priority, state, n) VALUES (NEW.priority, NEW.state, 1)"
        " ON CONFLICT (priority, state) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN"
        " UPDATE outbox_counts SET n = n - 1"
        " WHERE priority = OLD.priority AND state = OLD.state; END",
        "CREATE TRIGGER outbox_counts_update AFTER UPDATE OF priority, state ON outbox"
        " WHEN OLD.priority <> NEW.priority OR OLD.state <> NEW.state BEGIN"
        " UPDATE outbox_counts SET n = n - 1"
        " WHERE priority = OLD.priority AND state = OLD.state;"
        " INSERT INTO outbox_counts (priority, state, n) VALUES (NEW.priority, NEW.state, 1)"
        " ON CONFLICT (priority, state) DO UPDATE SET n = n + 1; END",
        NULL,
};

/*
 * 4: outbox_counts kept by the store's own code instead of triggers: each
 * transaction adds its changes by (priority, state) once, at its commit
 * (store__sq_count), where the triggers ran two statements for every row
 * that moved - about a fifth of the cost of recording an acceptance. The
 * counts stay as the triggers left them.
 */
static const char *const migration_4[] = {
        "DROP TRIGGER outbox_counts_insert",
        "DROP TRIGGER outbox_counts_delete",
        "DROP TRIGGER outbox_counts_update",
        NULL,
};

/*
 * 5: outbox.provider, the name of the provider that accepted the row
 * ("bsp1", "bsp2", ... in failover order, "sms"), so that its delivery
 * reports count towards that provider's delivery rate. Empty for rows
 * accepted before, or recorded from the send journal after a crash.
 */
static const char *const migration_5[] = {
        "ALTER TABLE outbox ADD COLUMN provider TEXT NOT NULL DEFAULT ''",
        NULL,
};

/*
 * 6: WhatsApp marketing and payments.
 *   - customers.opted_out: 1 once a customer wrote "stop"; broadcasts leave
 *     them out until they write "start".
 *   - tenants.template_name / template_lang: the shop's approved template,
 *     the only thing WhatsApp lets a shop send outside the 24-hour window
 *     ("" = none set: such customers are skipped).
 *   - tenants.api_token_hash: SHA-256 (hex) of the merchant API's bearer
 *     token, never the token itself; unique where set, and found by index.
 *   - customers_by_last_inbound: a broadcast reads the customers who wrote
 *     in the last 30 days as a range of (tenant_id, last_inbound_at), paged
 *     in that order (the rowid completes the key), instead of every
 *     customer the shop ever had.
 *   - outbox_marketing_pending: a "stop" cancels that customer's pending
 *     marketing rows; this partial index holds only PENDING P3 rows, so the
 *     cancel touches that customer's rows, not every pending row of a
 *     running campaign, and replies (P0-P2) pay nothing for it.
 *   - orders.paid_at: when the owner marked a confirmed order paid (0: not
 *     paid), beside its status so that the sales figures, which count
 *     confirmed orders, stay as they are.
 */
static const char *const migration_6[] = {
        "ALTER TABLE customers ADD COLUMN opted_out INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tenants ADD COLUMN template_name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE tenants ADD COLUMN template_lang TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE tenants ADD COLUMN api_token_hash TEXT NOT NULL DEFAULT ''",
        "CREATE UNIQUE INDEX tenants_by_api_token ON tenants (api_token_hash)"
        " WHERE api_token_hash <> ''",
        "CREATE INDEX customers_by_last_inbound ON customers (tenant_id, last_inbound_at)",
        "CREATE INDEX outbox_marketing_pending ON outbox (tenant_id, to_id)"
        " WHERE state = 0 AND priority = 3",
        "ALTER TABLE orders ADD COLUMN paid_at INTEGER NOT NULL DEFAULT 0",
        NULL,
};

/*
 * 7: the AI endpoint's jobs and the queue of photos and documents waiting
 * to be read (src/ai/, store/sqlite_ai.c).
 *   - ai_jobs: a message the local parser could not read (kind 0: ask the
 *     endpoint) or one that waits behind such a message of its customer
 *     (kind 1: run as typed), with what a reply needs (the inbound wamid
 *     it quotes). state 0 pending, 1 claimed, 2 done; one row per inbound
 *     message (ext_id unique). ai_jobs_open holds the jobs not yet done by
 *     customer, for the ERP's "does this customer wait?" and the claim's
 *     "is this the customer's oldest?".
 *   - ocr_queue: one row per image or document received; state 0 queued,
 *     1 done (the operator read it and answered).
 */
static const char *const migration_7[] = {
        "CREATE TABLE ai_jobs ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " tenant_id INTEGER NOT NULL,"
        " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 1),"
        " state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),"
        " ext_id TEXT NOT NULL UNIQUE,"
        " from_id TEXT NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " type TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL DEFAULT '',"
        " context_id TEXT NOT NULL DEFAULT '',"
        " sent_at INTEGER NOT NULL DEFAULT 0,"
        " received_at INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " outcome TEXT NOT NULL DEFAULT '',"
        " rewritten TEXT NOT NULL DEFAULT '',"
        " done_at INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX ai_jobs_open ON ai_jobs (tenant_id, from_id, id) WHERE state < 2",
        "CREATE INDEX ai_jobs_pending ON ai_jobs (id) WHERE state = 0",
        "CREATE TABLE ocr_queue ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " tenant_id INTEGER NOT NULL,"
        " from_id TEXT NOT NULL,"
        " ext_id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL DEFAULT '',"
        " media_id TEXT NOT NULL DEFAULT '',"
        " mime_type TEXT NOT NULL DEFAULT '',"
        " caption TEXT NOT NULL DEFAULT '',"
        " state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 1),"
        " created_at INTEGER NOT NULL,"
        " done_at INTEGER NOT NULL DEFAULT 0,"
        " note TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX ocr_queue_waiting ON ocr_queue (id) WHERE state = 0",
        NULL,
};

/*
 * 8: message aggregation (send/aggregate.c). A reply merged into another
 * reply to the same customer takes the outbox state 8, MERGED, and
 * outbox.merged_into names the row that carries its text. The state's
 * CHECK cannot be widened in place, so the table is built again with the
 * same columns, ids and indexes (SQLite's own procedure for such changes:
 * new table, copy, drop, rename); the AUTOINCREMENT high-water mark is
 * carried over so that no id is ever used twice. The one time this copies
 * the outbox's history.
 */
static const char *const migration_8[] = {
        "CREATE TABLE outbox_new ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " tenant_id INTEGER NOT NULL,"
        " priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),"
        " state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 8),"
        " phone_number_id TEXT NOT NULL,"
        " to_id TEXT NOT NULL,"
        " reply_to TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at INTEGER NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " inbound_received_at INTEGER NOT NULL DEFAULT 0,"
        " provider_msg_id TEXT,"
        " last_error_code INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT NOT NULL DEFAULT '',"
        " early_state INTEGER NOT NULL DEFAULT 0,"
        " updated_at INTEGER NOT NULL,"
        " provider TEXT NOT NULL DEFAULT '',"
        " merged_into INTEGER NOT NULL DEFAULT 0)",
        "INSERT INTO outbox_new (id, tenant_id, priority, state, phone_number_id, to_id,"
        " reply_to, body, attempts, next_attempt_at, created_at, inbound_received_at,"
        " provider_msg_id, last_error_code, last_error, early_state, updated_at, provider)"
        " SELECT id, tenant_id, priority, state, phone_number_id, to_id, reply_to, body,"
        " attempts, next_attempt_at, created_at, inbound_received_at, provider_msg_id,"
        " last_error_code, last_error, early_state, updated_at, provider FROM outbox",
        "DELETE FROM sqlite_sequence WHERE name = 'outbox_new'",
        "INSERT INTO sqlite_sequence (name, seq)"
        " SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox'",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_new RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox (priority, next_attempt_at, id) WHERE state = 0",
        "CREATE INDEX outbox_sending ON outbox (id) WHERE state = 1",
        "CREATE INDEX outbox_by_provider_id ON outbox (provider_msg_id)"
        " WHERE provider_msg_id IS NOT NULL",
        "CREATE INDEX outbox_marketing_pending ON outbox (tenant_id, to_id)"
        " WHERE state = 0 AND priority = 3",
        NULL,
};

/*
 * 9: the companion app's offline operations (companion/sync.c): one row per
 * operation a device synced, keyed by the shop and the device's own id for
 * it, holding what was answered the first time (applied or refused) so
 * that a replay answers the same and changes nothing.
 */
static const char *const migration_9[] = {
        "CREATE TABLE companion_ops ("
        " tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
        " client_id TEXT NOT NULL,"
        " device TEXT NOT NULL DEFAULT '',"
        " op TEXT NOT NULL,"
        " digest TEXT NOT NULL,"
        " rejected INTEGER NOT NULL CHECK (rejected IN (0, 1)),"
        " result TEXT NOT NULL,"
        " client_at TEXT NOT NULL DEFAULT '',"
        " applied_at INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, client_id)) WITHOUT ROWID",
        NULL,
};

/*
 * 10: a customer's waiting replies, found at once: under a traffic spike
 * the sender merges them into one message (send/aggregate.c,
 * store_outbox_claim_to), and an opt-out cancels the waiting offers
 * (which outbox_marketing_pending, a part of it, served alone before).
 * Partial, so replies that never wait (born claimed on the fast path) cost
 * nothing.
 */
static const char *const migration_10[] = {
        "CREATE INDEX outbox_pending_to ON outbox (tenant_id, to_id) WHERE state = 0",
        "DROP INDEX outbox_marketing_pending",
        NULL,
};

/*
 * 11: a photo's or document's media id and mime type (envelope.c), kept
 * with its inbox entry so that a worker queueing it for OCR has them.
 */
static const char *const migration_11[] = {
        "ALTER TABLE inbox ADD COLUMN media_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE inbox ADD COLUMN media_mime TEXT NOT NULL DEFAULT ''",
        NULL,
};

/*
 * 12: several processes over one store (store.h, "processes"), as in
 * PostgreSQL's migration 2: the nodes and their leases, the partitions the
 * worker nodes took, and the node that claimed each outbox row. A SQLite
 * file is served by one process, whose node takes every partition; the
 * tables keep the two stores' operations the same.
 */
static const char *const migration_12[] = {
        "CREATE TABLE nodes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " name TEXT NOT NULL,"
        " roles INTEGER NOT NULL,"
        " host TEXT NOT NULL DEFAULT '',"
        " pid INTEGER NOT NULL DEFAULT 0,"
        " started_at INTEGER NOT NULL,"
        " beat_at INTEGER NOT NULL,"
        " expires_at INTEGER NOT NULL)",
        "CREATE INDEX nodes_by_name ON nodes (name, id)",
        "CREATE TABLE partition_leases ("
        " part INTEGER PRIMARY KEY CHECK (part BETWEEN 0 AND 63),"
        " owner INTEGER NOT NULL DEFAULT 0,"
        " expires_at INTEGER NOT NULL DEFAULT 0,"
        " taken_at INTEGER NOT NULL DEFAULT 0)",
        "ALTER TABLE outbox ADD COLUMN claimed_by INTEGER NOT NULL DEFAULT 0",
        NULL,
};

const char *const *const store__sq_migrations[] = {
        migration_1, migration_2, migration_3, migration_4,  migration_5,  migration_6,
        migration_7, migration_8, migration_9, migration_10, migration_11, migration_12,
};

const int store__sq_nmigrations =
        (int)(sizeof(store__sq_migrations) / sizeof(store__sq_migrations[0]));
