"""WhatsApp marketing end to end: the owner's `broadcast`, customers'
`stop`/`start`, the owner's `paid`, and the merchant API POST /v1/campaigns,
through a real `munim serve` and `munim mock-bsp`."""

import json
import time

from harness import (OWNER, Stack, body_json, body_text, http, run, text_payload, wait_until)

A = "919800000011"
B = "919800000012"
C = "919800000013"
OLD = "919800000014"  # wrote two days ago: outside the 24-hour window
GONE = "919800000015"  # wrote 40 days ago: not in a broadcast at all


def add_old_customers(s):
    """Customers who wrote long ago, written before serve starts."""
    now = int(time.time() * 1000)
    s.executemany("INSERT INTO customers (tenant_id, wa_id, name, last_inbound_at) "
                  "VALUES (1, ?, 'Old', ?)",
                  [(OLD, now - 2 * 86400 * 1000), (GONE, now - 40 * 86400 * 1000)])


def sent_to(s, wa_id, kind=None):
    """Messages the mock accepted for wa_id (of type kind), oldest first."""
    msgs = s.mock_messages(to=wa_id)
    return [m for m in msgs if kind is None or body_json(m).get("type") == kind]


def p3_gauges(s):
    """serve's gauges of P3 outbox rows, by state."""
    pre = 'munim_outbox_messages{priority="P3",state="'
    return {k[len(pre):-2]: v for k, v in s.metrics().items() if k.startswith(pre)}


def marketing_to(s, wa_id):
    """What the mock got for wa_id that answers nothing (no context)."""
    return [m for m in s.mock_messages(to=wa_id) if "context" not in body_json(m)]


def test_owner_broadcast_stop_start():
    s = Stack()
    add_old_customers(s)
    with s:
        for who in (A, B, C):
            s.say("hi", frm=who)
        r = s.say("STOP", frm=C)[0]
        assert body_text(r) == ("You will not receive offers from Sharma Kirana Store any more. "
                                "Write START to receive them again."), body_text(r)

        text = 'Diwali sale: 20% off on "all" sweets!\nTill Sunday.'
        r = s.say("broadcast " + text, frm=OWNER)[0]
        assert body_text(r) == (
            "Broadcast queued to 2 customers: 2 as a message; 1 outside the 24-hour window "
            "skipped because no template is set (munim tenant set --template). 1 customer "
            "who opted out was left out."), body_text(r)
        for who in (A, B):
            m = wait_until(lambda: sent_to(s, who, "text") and marketing_to(s, who),
                           what="the broadcast to %s" % who)[0]
            b = body_json(m)
            assert b["text"]["body"] == text, b
            assert b["to"] == "+" + who, b
        # the opted-out, the old, the owner: nothing beyond their own replies
        assert marketing_to(s, C) == [], marketing_to(s, C)
        assert sent_to(s, OLD) == [] and sent_to(s, GONE) == []
        assert marketing_to(s, OWNER) == []
        rows = s.sql("SELECT to_id, priority, state FROM outbox WHERE reply_to = ''")
        assert sorted(r[0] for r in rows) == [A, B] and all(r[1] == 3 for r in rows), rows
        audit = s.sql("SELECT actor, detail FROM audit_log WHERE action = 'broadcast'")
        assert len(audit) == 1 and audit[0][0] == OWNER and "queued 2" in audit[0][1], audit

        # a customer (not the owner) cannot broadcast
        r = s.say("broadcast free sweets for everyone", frm=A)[0]
        assert "only for the shop owner" in body_text(r), body_text(r)

        # start again: the next broadcast reaches C too
        r = s.say("start", frm=C)[0]
        assert "again" in body_text(r), body_text(r)
        s.say("broadcast Fresh jalebi at 5 pm", frm=OWNER)
        wait_until(lambda: [m for m in marketing_to(s, C)
                            if body_json(m)["text"]["body"] == "Fresh jalebi at 5 pm"],
                   what="the second broadcast to the customer who started again")


def test_stop_cancels_waiting_marketing():
    """A stop while the offers still wait (serve runs without its sender):
    the customer's waiting offers fail as opted out, the gauges move with
    them, and once the sender runs only the other customer's offer goes."""
    s = Stack(serve_args=["--roles", "ingest,worker"])
    with s:
        for who in (A, B):
            s.post(text_payload("hi", frm=who)[1])
        s.post(text_payload("broadcast Offer one", frm=OWNER)[1])
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3") == 2,
                   what="the broadcast queued")
        s.post(text_payload("stop", frm=B)[1])
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3 AND "
                                    "to_id = ? AND state = 6 AND last_error_code = 131050 "
                                    "AND last_error = 'recipient opted out'", B) == 1,
                   what="the waiting offer failed as opted out")
        assert s.scalar("SELECT state FROM outbox WHERE priority = 3 AND to_id = ?", A) == 0
        assert s.scalar("SELECT opted_out FROM customers WHERE wa_id = ?", B) == 1
        m = p3_gauges(s)
        assert m["pending"] == 1 and m["failed"] == 1, m
        s.serve.stop()
        s.serve_args = []
        s.start_serve()
        wait_until(lambda: marketing_to(s, A), what="the offer to the customer still in")
        wait_until(lambda: [x for x in sent_to(s, B) if "not receive offers" in body_text(x)],
                   what="the stop confirmation")
        time.sleep(0.3)
        assert marketing_to(s, B) == [], marketing_to(s, B)
        # the restarted process counts from the store's own tally
        assert p3_gauges(s)["failed"] == 1, p3_gauges(s)


