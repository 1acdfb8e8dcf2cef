"""The fast path on a shared store (PostgreSQL): a serve with every role
runs a webhook's messages in the webhook's own commit only while it is the
store's one ingest, since its backlog sees only its own inbox writes.

A second process with the ingest role (`serve --roles ingest`) waits before
taking webhooks until the first has seen it; the first then leaves every
message to its workers (munim_ingest_fast_path 0), so one customer's
messages, posted to either process in turn, are processed in the order
they came: their replies are queued (outbox ids) in that order. (The sends
themselves may overlap, so the provider may log them in another order.)
Once the second stops, the first runs messages in its commits again.
"""

import json
import time

from harness import PG, Skip, Stack, free_port, http, sign, text_payload, wait_until


def fast_path(port):
    st, body, _ = http("GET", "http://127.0.0.1:%d/metrics" % port, timeout=2)
    assert st == 200, st
    for line in body.decode().splitlines():
        if line.startswith("munim_ingest_fast_path "):
            return int(float(line.split()[1]))
    return None


def post_to(port, payload):
    body = json.dumps(payload).encode()
    st, b, _ = http("POST", "http://127.0.0.1:%d/webhooks/whatsapp" % port, body,
                    {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})
    assert st == 200, (st, b)


def test_second_ingest_turns_the_fast_path_off_and_order_holds():
    if not PG:
        raise Skip("PostgreSQL only: a SQLite store is served by one process")
    with Stack(tenants=1) as s:
        assert fast_path(s.port) == 1
        inline = s.metrics()["munim_inline_processed_total"]
        port = free_port()
        t0 = time.monotonic()
        second = s.start_serve(port=port, extra=["--roles", "ingest"], log="ingest2.log")
        waited = time.monotonic() - t0
        # it waited a beat (2 s) and more before answering /readyz
        assert waited >= 2.0, waited
        assert fast_path(s.port) == 0
        print("second ingest ready after %.1f s; the first's fast path off" % waited)

        wamids = []
        for i in range(6):
            wamid, payload = text_payload("price of rice %d" % i)
            post_to(port if i % 2 == 0 else s.port, payload)
            wamids.append(wamid)
        for w in wamids:
            s.replies(w, timeout=20)
        queued = [r[0] for r in s.sql("SELECT reply_to FROM outbox ORDER BY id")
                  if r[0] in wamids]
        assert queued == wamids, queued
        assert s.metrics()["munim_inline_processed_total"] == inline

        assert second.stop() == 0
        wait_until(lambda: fast_path(s.port) == 1, timeout=10, what="the fast path back on")
        wamid, payload = text_payload("price of salt")
        post_to(s.port, payload)
        s.replies(wamid)
        assert s.metrics()["munim_inline_processed_total"] == inline + 1
