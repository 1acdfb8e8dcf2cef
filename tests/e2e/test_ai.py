"""The AI endpoint, its breaker, the degraded template reply and the OCR
queue, end to end: serve with --ai-url pointing at the mock's
/v1/chat/completions, driven by signed webhooks."""

import json
import time

from harness import (CUSTOMER, SHOP, Stack, body_json, body_text, buttons, envelope, http,
                     new_wamid, run, text_payload, wait_until)

TEMPLATE = ("Due to high demand, smart responses are temporarily unavailable. "
            "Please use the buttons below:")
MENU_TITLES = ["Stock Check", "New Order", "Invoice"]


def ai_stack(*extra, ai=True):
    s = Stack()
    if ai:
        s.serve_args += ["--ai-url", s.bsp + "/v1/chat/completions", "--ai-token", "e2e-ai",
                         "--ai-poll-ms", "20", *extra]
    else:
        s.serve_args += list(extra)
    return s


def ai_faults(s, **faults):
    return s.mock_faults("/_mock/ai/faults", **faults)


def ai_calls(s):
    st, b, _ = http("GET", s.bsp + "/_mock/ai/stats")
    assert st == 200, st
    return json.loads(b)


def job(s, wamid):
    rows = s.sql("SELECT kind, state, outcome, rewritten FROM ai_jobs WHERE ext_id=?", wamid)
    return rows[0] if rows else None


def metric(s, name):
    return s.metrics().get(name, 0)


def test_hinglish_order_through_the_ai():
    with ai_stack() as s:
        before = ai_calls(s)["answered"]
        m = s.say("bhaiya do kilo aata bhijwa dijiye", timeout=15)[0]
        t = body_text(m)
        assert "Atta" in t and "2 kg" in t, t
        assert [x[1] for x in buttons(m)] == ["Confirm", "Cancel"], buttons(m)
        assert body_json(m)["context"]["message_id"] == m["context"]
        assert ai_calls(s)["answered"] == before + 1
        wamid = m["context"]
        assert job(s, wamid) == (0, 2, "rewritten", "order 2 kg atta"), job(s, wamid)
        # the draft it made is the customer's: Confirm works as for a typed order
        confirm = buttons(m)[0][0]
        t2 = body_text(s.tap(confirm)[0])
        assert "confirmed" in t2 and "INV/" in t2, t2
        # the bill, asked in Hinglish, is the invoice command
        t3 = body_text(s.say("mera bill bhejo", timeout=15)[0])
        assert "INV/" in t3, t3
        # a text the mock cannot rewrite either: the menu, nothing else
        m4 = s.say("kuch bhi", timeout=15)[0]
        assert "didn't understand" in body_text(m4), body_text(m4)
        assert [x[1] for x in buttons(m4)] == MENU_TITLES
        assert job(s, m4["context"])[2].startswith("unanswered"), job(s, m4["context"])
        # text the local parser reads never reaches the endpoint
        calls = ai_calls(s)["calls"]
        s.say("stock rice")
        assert ai_calls(s)["calls"] == calls
        assert s.scalar("SELECT count(*) FROM ai_jobs WHERE state < 2") == 0
        assert metric(s, 'munim_ai_requests_total{result="ok"}') == 3


def test_outage_falls_back_to_menu_and_opens_breaker():
    with ai_stack("--ai-breaker-failures", "5", "--ai-breaker-open-ms", "60000") as s:
        ai_faults(s, outage=True)
        sent = []
        for i in range(5):
            m = s.say("bhaiya do kilo aata bhijwa dijiye %d" % i, timeout=15)[0]
            sent.append(m["context"])
            # the menu; the fifth failure opens the breaker before its run,
            # which then answers with the template
            if i < 4:
                assert "didn't understand" in body_text(m), body_text(m)
            else:
                assert body_text(m) == TEMPLATE, body_text(m)
            assert [x[1] for x in buttons(m)] == MENU_TITLES
            assert job(s, m["context"])[2].startswith("error: HTTP status 503"), \
                job(s, m["context"])
        wait_until(lambda: metric(s, "munim_ai_breaker_state") == 1, what="breaker open")
        assert metric(s, 'munim_ai_requests_total{result="error"}') == 5
        # breaker open: no job, no call, the seed's template with the menu's buttons
        calls = ai_calls(s)["calls"]
        wamid, payload = text_payload("bhaiya do kilo aata bhijwa dijiye again")
        assert s.post(payload)[0] == 200
        m = s.replies(wamid)[0]
        assert body_text(m) == TEMPLATE, body_text(m)
        assert buttons(m) == [("menu_stock", "Stock Check"), ("menu_order", "New Order"),
                              ("menu_invoice", "Invoice")], buttons(m)
        assert job(s, wamid) is None
        assert ai_calls(s)["calls"] == calls
        # the template's buttons work as the menu's do
        t = body_text(s.tap("menu_order")[0])
        assert "To order" in t, t
        # nothing lost: every message answered exactly once, every job ended
        for w in sent + [wamid]:
            assert len(s.mock_messages(context=w)) == 1, w
        assert s.scalar("SELECT count(*) FROM ai_jobs WHERE state < 2") == 0


def test_timeout_and_malformed_answer_fall_back():
    with ai_stack("--ai-timeout-ms", "300") as s:
        ai_faults(s, latency_ms=1500)
        m = s.say("mera bill bhejo", timeout=15)[0]
        assert "didn't understand" in body_text(m), body_text(m)
        assert job(s, m["context"])[2].startswith("timeout"), job(s, m["context"])
        ai_faults(s, latency_ms=0, malformed=True)
        m = s.say("mera bill bhejo", timeout=15)[0]
        assert "didn't understand" in body_text(m), body_text(m)
        assert job(s, m["context"])[2] == "error: the answer is not a JSON object", \
            job(s, m["context"])
        assert metric(s, 'munim_ai_requests_total{result="timeout"}') == 1
        assert metric(s, 'munim_ai_requests_total{result="error"}') == 1
        assert metric(s, "munim_ai_latency_seconds_count") == 2


