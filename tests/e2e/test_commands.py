"""Every customer and owner command, end to end: signed webhook → serve →
worker → outbox → sender → mock BSP."""

from harness import (CUSTOMER, OWNER, Stack, body_json, body_text, buttons, http, run,
                     VERIFY)


def stock_of(s, sku, tenant=1):
    return s.scalar("SELECT stock FROM products WHERE tenant_id=? AND sku=?", tenant, sku)


def ledger_of(s, sku, tenant=1):
    return s.scalar("SELECT COALESCE(SUM(l.delta),0) FROM stock_ledger l JOIN products p "
                    "ON p.id=l.product_id WHERE p.tenant_id=? AND p.sku=?", tenant, sku)


def test_verify_handshake():
    with Stack() as s:
        st, b, _ = http("GET", s.url + "/webhooks/whatsapp?hub.mode=subscribe"
                        "&hub.verify_token=%s&hub.challenge=1158201444" % VERIFY)
        assert st == 200 and b == b"1158201444", (st, b)
        st, _, _ = http("GET", s.url + "/webhooks/whatsapp?hub.mode=subscribe"
                        "&hub.verify_token=wrong&hub.challenge=1")
        assert st == 403, st


def test_menu_and_context():
    with Stack() as s:
        for text in ("hi", "menu", "help", "kuch bhi samajh nahi aaya"):
            wamid_msgs = s.say(text)
            m = wamid_msgs[0]
            b = body_json(m)
            assert b["context"]["message_id"] == m["context"], m
            ids = [i for i, _ in buttons(m)]
            titles = [t for _, t in buttons(m)]
            assert titles == ["Stock Check", "New Order", "Invoice"], titles
            assert len(ids) == 3
            assert b["to"] == "+" + CUSTOMER, b["to"]


def test_stock_check():
    with Stack() as s:
        m = s.say("stock rice")[0]
        t = body_text(m)
        assert "Rice" in t and "60.00" in t, t
        t = body_text(s.say("stock chawal")[0])
        assert "Rice" in t, t
        t = body_text(s.say("stock unobtainium")[0])
        assert "unobtainium" in t.lower(), t


def test_order_confirm_invoice_and_ledger():
    with Stack() as s:
        before = stock_of(s, "RICE")
        m = s.say("order 2 kg chawal")[0]
        t = body_text(m)
        assert "Rice" in t, t
        bt = buttons(m)
        assert [x[1] for x in bt] == ["Confirm", "Cancel"], bt
        confirm = bt[0][0]
        assert confirm.startswith("confirm:"), confirm
        assert stock_of(s, "RICE") == before, "a draft must not move stock"

        r = s.tap(confirm)[0]
        t = body_text(r)
        assert "INV/" in t and "upi://pay?" in t, t
        assert stock_of(s, "RICE") == before - 2000
        assert ledger_of(s, "RICE") == stock_of(s, "RICE")
        inv = s.sql("SELECT number, taxable_paise, cgst_paise, sgst_paise, igst_paise, "
                    "total_paise FROM invoices")
        assert len(inv) == 1, inv
        number, taxable, cgst, sgst, igst, total = inv[0]
        assert taxable == 12000 and cgst == 300 and sgst == 300 and igst == 0, inv
        assert total == 12600, inv
        assert number.endswith("/000001"), number

        # a second tap on the same Confirm is a polite no-op
        r2 = s.tap(confirm)[0]
        assert stock_of(s, "RICE") == before - 2000
        assert s.scalar("SELECT COUNT(*) FROM invoices") == 1
        assert "INV/" not in body_text(r2) or "already" in body_text(r2).lower()

        # invoice and status commands
        t = body_text(s.say("invoice")[0])
        assert number in t, t
        t = body_text(s.say("status")[0])
        assert "confirm" in t.lower(), t

        # next invoice number follows without a gap
        m = s.say("order 1 kg cheeni, 500 g dal")[0]
        s.tap(buttons(m)[0][0])
        nums = [r[0] for r in s.sql("SELECT number FROM invoices ORDER BY seq")]
        assert nums[1].endswith("/000002"), nums


