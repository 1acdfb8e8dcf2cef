"""Roles drill: one store, every role in processes of its own, and one
process of each role killed with SIGKILL under load.

Seven serve processes over one PostgreSQL store: an ingest, two workers,
two senders, two controllers (`serve --roles ROLE` each), the mock BSP
answering a little slowly so that sends are in flight at a kill. Customers
stream orders and confirmations (each posted again until answered 200, as
a BSP does), and in turn:
  - a worker is killed: the other takes its partitions once their leases
    run out; a new worker joins and the two share them again;
  - a sender is killed: the other takes back its sends in flight once its
    node's lease runs out; the killed one is restarted (same port, same
    send journal);
  - the leading controller is killed: the other leads; a new one stands by;
  - the ingest is killed and restarted.
Afterwards every message answered 200 has had exactly one effect (one
draft per "order", one invoice per "confirm", gapless numbers, stock equal
to its ledger) and its reply; a reply sent twice is counted and allowed
only for a send in flight at the sender's kill. Printed: the takeover
times and the replies sent twice.
"""

import collections
import signal
import threading
import time

from harness import PG, Skip, Stack, free_port, http, text_payload, wait_until
from test_crash import assert_merged_replies_sent, assert_order_effects, post_until_200

TENANTS = 4
CUSTOMERS = 8
SHOPS = ["1000000000000%02d" % (i + 1) for i in range(TENANTS)]
THINK_S = 0.1  # a customer's pause between two messages
LOAD_FIRST_S = 3.0  # load before the first kill
SEND_INFLIGHT = 16  # bounds the sends in flight at the sender's kill
MOCK_LATENCY_MS = 300  # each send answered this late: some are in flight
GRACE_MS = 2000  # --send-recover-grace-ms: a send in doubt waits this for its status
TAKEOVER_S = 15.0  # the lease (6 s) and a couple of beats, with room
SERVE_ARGS = ["--retry-base-ms", "50", "--retry-cap-ms", "500",
              "--send-recover-grace-ms", str(GRACE_MS), "--send-inflight", str(SEND_INFLIGHT)]