def test_customer_order_kept_behind_a_slow_ai_call():
    with ai_stack() as s:
        ai_faults(s, latency_ms=800)
        w1, p1 = text_payload("bhaiya do kilo aata bhijwa dijiye")
        w2, p2 = text_payload("stock rice")
        assert s.post(p1)[0] == 200
        assert s.post(p2)[0] == 200
        r1 = s.replies(w1, timeout=15)[0]
        r2 = s.replies(w2, timeout=15)[0]
        # the second reply was queued only after the first (both may then be
        # in flight at once, so the mock may see them either way round)
        q1 = s.scalar("SELECT MIN(id) FROM outbox WHERE reply_to = ?", w1)
        q2 = s.scalar("SELECT MIN(id) FROM outbox WHERE reply_to = ?", w2)
        assert q1 < q2, (q1, q2)
        assert "Atta" in body_text(r1) and "Rice" in body_text(r2)
        assert job(s, w2)[:3] == (1, 2, "ran as typed (behind an earlier job)"), job(s, w2)


MEDIA_ID = "1234567890987654"


def image_payload(caption="meri list", wamid=None, kind="image", mime="image/jpeg"):
    wamid = wamid or new_wamid()
    msg = {"from": CUSTOMER, "id": wamid, "timestamp": str(int(time.time())),
           "type": kind,
           kind: {"id": MEDIA_ID, "mime_type": mime, "sha256": "x", "caption": caption}}
    return wamid, envelope(SHOP, [msg], contacts=[{"profile": {"name": "Asha"},
                                                   "wa_id": CUSTOMER}])


def test_image_queued_and_acknowledged():
    with ai_stack(ai=False) as s:
        wamid, payload = image_payload()
        assert s.post(payload)[0] == 200
        m = s.replies(wamid)[0]
        assert "received your photo" in body_text(m), body_text(m)
        rows = s.sql("SELECT type, caption, state, media_id, mime_type FROM ocr_queue"
                     " WHERE ext_id=?", wamid)
        assert rows == [("image", "meri list", 0, MEDIA_ID, "image/jpeg")], rows
        rows = s.sql("SELECT media_id, media_mime FROM inbox WHERE ext_id=?", wamid)
        assert rows == [(MEDIA_ID, "image/jpeg")], rows
        wait_until(lambda: metric(s, "munim_ocr_queue_depth") == 1, what="OCR depth 1")
        # the same webhook again (a retry): one queue row, one reply
        assert s.post(payload)[0] == 200
        time.sleep(0.5)
        assert s.scalar("SELECT count(*) FROM ocr_queue") == 1
        assert len(s.mock_messages(context=wamid)) == 1
        # the operator's side: list, mark read, and the gauge follows
        out = run("ocr", "--db", s.db).stdout
        assert wamid in out and "caption: meri list" in out and "1 item(s) waiting" in out, out
        assert f"message {wamid}  media {MEDIA_ID} image/jpeg\n" in out, out
        item = out.split()[0]
        run("ocr", "done", item, "ordered", "for", "them", "--db", s.db)
        r = run("ocr", "done", item, "--db", s.db, check=False)
        assert r.returncode == 1 and "done already" in r.stderr, (r.returncode, r.stderr)
        r = run("ocr", "done", "abc", "--db", s.db, check=False)
        assert r.returncode == 1 and "needs the item's id" in r.stderr, r.stderr
        assert "read: ordered for them" in run("ocr", "read", "--db", s.db).stdout
        wait_until(lambda: metric(s, "munim_ocr_queue_depth") == 0, what="OCR depth 0")


def test_document_through_the_worker_keeps_its_media_id():
    """With --inline-max 0 the document waits in the inbox and a worker
    queues it: the media id and mime type come back from the inbox row."""
    with ai_stack("--inline-max", "0", ai=False) as s:
        wamid, payload = image_payload("bill", kind="document", mime="application/pdf")
        assert s.post(payload)[0] == 200
        m = s.replies(wamid)[0]
        assert "received your document" in body_text(m), body_text(m)
        assert s.metrics()["munim_inline_processed_total"] == 0
        rows = s.sql("SELECT type, caption, media_id, mime_type FROM ocr_queue WHERE ext_id=?",
                     wamid)
        assert rows == [("document", "bill", MEDIA_ID, "application/pdf")], rows
        out = run("ocr", "--db", s.db).stdout
        assert f"media {MEDIA_ID} application/pdf\n" in out, out


def test_job_claimed_at_a_crash_runs_after_restart():
    with ai_stack("--ai-timeout-ms", "20000") as s:
        ai_faults(s, latency_ms=5000)
        wamid, payload = text_payload("bhaiya do kilo aata bhijwa dijiye")
        assert s.post(payload)[0] == 200
        wait_until(lambda: (job(s, wamid) or (None, None))[1] == 1, what="job claimed")
        s.serve.kill9()
        assert s.mock_messages(context=wamid) == []
        ai_faults(s, latency_ms=0)
        s.start_serve()
        m = s.replies(wamid, timeout=15)[0]
        assert "Atta" in body_text(m), body_text(m)
        assert job(s, wamid) == (0, 2, "rewritten", "order 2 kg atta"), job(s, wamid)
        time.sleep(0.3)
        assert len(s.mock_messages(context=wamid)) == 1
