"""Failover drill: munim survives the loss of its PostgreSQL primary.

The test starts its own primary and synchronous standby (scripts/pg-server)
and runs munim over both through one multi-host url with
target_session_attrs=read-write, as a deployment would: `serve --roles
ingest` and `serve --roles worker,sender` as two processes, the mock BSP
beside them. Customers stream messages (a stock question, an order, its
confirmation) at RATE, and mid-stream the primary is killed with SIGKILL
(half a second after its standby stopped receiving, so that the kill finds
commits in flight); a second later the standby is promoted, and the stream
goes on. Like Meta, a customer's webhook is posted again (same wamid) until
it is answered 200.

Afterwards, on the new primary:
  - RPO: every message answered 200 is in the inbox (must be 0 missing);
  - every one was processed exactly once: one draft order per "order", one
    invoice per "confirm" with gapless numbers, stock moved once per
    invoice and equal to its ledger, one reply row per message;
  - every reply reached the provider; a reply sent twice is counted and
    allowed only while it was in flight at the kill (at most
    --send-inflight of them).
Printed: the time without service (from the kill to the first 200 for a
webhook sent after the outage began, and to the first reply to such a
message), the RPO, the replies sent twice, the test's duration. The time
without service must stay under RTO_BOUND (the seed's recovery objective
for a database failure).
"""

import collections
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import harness
from harness import (PG, SECRET, PgStore, Skip, Stack, free_port, http, sign, text_payload,
                     wait_until)
from test_crash import assert_order_effects, post_until_200

TENANTS = 4
CUSTOMERS = 16
ROUNDS = 8
ROUND = ("stock rice", "order 1 kg rice", "confirm")
SHOPS = ["1000000000000%02d" % (i + 1) for i in range(TENANTS)]
RATE = 30.0  # messages/s, over all customers
KILL_AFTER = 120  # messages answered 200 before the primary is killed
PROMOTE_AFTER_S = 1.0  # between the kill and the promotion
# The standby stops receiving this long before the primary dies (its WAL
# receiver is stopped, then resumed after the kill): a primary cut off from
# its standby, then lost. The kill then always finds commits that the primary
# has and the standby has not, their webhooks still unanswered: they must
# not be answered 200, and once Meta's retry gets its 200 they must be there
# exactly once.
STALL_S = 0.5
RTO_BOUND = 120.0  # seconds: the recovery objective for a database failure
SEND_INFLIGHT = 32  # bounds the replies that can be in flight at the kill
PROBE_EVERY_S = 0.1
PG_SERVER = os.path.join(harness.ROOT, "scripts", "pg-server")