def test_cancel_releases_draft():
    with Stack() as s:
        m = s.say("order 3 packet maggi")[0]
        cancel = buttons(m)[1][0]
        assert cancel.startswith("cancel:"), cancel
        s.tap(cancel)
        st = s.scalar("SELECT status FROM orders ORDER BY id DESC LIMIT 1")
        assert st == 2, st  # ORDER_CANCELLED
        assert s.scalar("SELECT COUNT(*) FROM invoices") == 0


def test_short_stock_and_unknown_item():
    with Stack() as s:
        run("product", "add", "--db", s.db, "--tenant", "1", "--sku", "SAFFRON", "--name",
            "Saffron", "--unit", "g", "--price", "500", "--gst", "5", "--stock", "3")
        t = body_text(s.say("order 5 g saffron")[0])
        assert "3 g" in t and "Saffron" in t, t
        assert s.scalar("SELECT COUNT(*) FROM orders") == 0
        t = body_text(s.say("order 200000 pc eggs")[0])
        assert "at most" in t, t
        t = body_text(s.say("order 2 kg unobtainium")[0])
        assert "unobtainium" in t.lower(), t
        assert s.scalar("SELECT COUNT(*) FROM orders") == 0


def test_owner_commands():
    with Stack() as s:
        before = stock_of(s, "SALT")
        s.say("add stock 5 kg namak", frm=OWNER)
        assert stock_of(s, "SALT") == before + 5000
        assert ledger_of(s, "SALT") == stock_of(s, "SALT")
        s.say("price rice 62.50", frm=OWNER)
        assert s.scalar("SELECT price_paise FROM products WHERE sku='RICE' AND tenant_id=1") \
            == 6250
        run("product", "add", "--db", s.db, "--tenant", "1", "--sku", "SAFFRON", "--name",
            "Saffron", "--unit", "g", "--price", "500", "--stock", "3")
        t = body_text(s.say("low stock", frm=OWNER)[0])
        assert t, t
        assert "Saffron" in t and "Rice" not in t, t
        m = s.say("order 1 rice")[0]
        s.tap(buttons(m)[0][0])
        t = body_text(s.say("sales today", frm=OWNER)[0])
        assert "1" in t, t
        assert "1 confirmed order" in t and "62.50" in t, t
        # a customer cannot change stock
        before = stock_of(s, "SALT")
        s.say("add stock 5 kg namak", frm=CUSTOMER)
        assert stock_of(s, "SALT") == before
        assert s.scalar("SELECT COUNT(*) FROM audit_log WHERE actor=?", OWNER) >= 2


def test_duplicate_webhook_one_reply():
    import time
    from harness import text_payload
    with Stack() as s:
        wamid, payload = text_payload("stock dal")
        assert s.post(payload)[0] == 200
        assert s.post(payload)[0] == 200
        s.replies(wamid)
        time.sleep(1.0)
        assert len(s.mock_messages(context=wamid)) == 1
        assert s.scalar("SELECT COUNT(*) FROM inbox WHERE ext_id=?", wamid) == 1
        assert s.metrics()["munim_inbox_duplicates_total"] >= 1


def test_contract_replies_quote_the_inbound_message():
    from harness import text_payload
    with Stack() as s:
        for text in ("menu", "stock rice", "order 2 rice"):
            wamid, payload = text_payload(text)
            assert s.post(payload)[0] == 200
            m = s.replies(wamid)[0]
            assert body_json(m)["context"]["message_id"] == wamid, (text, m)


