"""The companion app's API end to end, through a real `munim serve` and
`munim mock-bsp`: stock, an order placed from the app with its GST invoice,
a sync batch applied and then replayed unchanged, the refusals (bad token,
bad JSON, an over-long batch), and the API working through a full WhatsApp
outage, the customer's confirmation going out once it ends."""

import json
import time

from harness import Stack, body_json, body_text, http, run, wait_until

CUST = "919800000077"


def api(s, method, path, body=None, token=None, raw=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    st, b, _ = http(method, s.url + path, data, headers)
    return st, json.loads(b)


def token_of(s, tenant=1):
    t = run("tenant", "token", "--db", s.db, "--tenant", str(tenant)).stdout.strip()
    assert len(t) == 64, t
    return t


def atta(s, token):
    st, ans = api(s, "GET", "/v1/stock?q=atta", token=token)
    assert st == 200, ans
    items = [i for i in ans["items"] if i["sku"] == "ATTA"]
    assert len(items) == 1, ans
    return items[0]


def error_code(ans):
    return ans["error"]["code"]


def test_stock_order_invoice_and_sync_replay():
    s = Stack(tenants=2)
    tok = token_of(s)
    tok2 = token_of(s, 2)
    with s:
        before = atta(s, tok)
        assert before["unit"] == "kg" and before["price_paise"] == 4000, before

        # an order from the app: the WhatsApp order command's own code
        st, o = api(s, "POST", "/v1/orders",
                    {"customer": "+" + CUST, "lines": [{"item": "aata", "qty": "2 kg"},
                                                       {"item": "sugar", "qty": "1 kg"}]},
                    token=tok)
        assert st == 201, o
        assert o["status"] == "confirmed" and o["invoice"]["number"].startswith("INV/"), o
        after = atta(s, tok)
        assert after["stock_base"] == before["stock_base"] - 2000, (before, after)
        st, inv = api(s, "GET", "/v1/invoices/%d" % o["id"], token=tok)
        assert st == 200, inv
        # 2 kg x 40 + 1 kg x 45 = 125.00 taxable, 5 %: CGST 3.13 + SGST 3.13 (per line,
        # rounded half up), total 131.25 -> 131
        assert inv["taxable_paise"] == 12500, inv
        assert inv["cgst_paise"] == inv["sgst_paise"] == 313, inv
        assert inv["igst_paise"] == 0 and inv["total_paise"] == 13100, inv
        assert inv["number"] in inv["text"] and len(inv["lines"]) == 2, inv
        # the customer hears of it on WhatsApp, as after a Confirm tap
        msg = wait_until(lambda: s.mock_messages(to=CUST) or None, what="the confirmation")[0]
        assert inv["number"] in body_text(msg) and "context" not in body_json(msg), msg
        st, lst = api(s, "GET", "/v1/orders?status=confirmed&limit=5", token=tok)
        assert st == 200 and [x["id"] for x in lst["orders"]] == [o["id"]], lst
        # another shop's token sees none of it
        st, ans = api(s, "GET", "/v1/orders/%d" % o["id"], token=tok2)
        assert st == 404 and error_code(ans) == "order_not_found", ans

        batch = {"device": "tablet-1", "ops": [
            {"id": "a1", "op": "stock.adjust", "args": {"item": "atta", "add": "10 kg"},
             "at": "2026-11-27T09:00:00+05:30"},
            {"id": "a2", "op": "order.create",
             "args": {"customer": "+" + CUST, "lines": [{"item": "caviar"}]}},
            {"id": "a3", "op": "order.create",
             "args": {"customer": "+" + CUST, "lines": [{"item": "atta", "qty": "1 kg"}]}},
            {"id": "a4", "op": "order.cancel", "args": {"order_id": o["id"]}},
        ]}
        st, ans = api(s, "POST", "/v1/sync", batch, token=tok)
        assert st == 200, ans
        got = [(r["id"], r["status"]) for r in ans["results"]]
        assert got == [("a1", "applied"), ("a2", "rejected"), ("a3", "applied"),
                       ("a4", "rejected")], ans
        assert ans["results"][1]["error"]["code"] == "unknown_item", ans
        assert ans["results"][3]["error"]["code"] == "not_draft", ans
        mid = atta(s, tok)
        assert mid["stock_base"] == after["stock_base"] + 10000 - 1000, (after, mid)
        orders = s.scalar("SELECT count(*) FROM orders")
        rows = s.scalar("SELECT count(*) FROM outbox")

        # the answer was lost: the same batch again changes nothing
        st, again = api(s, "POST", "/v1/sync", batch, token=tok)
        assert st == 200, again
        assert [r["status"] for r in again["results"]] == ["duplicate"] * 4, again
        assert [r["first"] for r in again["results"]] == ["applied", "rejected", "applied",
                                                          "rejected"], again
        assert again["results"][2]["result"] == ans["results"][2]["result"], again
        assert atta(s, tok)["stock_base"] == mid["stock_base"]
        assert s.scalar("SELECT count(*) FROM orders") == orders
        assert s.scalar("SELECT count(*) FROM outbox") == rows
        m = s.metrics()
        assert m['munim_sync_ops_total{status="duplicate"}'] == 4, m
        assert m['munim_sync_ops_total{status="applied"}'] == 2, m
        assert m['munim_companion_requests_total{route="sync",code="200"}'] == 2, m


def test_refusals():
    s = Stack()
    tok = token_of(s)
    with s:
        st, ans = api(s, "GET", "/v1/stock")
        assert st == 401 and error_code(ans) == "missing_token", ans
        st, ans = api(s, "GET", "/v1/orders", token="0" * 64)
        assert st == 401 and error_code(ans) == "invalid_token", ans
        st, ans = api(s, "POST", "/v1/orders", raw=b"{\"customer\":", token=tok)
        assert st == 400 and error_code(ans) == "invalid_json", ans
        st, ans = api(s, "POST", "/v1/sync", raw=b"not json", token=tok)
        assert st == 400 and error_code(ans) == "invalid_json", ans
        ops = [{"id": "x%d" % i, "op": "stock.adjust", "args": {"item": "atta", "add": "1"}}
               for i in range(501)]
        st, ans = api(s, "POST", "/v1/sync", {"device": "d", "ops": ops}, token=tok)
        assert st == 413 and error_code(ans) == "batch_too_long", ans
        assert "at most 500" in ans["error"]["message"], ans
        assert s.scalar("SELECT count(*) FROM companion_ops") == 0
        st, ans = api(s, "POST", "/v1/orders",
                      {"customer": "+" + CUST, "lines": [{"item": "atta", "qty": "9999999 kg"}]},
                      token=tok)
        assert st in (400, 409) and error_code(ans) in ("short_stock", "invalid_quantity"), ans
        assert s.scalar("SELECT count(*) FROM orders") == 0
        st, ans = api(s, "GET", "/v1/invoices/12345", token=tok)
        assert st == 404 and error_code(ans) == "order_not_found", ans


def test_works_through_whatsapp_outage():
    s = Stack(serve_args=["--breaker-open-ms", "2000", "--retry-base-ms", "100"])
    tok = token_of(s)
    with s:
        s.mock_faults(outage=True, for_ms=8000)
        t0 = time.time()
        # WhatsApp is down: the API answers all the same
        st, o = api(s, "POST", "/v1/orders",
                    {"customer": "+" + CUST, "lines": [{"item": "rice", "qty": "5 kg"}]},
                    token=tok)
        assert st == 201 and o["status"] == "confirmed", o
        st, ans = api(s, "POST", "/v1/sync", {"device": "d", "ops": [
            {"id": "o1", "op": "order.create",
             "args": {"customer": "+919800000078", "lines": [{"item": "dal", "qty": 2}]}}]},
            token=tok)
        assert st == 200 and ans["results"][0]["status"] == "applied", ans
        st, inv = api(s, "GET", "/v1/invoices/%d" % o["id"], token=tok)
        assert st == 200 and inv["total_paise"] > 0, inv
        assert time.time() - t0 < 5, "the API waited for WhatsApp"
        assert s.mock_messages(to=CUST) == []
        # the confirmation waits in the outbox (a P1, not yet accepted) ...
        assert s.scalar("SELECT count(*) FROM outbox WHERE to_id = ? AND priority = 1"
                        " AND state IN (0, 1)", CUST) == 1
        # ... and goes out once the outage ends
        msg = wait_until(lambda: s.mock_messages(to=CUST) or None, timeout=40, interval=0.2,
                         what="the confirmation after the outage")[0]
        assert time.time() - t0 >= 7, "sent during the outage?"
        assert inv["number"] in body_text(msg), body_text(msg)
        wait_until(lambda: s.mock_messages(to="919800000078") or None, timeout=20,
                   what="the synced order's confirmation")
        assert len(s.mock_messages(to=CUST)) == 1