def metric(port, name):
    """The value of the metric name (no labels) that serve on port shows, or
    None (not shown, or serve not answering)."""
    try:
        st, body, _ = http("GET", "http://127.0.0.1:%d/metrics" % port, timeout=2)
    except OSError:
        return None
    if st != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_roles_kill9_under_load():
    if not PG:
        raise Skip("PostgreSQL only: a SQLite store is served by one process")
    s = Stack(tenants=TENANTS, serve_args=SERVE_ARGS,
              mock_args=["--fault-latency-ms", str(MOCK_LATENCY_MS)])
    procs = {}  # name -> (Proc, port)

    def start(name, role, port=None, wait=True):
        port = port or free_port()
        procs[name] = (s.start_serve(wait_ready=wait, port=port, extra=["--roles", role],
                                     log=name + ".log"), port)
        return port

    def node(name):
        return int(metric(procs[name][1], "munim_node_id"))

    def parts(name):
        return metric(procs[name][1], "munim_worker_partitions")

    stop = threading.Event()
    acked = []  # (wamid, text) of every message answered 200
    lock = threading.Lock()
    rice_before = {t + 1: s.scalar("SELECT stock FROM products WHERE tenant_id=? AND sku='RICE'",
                                   t + 1) for t in range(TENANTS)}

    def customer(i):
        shop = SHOPS[i % TENANTS]
        frm = "9197%08d" % i
        while not stop.is_set():
            for text in ("order 1 kg rice", "confirm"):
                wamid, payload = text_payload(text, to=shop, frm=frm)
                if not post_until_200(s, payload, stop):
                    return
                with lock:
                    acked.append((wamid, text))
                time.sleep(THINK_S)

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(CUSTOMERS)]
    figures = {}
    try:
        s.start_mock()
        s.start_serve(extra=["--roles", "ingest"], log="ingest.log")
        # the first of each pair ready before the second starts: it leads,
        # or holds every partition until the second joins
        for first, second, role in (("w1", "w2", "worker"), ("s1", "s2", "sender"),
                                    ("c1", "c2", "controller")):
            start(first, role)
            start(second, role, wait=False)
        for p, port in procs.values():
            wait_until(lambda: s._ready(p, port), timeout=15, what="serve ready")
        # the workers share the partitions; the first controller leads
        wait_until(lambda: parts("w1") == 32 and parts("w2") == 32, timeout=TAKEOVER_S,
                   what="the two workers holding 32 partitions each")
        assert metric(procs["c1"][1], "munim_controller_leader") == 1
        assert metric(procs["c2"][1], "munim_controller_leader") == 0
        for t in threads:
            t.start()
        time.sleep(LOAD_FIRST_S)

        # a worker: the other takes its partitions when their leases run out
        w2 = node("w2")
        procs["w1"][0].kill9()
        t0 = time.time()
        wait_until(lambda: parts("w2") == 64, timeout=TAKEOVER_S,
                   what="the surviving worker taking every partition")
        figures["worker takeover"] = time.time() - t0
        now_ms = int(time.time() * 1000)
        assert s.scalar("SELECT count(*) FROM partition_leases WHERE owner = ? AND "
                        "expires_at > ?", w2, now_ms) == 64
        start("w3", "worker")
        t0 = time.time()
        wait_until(lambda: parts("w2") == 32 and parts("w3") == 32, timeout=TAKEOVER_S,
                   what="the new worker getting its share")
        figures["worker rebalance"] = time.time() - t0

        # a sender, in the middle of sends: the other takes them back
        def sending(name):
            return s.scalar("SELECT count(*) FROM outbox WHERE state = 1 AND claimed_by = ?",
                            node(name))
        victim = wait_until(lambda: next((n for n in ("s1", "s2") if sending(n) > 0), None),
                            timeout=10, what="a sender with sends in flight")
        dead, dead_port = node(victim), procs[victim][1]
        procs[victim][0].kill9()
        t0 = time.time()
        in_flight = s.scalar("SELECT count(*) FROM outbox WHERE state = 1 AND claimed_by = ?",
                             dead)
        wait_until(lambda: s.scalar("SELECT count(*) FROM outbox WHERE state = 1 AND "
                                    "claimed_by = ?", dead) == 0,
                   timeout=TAKEOVER_S, what="the killed sender's sends taken back")
        figures["sender takeover"] = time.time() - t0
        start(victim, "sender", port=dead_port)  # its successor: same name, same journal

        # the leading controller: the other leads
        procs["c1"][0].kill9()
        t0 = time.time()
        wait_until(lambda: metric(procs["c2"][1], "munim_controller_leader") == 1,
                   timeout=TAKEOVER_S, what="the standby controller leading")
        figures["leader takeover"] = time.time() - t0
        start("c3", "controller")
        assert metric(procs["c3"][1], "munim_controller_leader") == 0

        # the ingest, restarted at once
        s.serve.kill9()
        s.start_serve(extra=["--roles", "ingest"], log="ingest.log")
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        t0 = time.time()

        # every acknowledged message processed, every reply sent
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM inbox WHERE state=0") == 0,
                   timeout=60, what="inbox drained")
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE state IN (0,1)") == 0,
                   timeout=60, what="outbox drained")
        figures["drain"] = time.time() - t0
        ids = [w for w, _ in acked]
        assert s.scalar("SELECT COUNT(*) FROM inbox WHERE kind=1 AND state=1") == len(ids)
        assert s.scalar("SELECT COUNT(*) FROM inbox WHERE kind=1 AND state<>1") == 0
        orders = sum(1 for _, t in acked if t.startswith("order"))
        confirms = len(acked) - orders
        assert_order_effects(s, TENANTS, orders, confirms, rice_before)
        # a reply merged into another under the spike the kills cause went
        # out inside it (quoting the first message): its keeper was sent
        merged = {r[0] for r in s.sql("SELECT reply_to FROM outbox WHERE state = 8")}
        assert_merged_replies_sent(s)
        per = collections.Counter(m["context"] for m in s.mock_messages())
        missing = [w for w in ids if per[w] == 0 and w not in merged]
        assert not missing, "%d messages without a reply, e.g. %s" % (len(missing), missing[:3])
        acked_set = set(ids)
        dups = sum(n - 1 for w, n in per.items() if w in acked_set and n > 1)
        print("    roles drill: %d messages; worker takeover %.1f s, rebalance %.1f s; sender "
              "takeover %.1f s (%d sends in flight at its kill); leader takeover %.1f s; "
              "%d replies sent twice, %d went out merged into another; drained %.1f s after "
              "the load" % (len(ids), figures["worker takeover"], figures["worker rebalance"],
                            figures["sender takeover"], in_flight, figures["leader takeover"],
                            dups, len(merged), figures["drain"]))
        assert dups <= in_flight, "%d replies sent twice, %d in flight at the kill" % (
            dups, in_flight)
        for p, _ in procs.values():  # all at once: each finishes its sends
            if p.alive():
                p.p.send_signal(signal.SIGTERM)
        for name, (p, _) in procs.items():
            if p.alive():
                assert p.stop() == 0, "%s did not stop cleanly" % name
    finally:
        stop.set()
        s.stop()
