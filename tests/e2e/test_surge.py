"""The 10x surge end to end: `munim loadgen --profile surge` against a real
serve and a slowed mock BSP, with the spike thresholds scaled down so the
whole episode fits in a minute on two cores.

While the surge runs, an owner queues a broadcast (P3) as it starts and
marks an order paid every second (P0). The test then checks, from serve's
log, its metrics, the mock's log and the store: the spike level rose to 2
and stepped down one level at a time to 0; no offer went out while the
level was 2 or more and the offers went once it fell; replies to one
customer were merged into one message; worker threads grew and stayed
within --workers-max; payment notices reached the mock within 2 s (p95)
while the offers waited; every acknowledged message was answered exactly
once (a merged reply through the row that carried it)."""

import collections
import json
import subprocess
import threading
import time

from harness import (MUNIM, OWNER, SECRET, SHOP, Stack, body_json, body_text, envelope, http,
                     text_payload, wait_until)
from test_control import level_changes

# the surge: RATE/s, RATE x FACTOR from AT for FOR seconds, RATE again until DURATION
RATE, FACTOR, AT, FOR, DURATION = 8, 10, 8, 10, 28
TENANTS, CUSTOMERS = 2, 15
ORDERS = FOR + 2  # one "paid" a second during the surge, and a spare
MOCK_LATENCY_MS = 100  # with --send-inflight 4: about 40 sends a second
OFFER = "Surge sale: 10% off on atta today"
SERVE_ARGS = ["--spike-depth-1", "40", "--spike-depth-2", "100", "--spike-depth-3", "100000",
              "--spike-depth-4", "200000", "--spike-hold-ms", "2000", "--control-window-s", "5",
              "--send-inflight", "4", "--workers", "1", "--workers-max", "4"]


def order_customer(i):
    return "9197%08d" % i


def burst_customer(k):
    return "9196%08d" % k


BURST = ("stock rice", "price dal", "stock cheeni")


def burst(s, frm):
    """Three questions from one customer in one webhook, as a customer
    typing fast does: under the spike their replies go out as one."""
    msgs = [{"from": frm, "id": "wamid.SURGEBURST%s_%d" % (frm, i),
             "timestamp": str(int(time.time())), "type": "text", "text": {"body": t}}
            for i, t in enumerate(BURST)]
    st, b = s.post(envelope(SHOP, msgs, contacts=[{"profile": {"name": "Ravi"}, "wa_id": frm}]))
    assert st == 200, (st, b)


def status(s):
    st, b, _ = http("GET", s.url + "/status", timeout=5)
    assert st == 200, (st, b)
    return json.loads(b)


def confirmed_orders(s, n):
    """n customers of the first shop each order rice and confirm it (so it
    has its invoice and can be marked paid); returns their order ids."""
    for i in range(n):
        wamid, payload = text_payload("order 1 kg chawal", frm=order_customer(i))
        assert s.post(payload)[0] == 200
    ids = []
    for i in range(n):
        frm = order_customer(i)
        oid = wait_until(lambda: s.scalar("SELECT o.id FROM orders o JOIN customers c ON"
                                          " c.id = o.customer_id WHERE c.wa_id = ?", frm),
                         what="the draft order of %s" % frm)
        tap = {"from": frm, "id": "wamid.SURGETAP%d" % oid, "timestamp": str(int(time.time())),
               "type": "interactive",
               "interactive": {"type": "button_reply",
                               "button_reply": {"id": "confirm:%d" % oid, "title": "Confirm"}}}
        assert s.post(envelope(SHOP, [tap]))[0] == 200
        ids.append(oid)
    wait_until(lambda: s.scalar("SELECT COUNT(*) FROM invoices") == n, timeout=20,
               what="%d invoices" % n)
    return ids


class Sampler:
    """GET /status twice a second, in the background: the timeline."""

    def __init__(self, s, t0):
        self.s, self.t0 = s, t0
        self.rows = []  # (seconds from t0, status)
        self.errors = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.rows.append((time.time() - self.t0, status(self.s)))
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
            self.stop.wait(0.5)

    def close(self):
        self.stop.set()
        self.t.join()