def test_concurrent_webhooks_share_commits():
    import threading
    from harness import text_payload
    with Stack(mock_args=["--delivered-statuses", "0"]) as s:
        before = s.metrics()
        payloads = [text_payload("stock dal") for _ in range(200)]
        codes = []

        def post(chunk):
            for _, p in chunk:
                codes.append(s.post(p)[0])
        threads = [threading.Thread(target=post, args=(payloads[i::20],)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes.count(200) == 200, codes
        m = s.metrics()
        commits = m["munim_ingest_commits_total"] - before["munim_ingest_commits_total"]
        reqs = (m["munim_ingest_commit_requests_total"]
                - before["munim_ingest_commit_requests_total"])
        assert reqs == 200, reqs
        assert commits < reqs, "200 requests took %d commits: no group commit" % commits
        for wamid, _ in payloads:
            s.replies(wamid)


def test_hostile_and_unsupported_input_gets_polite_replies():
    import json
    import os
    from harness import ROOT, SHOP, envelope, new_wamid
    with Stack() as s:
        hostile = ["%s%s%n%x", "'; DROP TABLE products; --", "\u0000\u0001\u001b[2J",
                   "🙏🏽 चावल 2 किलो", "order " + "9" * 40 + " kg rice", "x" * 5000,
                   "order " + ", ".join("1 kg rice" for _ in range(60)), "confirm:999999",
                   "cancel:-1", "stock "]
        for text in hostile:
            m = s.say(text)[0]
            assert body_text(m), (text, m)
        assert s.scalar("SELECT COUNT(*) FROM products WHERE tenant_id=1") >= 13
        # a photo (from the reference samples) is answered, not dropped
        sample = json.load(open(os.path.join(ROOT, "tests/unit/data/wa-payloads/"
                                             "pywa_image_message.json")))
        msg = sample["entry"][0]["changes"][0]["value"]["messages"][0]
        msg["id"] = new_wamid()
        payload = envelope(SHOP, [msg], contacts=sample["entry"][0]["changes"][0]["value"]
                           ["contacts"])
        assert s.post(payload)[0] == 200
        t = body_text(s.replies(msg["id"])[0])
        assert "text" in t.lower() or "button" in t.lower(), t
        assert s.serve.alive()


def test_failed_and_read_statuses_update_the_outbox():
    from harness import SHOP, envelope, text_payload, wait_until
    with Stack(mock_args=["--delivered-statuses", "0"]) as s:
        w1, p1 = text_payload("stock rice")
        w2, p2 = text_payload("stock dal")
        assert s.post(p1)[0] == 200 and s.post(p2)[0] == 200
        s.replies(w1)
        s.replies(w2)
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE state=2") == 2,
                   what="both replies accepted")
        pid1 = s.scalar("SELECT provider_msg_id FROM outbox WHERE reply_to=?", w1)
        pid2 = s.scalar("SELECT provider_msg_id FROM outbox WHERE reply_to=?", w2)
        failed = {"id": pid1, "status": "failed", "timestamp": "1700000000",
                  "recipient_id": CUSTOMER,
                  "errors": [{"code": 131026, "title": "Message undeliverable"}]}
        read = {"id": pid2, "status": "read", "timestamp": "1700000001",
                "recipient_id": CUSTOMER}
        late_delivered = {"id": pid2, "status": "delivered", "timestamp": "1700000000",
                          "recipient_id": CUSTOMER}
        assert s.post(envelope(SHOP, statuses=[failed, read]))[0] == 200
        assert s.post(envelope(SHOP, statuses=[late_delivered]))[0] == 200
        wait_until(lambda: s.scalar("SELECT state FROM outbox WHERE reply_to=?", w1) == 6,
                   what="failed status applied")
        code, err = s.sql("SELECT last_error_code, last_error FROM outbox WHERE reply_to=?",
                          w1)[0]
        assert code == 131026 and "undeliverable" in err, (code, err)
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM inbox WHERE state=0") == 0,
                   what="statuses processed")
        # read stays read: the late "delivered" does not move it back
        assert s.scalar("SELECT state FROM outbox WHERE reply_to=?", w2) == 5
        # a status for a message munim never sent is counted, not an error
        ghost = {"id": "wamid.GHOST", "status": "delivered", "timestamp": "1700000000",
                 "recipient_id": CUSTOMER}
        assert s.post(envelope(SHOP, statuses=[ghost]))[0] == 200
        wait_until(lambda: s.metrics()["munim_statuses_unmatched_total"] >= 1,
                   what="unmatched status counted")
