"""Crash tests: 2,000 signed messages streamed while `serve` is killed with
SIGKILL at random moments and restarted; then open-loop load at a steady
rate (CRASH_RATE, 800/s) with two kills.

Like a BSP, the senders retry every webhook until it is answered 200, and a
customer's next message goes only after the previous one was acknowledged.
Afterwards every acknowledged message has been processed exactly once: one
draft order per "order" message, one invoice per "confirm", gapless invoice
numbers, stock moved exactly once per confirmation and equal to the ledger,
and every message has its reply. A reply may reach the provider twice only
when a kill fell between the provider accepting it and munim recording
that; those duplicates are counted and must not exceed the number of kills.
"""

import collections
import json
import os
import random
import re
import subprocess
import threading
import time

from harness import MUNIM, SECRET, STORE, Stack, http, sign, text_payload, wait_until

CUSTOMERS = 40
ROUNDS = 25  # each round: "order 1 kg rice", then "confirm" → 2 messages
TENANTS = 4
EXTRA = os.environ.get("CRASH_EXTRA", "").split()
SHOPS = ["1000000000000%02d" % (i + 1) for i in range(TENANTS)]
# messages/s of the open-loop test; the PostgreSQL store keeps up with less
# on this machine today (docs/postgresql.md, "Speed")
LOAD_RATE = int(os.environ.get("CRASH_RATE", "800" if STORE == "sqlite" else "100"))
# seconds serve stays up between kills: a PostgreSQL-backed serve takes
# about a second to be ready (its connections, the recovery), so it is
# given time to take traffic between kills
KILL_GAP = (0.05, 0.4) if STORE == "sqlite" else (1.0, 3.0)
# a kill comes no later than when the answered messages pass the next of
# these shares of them, so that the first kills fall under load however
# fast the store answers
KILL_AT = (0.15, 0.35, 0.55, 0.75)


def post_until_200(s, payload, stop):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    while not stop.is_set():
        try:
            st, _, _ = http("POST", s.url + "/webhooks/whatsapp", body, headers, timeout=5)
            if st == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def assert_order_effects(s, tenants, orders, confirms, rice_before):
    """The ERP's effects of "order 1 kg rice" and "confirm" messages, each
    exactly once: as many orders as order messages, as many confirmed
    orders and invoices as confirmations, gapless invoice numbers per
    tenant, a kilo of rice out of stock per invoice, and stock equal to
    the ledger."""
    n_orders = s.scalar("SELECT COUNT(*) FROM orders")
    n_conf = s.scalar("SELECT COUNT(*) FROM orders WHERE status=1")
    n_inv = s.scalar("SELECT COUNT(*) FROM invoices")
    assert n_orders == orders, (n_orders, orders)
    assert n_conf == confirms and n_inv == confirms, (n_conf, n_inv, confirms)
    for t in range(1, tenants + 1):
        seqs = [r[0] for r in s.sql("SELECT seq FROM invoices WHERE tenant_id=? "
                                    "ORDER BY seq", t)]
        assert seqs == list(range(1, len(seqs) + 1)), "gap in tenant %d: %r" % (t, seqs)
        rice = s.scalar("SELECT stock FROM products WHERE tenant_id=? AND sku='RICE'", t)
        assert rice == rice_before[t] - len(seqs) * 1000, (t, rice, rice_before[t])
    bad = s.sql("SELECT p.id, p.stock, COALESCE(SUM(l.delta),0) AS led FROM products p "
                "LEFT JOIN stock_ledger l ON l.product_id=p.id GROUP BY p.id "
                "HAVING p.stock <> COALESCE(SUM(l.delta),0)")
    assert bad == [], bad


def assert_merged_replies_sent(s):
    """Every reply merged into another went out inside a sent one (a
    keeper whose send a kill cut short can itself be merged later: the
    chain is followed)."""
    unsent = s.sql("WITH RECURSIVE up(id, k) AS ("
                   " SELECT id, merged_into FROM outbox WHERE state = 8"
                   " UNION SELECT up.id, o.merged_into FROM up JOIN outbox o ON o.id = up.k"
                   " WHERE o.state = 8)"
                   " SELECT up.id, o.id, o.state FROM up JOIN outbox o ON o.id = up.k"
                   " WHERE o.state <> 8 AND o.state NOT IN (2, 3, 4, 5)")
    assert unsent == [], unsent