def test_template_outside_the_window_and_paid():
    s = Stack()
    add_old_customers(s)
    run("tenant", "set", "--db", s.db, "--tenant", "1", "--template", "diwali_offer",
        "--template-lang", "hi")
    with s:
        s.say("hi", frm=A)
        r = s.say("broadcast Sweets 10%\toff\n\ntoday", frm=OWNER)[0]
        assert body_text(r) == ("Broadcast queued to 2 customers: 1 as a message, 1 by "
                                "template \"diwali_offer\"."), body_text(r)
        m = wait_until(lambda: sent_to(s, OLD, "template"), what="the template to OLD")[0]
        b = body_json(m)
        assert b["template"]["name"] == "diwali_offer", b
        assert b["template"]["language"] == {"code": "hi"}, b
        comp = b["template"]["components"][0]
        assert comp["type"] == "body", b
        assert comp["parameters"] == [{"type": "text", "text": "Sweets 10% off today"}], b
        assert b["to"] == "+" + OLD and b["recipient_type"] == "individual", b
        wait_until(lambda: marketing_to(s, A), what="the text to A")
        assert sent_to(s, GONE) == []

        # paid: the customer hears of it at P0, once
        m = s.say("order 2 kg rice", frm=A)[0]
        confirm = body_json(m)["interactive"]["action"]["buttons"][0]["reply"]["id"]
        s.tap(confirm, frm=A)
        order = int(confirm.split(":")[1])
        r = s.say("paid %d" % order, frm=OWNER)[0]
        assert body_text(r).startswith("Order #%d marked paid: ₹126.00" % order), body_text(r)
        want = "Payment of ₹126.00 received for order #%d. Thank you!" % order
        wait_until(lambda: [x for x in marketing_to(s, A) if body_text(x) == want],
                   what="the payment notice")
        assert s.scalar("SELECT priority FROM outbox WHERE body LIKE '%Payment of%'") == 0
        r = s.say("paid %d" % order, frm=OWNER)[0]
        assert "already marked paid" in body_text(r), body_text(r)
        r = s.say("paid 999", frm=OWNER)[0]
        assert "no order #999" in body_text(r), body_text(r)
        assert s.scalar("SELECT COUNT(*) FROM outbox WHERE body LIKE '%Payment of%'") == 1


def campaign(s, body, token=None, method="POST", raw=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    st, b, h = http(method, s.url + "/v1/campaigns", data, headers)
    return st, (json.loads(b) if b else None), h


def error_code(answer):
    return answer["error"]["code"] if isinstance(answer.get("error"), dict) else answer


def test_campaigns_endpoint():
    s = Stack()
    add_old_customers(s)
    token = run("tenant", "token", "--db", s.db, "--tenant", "1").stdout.strip()
    assert len(token) == 64, token
    stored = s.scalar("SELECT api_token_hash FROM tenants WHERE id = 1")
    assert stored and stored != token and len(stored) == 64
    with s:
        s.say("hi", frm=A)
        st, ans, _ = campaign(s, {"text": "Weekend offer: buy 2 get 1"}, token)
        assert st == 202, (st, ans)
        assert ans["queued"] == 1 and ans["as_text"] == 1, ans
        assert ans["by_template"] == 0 and ans["skipped_no_template"] == 1, ans
        assert ans["skipped_opted_out"] == 0, ans
        m = wait_until(lambda: marketing_to(s, A), what="the campaign to A")[0]
        assert body_text(m) == "Weekend offer: buy 2 get 1"
        assert s.scalar("SELECT actor FROM audit_log WHERE action = 'broadcast'") == "api"

        # every refusal names its error
        cases = [
            (None, {"text": "x"}, None, 401, "missing_token"),
            ("0" * 64, {"text": "x"}, None, 401, "invalid_token"),
            (stored, {"text": "x"}, None, 401, "invalid_token"),  # the hash is no token
            (token, None, b"not json", 400, "invalid_json"),
            (token, None, b"[1,2]", 400, "invalid_json"),
            (token, {}, None, 400, "missing_text"),
            (token, {"text": 42}, None, 400, "invalid_text"),
            (token, {"text": "  \n "}, None, 400, "empty_text"),
            (token, {"text": "x" * 1025}, None, 400, "text_too_long"),
        ]
        for tok, body, raw, want_st, want_code in cases:
            st, ans, h = campaign(s, body, tok, raw=raw)
            assert (st, error_code(ans)) == (want_st, want_code), (tok, body, raw, st, ans)
            assert isinstance(ans["error"]["message"], str) and ans["error"]["message"]
            if st == 401:
                assert h.get("WWW-Authenticate") == "Bearer", h
        st, _, h = campaign(s, None, token, method="GET")
        assert st == 405, st
        assert "POST" in h.get("Allow", ""), h
        assert s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3") == 1

        # a new token replaces the old one
        new = run("tenant", "token", "--db", s.db, "--tenant", "1").stdout.strip()
        st, ans, _ = campaign(s, {"text": "x"}, token)
        assert (st, error_code(ans)) == (401, "invalid_token"), (st, ans)
        st, ans, _ = campaign(s, {"text": "Second offer"}, new)
        assert st == 202 and ans["queued"] == 1, (st, ans)