def pg_server(*args):
    """Runs scripts/pg-server; returns its output (a port, for start and
    standby)."""
    r = subprocess.run([PG_SERVER, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "pg-server %s failed: %s" % (" ".join(args), r.stderr)
    return r.stdout.strip()


def admin(port, sql):
    """sql as the superuser, straight to the server on port."""
    return harness._psql("postgresql://postgres@127.0.0.1:%d/postgres" % port, sql + ";\n")


class PairStore(PgStore):
    """The drill's database on its own primary and standby: reached through
    the multi-host url, by the test's psql as by munim (psql finds the
    primary the same way); neither pooled nor dropped by the harness."""

    def __init__(self, url, serve_url):
        self.fresh = True
        self.name = "munim"
        self.url = self.direct_url = url
        self.serve_url = serve_url
        self.serve_args = []


def wal_receiver(datadir):
    """The pid of the WAL receiver of the standby in datadir (a child of
    its postmaster)."""
    with open(os.path.join(datadir, "data", "postmaster.pid")) as f:
        postmaster = f.readline().strip()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == postmaster and cmd.startswith(b"postgres: walreceiver"):
            return int(pid)
    raise AssertionError("no WAL receiver under the standby's postmaster %s" % postmaster)


def drained(s, what, count_sql, rows_sql, timeout=60):
    """Waits for count_sql to reach 0; else fails naming the rows left
    (rows_sql)."""
    try:
        wait_until(lambda: s.scalar(count_sql) == 0, timeout=timeout, what=what + " drained")
    except AssertionError as e:
        raise AssertionError("%s; left: %r" % (e, s.sql(rows_sql)[:10]))


def pair_url(user, p1, p2):
    return ("postgresql://%s@127.0.0.1:%d,127.0.0.1:%d/munim?target_session_attrs=read-write"
            % (user, p1, p2))


def test_primary_killed_mid_stream():
    if not PG:
        raise Skip("PostgreSQL only: the drill kills a PostgreSQL primary and promotes its "
                   "standby")
    t_start = time.time()
    base = tempfile.mkdtemp(prefix="munim-failover-")
    os.chmod(base, 0o755)  # the servers run as the user postgres when the test is root
    pdir, sdir = os.path.join(base, "primary"), os.path.join(base, "standby")
    servers = []
    s = None
    workers = None
    stop = threading.Event()
    passed = False
    try:
        p1 = int(pg_server("start", pdir))
        servers.append(pdir)
        # a kill -9 of the server loses nothing the kernel holds; the drill
        # is about the standby's copy, not about the disk
        admin(p1, "ALTER SYSTEM SET fsync = off")
        # munim's lazy commits (workers, sender) then reach the standby only
        # when a durable commit flushes the WAL after them, not within the
        # default 200 ms: what munim lets go on a lazy commit alone, before
        # a store_sync covered it, is lost at the kill more often
        admin(p1, "ALTER SYSTEM SET wal_writer_delay = '10s'")
        admin(p1, "SELECT pg_reload_conf()")
        # from here on every commit returns only once the standby has it too
        p2 = int(pg_server("standby", pdir, sdir))
        servers.append(sdir)
        wait_until(lambda: admin(p1, "SELECT sync_state FROM pg_stat_replication").strip()
                   == "sync", timeout=30, what="the standby synchronous")
        admin(p1, "CREATE DATABASE munim")
        store = PairStore(pair_url("postgres", p1, p2), pair_url("munim_app", p1, p2))
        s = Stack(tenants=TENANTS, store=store,
                  serve_args=["--retry-base-ms", "50", "--retry-cap-ms", "500",
                              "--send-inflight", str(SEND_INFLIGHT)])
        admin(p1, "ALTER ROLE munim_app LOGIN")
        # the ports the Stack chose stayed unused through the migration and
        # the seed, long enough for an outgoing connection to take one
        s.mock_port, s.port = free_port(), free_port()
        s.bsp, s.url = "http://127.0.0.1:%d" % s.mock_port, "http://127.0.0.1:%d" % s.port

        s.start_mock()
        s.start_serve(extra=["--roles", "ingest"], log="ingest.log")
        workers = s.start_serve(port=free_port(), extra=["--roles", "worker,sender"],
                                log="worker.log")
        rice_before = {t + 1: s.scalar("SELECT stock FROM products WHERE tenant_id=? AND "
                                       "sku='RICE'", t + 1) for t in range(TENANTS)}

        acked = []
        lock = threading.Lock()
        pace = {"next": time.time()}
        times = {}

        def paced():
            with lock:
                at = max(pace["next"], time.time())
                pace["next"] = at + 1.0 / RATE
            time.sleep(max(0.0, at - time.time()))

        def customer(i):
            shop = SHOPS[i % TENANTS]
            frm = "9197%08d" % i
            for _ in range(ROUNDS):
                for text in ROUND:
                    paced()
                    wamid, payload = text_payload(text, to=shop, frm=frm)
                    if not post_until_200(s, payload, stop):
                        return
                    with lock:
                        acked.append(wamid)

        # probes: from the kill on, a fresh question every PROBE_EVERY_S,
        # each posted once. The old primary's backends may still finish a
        # commit or two in the moment after the kill, so the outage is
        # seen from the first probe refused; the first probe sent after
        # that and answered 200 ends the time without service at ingest,
        # its reply the time without service end to end.
        probes = []  # (wamid, sent at, answered at, status) of every probe

        def probe(i):
            wamid, payload = text_payload("stock rice", to=SHOPS[0], frm="91960000%04d" % i)
            body = json.dumps(payload).encode()
            sent = time.time()
            try:
                st, _, _ = http("POST", s.url + "/webhooks/whatsapp", body,
                                {"Content-Type": "application/json",
                                 "X-Hub-Signature-256": sign(body, SECRET)}, timeout=10)
            except OSError:
                st = 0
            with lock:
                probes.append((wamid, sent, time.time(), st))
                if st == 200:
                    acked.append(wamid)

        def back_after_outage():
            """The first probe answered 200 that was sent after one was
            refused, or None."""
            with lock:
                refused = [p[1] for p in probes if p[3] != 200]
                ok = [p for p in probes if p[3] == 200 and refused and p[1] > min(refused)]
            return min(ok, key=lambda p: p[2]) if ok else None

        def killer():
            wait_until(lambda: len(acked) >= KILL_AFTER or stop.is_set(), timeout=120,
                       what="%d messages answered" % KILL_AFTER)
            if stop.is_set():
                return
            receiver = wal_receiver(sdir)
            os.kill(receiver, signal.SIGSTOP)
            try:
                times["stall"] = time.time()
                time.sleep(STALL_S)
                times["kill"] = time.time()
                pg_server("kill", pdir)
            finally:
                os.kill(receiver, signal.SIGCONT)
            prober = []
            while not stop.is_set() and time.time() - times["kill"] < RTO_BOUND:
                if "promote" not in times and time.time() - times["kill"] >= PROMOTE_AFTER_S:
                    times["promote"] = time.time()
                    pg_server("promote", sdir)
                    times["promoted"] = time.time()
                if "promote" in times and back_after_outage():
                    break
                t = threading.Thread(target=probe, args=(len(prober),))
                t.start()
                prober.append(t)
                time.sleep(PROBE_EVERY_S)
            for t in prober:
                t.join(15)

        threads = [threading.Thread(target=customer, args=(i,)) for i in range(CUSTOMERS)]
        k = threading.Thread(target=killer)
        for t in threads:
            t.start()
        k.start()
        deadline = time.time() + RTO_BOUND
        for t in threads:
            t.join(max(1, deadline - time.time()))
        k.join(max(1, deadline - time.time()))
        stop.set()
        k.join(30)
        total = CUSTOMERS * ROUNDS * len(ROUND)
        ok_probes = [p for p in probes if p[3] == 200]
        assert "kill" in times, "the primary was never killed (%d answered)" % len(acked)
        assert "promote" in times, "the standby was never promoted"
        recovered = back_after_outage()
        assert recovered, "no webhook was answered 200 within %.0f s of the kill" % RTO_BOUND
        assert len(acked) == total + len(ok_probes), "%d of %d messages answered 200" % (
            len(acked), total + len(ok_probes))

        kill = times["kill"]
        print("    failover: %d messages answered 200 (%d of %d probes), primary killed after "
              "%d after its standby stalled for %.1f s; standby promoted %.1f s after the "
              "kill (took %.1f s)"
              % (len(acked), len(ok_probes), len(probes), KILL_AFTER, kill - times["stall"],
                 times["promote"] - kill, times["promoted"] - times["promote"]))

        # every answered message is on the new primary (RPO), processed,
        # and its reply sent
        assert s.scalar("SELECT pg_is_in_recovery()") == 0, "psql did not reach the new primary"
        kept = {r[0] for r in s.sql("SELECT ext_id FROM inbox WHERE kind=1")}
        lost = [w for w in acked if w not in kept]
        print("    RPO: %d messages answered 200 missing on the new primary" % len(lost))
        assert not lost, "%d messages answered 200 missing on the new primary, e.g. %s" % (
            len(lost), lost[:3])
        drained(s, "inbox", "SELECT COUNT(*) FROM inbox WHERE state=0",
                "SELECT id, ext_id, state, attempts, last_error FROM inbox WHERE state=0")
        drained(s, "outbox", "SELECT COUNT(*) FROM outbox WHERE state IN (0,1)",
                "SELECT id, state, early_state, attempts, reply_to, provider_msg_id "
                "FROM outbox WHERE state IN (0,1)")
        undone = s.scalar("SELECT COUNT(*) FROM inbox WHERE kind=1 AND state<>1")
        assert undone == 0, "%d messages not done" % undone

        # exactly-once effects
        assert_order_effects(s, TENANTS, CUSTOMERS * ROUNDS, CUSTOMERS * ROUNDS, rice_before)
        rows = collections.Counter(r[0] for r in s.sql("SELECT reply_to FROM outbox"))
        twice = {w: rows[w] for w in acked if rows[w] != 1}
        assert not twice, "messages without exactly one reply row: %r" % list(twice.items())[:5]

        # every reply reached the provider (one merged into another went
        # inside it); replies sent twice only while in flight at the kill
        msgs = s.mock_messages()
        per = collections.Counter(m["context"] for m in msgs)
        merged = {r[0] for r in s.sql("SELECT reply_to FROM outbox WHERE state = 8")}
        missing = [w for w in acked if per[w] == 0 and w not in merged]
        assert not missing, "%d messages without a reply, e.g. %s" % (len(missing), missing[:3])
        dups = sum(n - 1 for w, n in per.items() if w in set(acked) and n > 1)

        # the first reply to a probe sent after the outage began
        after = {p[0] for p in ok_probes if p[1] >= recovered[1]}
        first_reply = min(m["received_at"] / 1000.0 for m in msgs if m["context"] in after)
        print("    time without service: %.2f s to the first 200, %.2f s to its reply; "
              "RPO %d messages; %d replies sent twice (bound %d); test %.0f s"
              % (recovered[2] - kill, first_reply - kill, len(lost), dups, SEND_INFLIGHT,
                 time.time() - t_start))
        assert first_reply - kill < RTO_BOUND, first_reply - kill
        assert dups <= SEND_INFLIGHT, "%d replies sent twice" % dups
        passed = True
    finally:
        stop.set()
        try:
            # both serve processes stop cleanly after the failover (a
            # failure here is reported only when the drill itself passed)
            rc = workers.stop() if workers is not None else 0
            if s is not None:
                s.stop()
            assert rc == 0, "serve --roles worker,sender exited %s" % rc
        except AssertionError:
            if passed:
                raise
        finally:
            for d in reversed(servers):
                # the killed primary's pid file is stale: stop fails there
                if subprocess.run([PG_SERVER, "stop", d], capture_output=True).returncode:
                    subprocess.run([PG_SERVER, "kill", d], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