def pct95(values):
    v = sorted(values)
    return v[max(0, -(-95 * len(v) // 100) - 1)]


def test_surge_10x_levels_pause_merge_scale_and_nothing_lost():
    s = Stack(tenants=TENANTS, serve_args=SERVE_ARGS)
    with s:
        orders = confirmed_orders(s, ORDERS)
        s.mock_faults(latency_ms=MOCK_LATENCY_MS)
        t0 = time.time()
        lg = subprocess.Popen(
            [MUNIM, "loadgen", "--url", s.url, "--bsp", s.bsp, "--app-secret", SECRET,
             "--profile", "surge", "--rate", str(RATE), "--surge-factor", str(FACTOR),
             "--surge-at", str(AT), "--surge-for", str(FOR), "--duration", str(DURATION),
             "--tenants", str(TENANTS), "--customers", str(CUSTOMERS),
             # merged replies never come back quoting their own message: the
             # drain waits this long for them
             "--drain-timeout", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(s, t0)
        try:
            # (a) the broadcast as the surge starts
            time.sleep(max(0, t0 + AT - time.time()))
            assert s.post(text_payload("broadcast " + OFFER, frm=OWNER)[1])[0] == 200
            # (b) one payment a second through the surge: P0; and a
            # customer asking three things at once
            paid = []  # (order, customer, wall time the webhook went)
            for k in range(FOR):
                time.sleep(max(0, t0 + AT + 0.5 + k - time.time()))
                at = time.time()
                assert s.post(text_payload("paid %d" % orders[k], frm=OWNER)[1])[0] == 200
                paid.append((orders[k], order_customer(k), at))
                burst(s, burst_customer(k))
            out, err = lg.communicate(timeout=120)
        finally:
            if lg.poll() is None:
                lg.kill()
                lg.wait()
        assert lg.returncode == 0, "loadgen exited %d: %s%s" % (lg.returncode, out, err)
        rep = json.loads(out.rstrip("\n").split("\n")[-1])

        # the offers went once the level fell; then the level is back to 0
        offers = lambda: [m for m in s.mock_messages() if "context" not in body_json(m)
                          and body_text(m) == OFFER]
        n_offers = s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3")
        assert n_offers >= CUSTOMERS, n_offers
        got = wait_until(lambda: (lambda m: m if len(m) >= n_offers else None)(offers()),
                         timeout=40, interval=0.5, what="all %d offers sent" % n_offers)
        wait_until(lambda: s.metrics()["munim_spike_level"] == 0, timeout=20,
                   what="spike level back to 0")
        sampler.close()
        assert not sampler.errors, sampler.errors[:3]

        # the load itself: per phase, every message answered 200
        assert rep["profile"] == "surge" and rep["surge_rate"] == RATE * FACTOR, rep
        phases = rep["phases"]
        assert [p["phase"] for p in phases] == ["before", "surge", "after"], phases
        assert [p["sent"] for p in phases] == [RATE * AT, RATE * FACTOR * FOR,
                                               RATE * (DURATION - AT - FOR)], phases
        assert rep["ok"] == rep["sent"] and rep["codes"] == {"200": rep["sent"]}, rep
        assert rep["duplicates"] == 0 and rep["unexpected_replies"] == 0, rep

        # levels: up to at least 2, then down one step at a time to 0
        changes = level_changes(s)
        levels = [lv for _, lv in changes]
        top = levels.index(max(levels))
        assert max(levels) >= 2, levels
        assert all(a < b for a, b in zip(levels[:top], levels[1:top + 1])), levels
        assert levels[top + 1:] == list(range(max(levels) - 1, -1, -1)), levels

        # P3 paused while the level was 2 or more, and resumed after
        paused, since = [], None
        for ms, lv in changes:
            if lv >= 2 and since is None:
                since = ms
            elif lv < 2 and since is not None:
                paused.append((since, ms))
                since = None
        assert paused and since is None, changes
        for m in got:
            assert not any(a <= m["received_at"] < b for a, b in paused), (m, paused)
        assert max(m["received_at"] for m in got) >= paused[-1][1], (got, paused)

        # aggregation: replies merged, one message carrying two of them
        merged = s.metrics().get("munim_outbox_merged_total", 0)
        assert merged > 0, merged
        rows = s.sql("SELECT m.body, k.reply_to FROM outbox m JOIN outbox k"
                     " ON k.id = m.merged_into WHERE m.state = 8")
        assert len(rows) == merged, (len(rows), merged)
        body, keeper_reply_to = rows[0]
        text = json.loads(body)["text"]["body"]
        carrier = [m for m in s.mock_messages(context=keeper_reply_to)]
        assert len(carrier) == 1, carrier
        joined = body_text(carrier[0])
        assert text in joined and len(joined) > len(text) + 2 and "\n\n" in joined, (text,
                                                                                       joined)

        # worker threads grew, and stayed within --workers-max
        log = open(s.dir + "/serve.log", errors="replace").read()
        assert '"control.scaled"' in log, "no control.scaled line"
        threads = [st["workers"]["threads"] for _, st in sampler.rows]
        assert max(threads) > 1 and max(threads) <= 4, threads

        # P0 went ahead of the waiting offers: p95 under 2 s
        lat, notice_at = [], []
        for oid, cust, at in paid:
            want = "received for order #%d." % oid
            notes = [m for m in s.mock_messages(to=cust) if want in body_text(m)]
            assert len(notes) == 1, (oid, notes)
            lat.append(notes[0]["received_at"] / 1000.0 - at)
            notice_at.append(notes[0]["received_at"])
        p0_p95 = pct95(lat)
        assert p0_p95 < 2.0, lat
        # ... while offers waited: the last one went after the last notice
        assert max(m["received_at"] for m in got) > max(notice_at), "no offer waited"
        early = sum(1 for m in got if m["received_at"] < paused[0][0])

        # nothing acknowledged lost: every message's replies went, once
        bad = s.sql("SELECT i.ext_id, o.id, o.state, k.state FROM inbox i"
                    " JOIN outbox o ON o.reply_to = i.ext_id"
                    " LEFT JOIN outbox k ON k.id = o.merged_into"
                    " WHERE i.kind = 1 AND NOT (o.state BETWEEN 2 AND 5"
                    "  OR (o.state = 8 AND k.state BETWEEN 2 AND 5))")
        assert bad == [], bad[:10]
        unanswered = s.sql("SELECT ext_id, state FROM inbox i WHERE kind = 1 AND NOT EXISTS"
                           " (SELECT 1 FROM outbox o WHERE o.reply_to = i.ext_id)")
        assert unanswered == [], unanswered[:10]
        # loadgen counts a merged reply as lost: it quotes only the kept row's message
        merged_lg = s.scalar("SELECT COUNT(*) FROM outbox WHERE state = 8"
                             " AND reply_to LIKE 'wamid.LG%'")
        assert rep["lost"] == merged_lg, (rep["lost"], merged_lg)
        # (the bodies are read here, not with the store's JSON functions:
        # SQLite's and PostgreSQL's differ)
        quoted = collections.Counter(
            (json.loads(b).get("context") or {}).get("message_id")
            for (b,) in s.sql("SELECT body FROM outbox WHERE state BETWEEN 2 AND 5"))
        sent_twice = [(c, n) for c, n in quoted.items()
                      if n > 1 and c and c.startswith("wamid.LG")]
        assert sent_twice == [], sent_twice[:5]

        peak = max(levels)
        print("surge figures: peak spike level %d; P0 p95 %.3f s (max %.3f s, %d notices);"
              " %d replies merged (loadgen lost %d); worker threads max %d (of 4);"
              " %d offers, %d of them before the level reached 2, the last %.1f s after"
              " the broadcast" % (
                  peak, p0_p95, max(lat), len(lat), merged, rep["lost"], max(threads),
                  len(got), early, max(m["received_at"] for m in got) / 1000.0 - (t0 + AT)))
        print("surge timeline (s, level, depth, p95 ms, workers):",
              " ".join("%.0f:%d/%d/%d/%d" % (t, st["spike_level"], st["signals"]["depth"],
                                             st["signals"]["latency_p95_ms"],
                                             st["workers"]["threads"])
                       for t, st in sampler.rows[::2]))


def loadgen(*args, timeout=60):
    return subprocess.run([MUNIM, "loadgen", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_surge_profile_report_per_phase():
    """A small surge on an idle stack: the text report and the JSON line
    give each phase its rate and its count."""
    with Stack(tenants=1) as s:
        r = loadgen("--url", s.url, "--bsp", s.bsp, "--app-secret", SECRET, "--profile",
                    "surge", "--rate", "20", "--surge-factor", "3", "--surge-at", "1",
                    "--surge-for", "1", "--duration", "3", "--customers", "5")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        lines = r.stdout.rstrip("\n").split("\n")
        rep = json.loads(lines[-1])
        assert rep["sent"] == 100 and rep["ok"] == 100 and rep["lost"] == 0, rep
        assert rep["surge_factor"] == 3 and rep["surge_rate"] == 60, rep
        assert rep["surge_at_s"] == 1 and rep["surge_for_s"] == 1, rep
        assert [(p["phase"], p["rate"], p["start_s"], p["sent"]) for p in rep["phases"]] == [
            ("before", 20, 0, 20), ("surge", 60, 1, 60), ("after", 20, 2, 20)], rep
        assert "steps" not in rep
        text = "\n".join(lines[:-1])
        assert "profile      surge: 20/s, x3 (60/s) from 1 s for 1 s, for 3 s" in text, text
        assert [l.split()[:2] for l in lines if l.split()[:1] in (["before"], ["surge"],
                                                                 ["after"])] == [
            ["before", "20"], ["surge", "60"], ["after", "20"]], text


def test_surge_profile_bad_arguments_are_exit_2():
    for args, why in (
            ([], "end by --duration 10"),  # the defaults need --duration 20 or more
            (["--duration", "25", "--surge-at", "20"], "end by --duration 25"),
            (["--duration", "30", "--surge-factor", "0.5"], "surge-factor"),
            (["--duration", "30", "--rate", "20000"], "surge's rate (--rate 20000 x"),
            (["--duration", "30", "--surge-for", "0"], "surge-for"),
            (["--duration", "30", "--surge-at", "-1"], "surge-at")):
        r = loadgen("--url", "http://127.0.0.1:1", "--bsp", "http://127.0.0.1:1",
                    "--profile", "surge", *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert why in r.stderr, (args, r.stderr)
        assert r.stdout == "", r.stdout