def test_kill9_exactly_once():
    s = Stack(tenants=TENANTS, serve_args=["--retry-base-ms", "50", "--retry-cap-ms", "500"] + EXTRA)
    s.start()
    stop = threading.Event()
    acked = []
    lock = threading.Lock()
    kills = [0]
    rice_before = {t + 1: s.scalar("SELECT stock FROM products WHERE tenant_id=? AND sku='RICE'",
                                   t + 1) for t in range(TENANTS)}

    def customer(i):
        shop = SHOPS[i % TENANTS]
        frm = "9198%08d" % i
        for _ in range(ROUNDS):
            for text in ("order 1 kg rice", "confirm"):
                wamid, payload = text_payload(text, to=shop, frm=frm)
                if not post_until_200(s, payload, stop):
                    return
                with lock:
                    acked.append(wamid)

    def killer():
        rnd = random.Random(7)
        total = CUSTOMERS * ROUNDS * 2
        while not stop.is_set():
            until = time.time() + rnd.uniform(*KILL_GAP)
            share = KILL_AT[kills[0]] if kills[0] < len(KILL_AT) else 2
            while not stop.is_set() and time.time() < until and len(acked) < share * total:
                time.sleep(0.01)
            if stop.is_set():
                break
            s.serve.kill9()
            kills[0] += 1
            s.start_serve(wait_ready=True)

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(CUSTOMERS)]
    k = threading.Thread(target=killer)
    try:
        for t in threads:
            t.start()
        k.start()
        deadline = time.time() + 240
        for t in threads:
            t.join(max(1, deadline - time.time()))
        stop.set()
        k.join(30)
        assert len(acked) == CUSTOMERS * ROUNDS * 2, len(acked)
        assert kills[0] >= 3, "only %d kills happened" % kills[0]

        # every acknowledged message processed, every reply sent
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM inbox WHERE state=0") == 0,
                   timeout=60, what="inbox drained")
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE state IN (0,1)") == 0,
                   timeout=60, what="outbox drained")
        n_inbox = s.scalar("SELECT COUNT(*) FROM inbox WHERE kind=1 AND state=1")
        assert n_inbox == len(acked), (n_inbox, len(acked))
        assert s.scalar("SELECT COUNT(*) FROM inbox WHERE kind=1 AND state<>1") == 0

        # exactly-once effects
        assert_order_effects(s, TENANTS, CUSTOMERS * ROUNDS, CUSTOMERS * ROUNDS, rice_before)

        # every message has its reply; duplicates only from kills mid-send
        msgs = s.mock_messages()
        per = collections.Counter(m["context"] for m in msgs)
        missing = [w for w in acked if per[w] == 0]
        assert not missing, "%d messages without a reply, e.g. %s" % (len(missing), missing[:3])
        acked_set = set(acked)
        dups = sum(n - 1 for w, n in per.items() if w in acked_set and n > 1)
        log = open(os.path.join(s.dir, "serve.log")).read()
        journaled = sum(int(n) for n in re.findall(r"(\d+) sends the provider accepted", log))
        in_doubt = sum(int(n) for n in re.findall(r"(\d+) interrupted sends returned", log))
        print("    crash test: %d messages, %d kills, %d duplicate replies; after the kills "
              "%d sends were recovered from the send journal and %d were in doubt"
              % (len(acked), kills[0], dups, journaled, in_doubt))
        assert dups <= kills[0], "%d duplicate replies for %d kills" % (dups, kills[0])
    finally:
        stop.set()
        s.stop()


def test_kill9_under_open_loop_load():
    """The same promise at a steady rate: munim loadgen sends open loop (no
    retries: a webhook refused while serve is down is simply not
    acknowledged) while serve is killed twice and restarted. Every webhook
    answered 200 gets its reply (loadgen's "lost" counts those that do not),
    a reply goes twice only for a kill mid-send, and the inbox and outbox
    drain."""
    s = Stack(tenants=TENANTS,
              serve_args=["--retry-base-ms", "50", "--retry-cap-ms", "500",
                          "--send-recover-grace-ms", "1000"] + EXTRA)
    s.start()
    report = {}

    def load():
        r = subprocess.run([MUNIM, "loadgen", "--url", s.url, "--bsp", s.bsp,
                            "--app-secret", SECRET, "--tenants", str(TENANTS),
                            "--rate", str(LOAD_RATE), "--duration", "6",
                            "--timeout-ms", "3000", "--drain-timeout", "20"],
                           capture_output=True, text=True, timeout=120)
        report.update(json.loads(r.stdout.strip().splitlines()[-1]))

    kills = 0
    t = threading.Thread(target=load)
    try:
        t.start()
        for at in (1.5, 2.0):
            time.sleep(at)
            s.serve.kill9()
            kills += 1
            s.start_serve(wait_ready=True)
        t.join(150)
        assert report, "loadgen gave no report"
        print("    under load: %d sent at %d/s, %d answered 200, %d kills, %d lost, "
              "%d duplicate replies" % (report["sent"], LOAD_RATE, report["ok"], kills,
                                        report["lost"], report["duplicates"]))
        assert report["ok"] > report["sent"] // 4, report  # most were acknowledged
        # the backlog after a restart can raise the spike level to 2, where a
        # customer's waiting replies go out merged in one message quoting the
        # first (aggregation): the others' answers arrive inside it, so the
        # load generator, matching by quote, sees those as lost
        merged = s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 8")
        print("    %d replies went out merged into another" % merged)
        assert report["lost"] <= merged, (report, merged)
        assert report["duplicates"] <= kills, report
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM inbox WHERE state=0") == 0,
                   timeout=60, what="inbox drained")
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE state IN (0,1)") == 0,
                   timeout=60, what="outbox drained")
        assert_merged_replies_sent(s)
        bad = s.sql("SELECT p.id, p.stock, COALESCE(SUM(l.delta),0) AS led FROM products p "
                    "LEFT JOIN stock_ledger l ON l.product_id=p.id GROUP BY p.id "
                    "HAVING p.stock <> COALESCE(SUM(l.delta),0)")
        assert bad == [], bad
    finally:
        s.stop()
