"""The controller in serve: the traffic spike level rises with the backlog,
pauses marketing (P3) at level 2, and steps down after its hold, when the
marketing goes out."""

import json
import time
from datetime import datetime, timedelta

from harness import (OWNER, Receiver, Stack, body_json, body_text, button_payload, http, run,
                     text_payload, wait_until)
from test_delivery import delivery_stack


def level_changes(s):
    """(ms, level) of every control.spike_level line in serve's log."""
    out = []
    for line in open(s.dir + "/serve.log", errors="replace"):
        if '"control.spike_level"' not in line:
            continue
        ev = json.loads(line)
        at = datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ms = int((at - datetime(1970, 1, 1)).total_seconds() * 1000)
        out.append((ms, int(ev["msg"].split()[2])))
    return out


def test_spike_level_pauses_marketing():
    s = Stack(serve_args=["--send-inflight", "2", "--spike-depth-1", "4", "--spike-depth-2", "8",
                          "--spike-depth-3", "100000", "--spike-depth-4", "200000",
                          "--spike-hold-ms", "1500", "--control-window-s", "5"])
    customers = ["9196%08d" % i for i in range(30)]
    with s:
        assert s.metrics()["munim_spike_level"] == 0
        s.mock_faults(latency_ms=300)
        for c in customers:
            assert s.post(text_payload("stock atta", frm=c)[1])[0] == 200
        assert s.post(text_payload("broadcast Diwali sale", frm=OWNER)[1])[0] == 200
        wait_until(lambda: s.metrics()["munim_spike_level"] >= 2, timeout=10,
                   what="spike level 2")
        marketing = lambda: [m for m in s.mock_messages() if "context" not in body_json(m)]
        got = wait_until(lambda: (lambda m: m if len(m) >= 30 else None)(marketing()),
                         timeout=60, interval=0.2, what="all 30 offers sent")
        wait_until(lambda: s.metrics()["munim_spike_level"] == 0, timeout=15,
                   what="spike level back to 0")
        changes = level_changes(s)
        up = [ms for ms, lv in changes if lv >= 2]
        down = [ms for ms, lv in changes if lv < 2]
        assert up and down, changes
        # no offer went out while the level was 2 or more: the first came
        # after the level fell below 2
        fell = min(ms for ms in down if ms > up[0])
        first_offer = min(m["received_at"] for m in got)
        assert first_offer >= fell, (first_offer, fell, changes)
        # the levels rose and fell in order, one step at a time on the way down
        levels = [lv for _, lv in changes]
        top = levels.index(max(levels))
        assert levels[top + 1:] == list(range(max(levels) - 1, -1, -1)), levels


def status(s):
    st, b, _ = http("GET", s.url + "/status")
    assert st == 200, (st, b)
    return json.loads(b)


def ist_today():
    return (datetime.utcnow() + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d")


def test_status_and_contract_metrics():
    """GET /status and the metrics an outside drill reads."""
    s = Stack()
    with s:
        s.say("stock atta")
        # a whole control tick: it publishes the signals before it sizes the
        # pool (after the store's upkeep, slower on PostgreSQL)
        st = wait_until(lambda: (lambda j: j if j["signals"]["latency_p95_ms"] >= 0
                                 and j["workers"]["threads"] > 0 else None)(status(s)),
                        what="a p95 and the worker pool in /status")
        assert st["spike_level"] == 0 and st["spike_level_name"] == "normal", st
        assert st["degradation_level"] == 0 and st["degradation_level_name"] == "full", st
        assert st["festival"] is None, st  # the seed's calendar is in the past
        assert st["signals"]["whatsapp_providers"] == 1, st
        assert st["signals"]["whatsapp_providers_up"] == 1, st
        assert st["modes"] == {"batch_factor": 1, "pause_p3": 0, "aggregate": 0,
                               "priority_strict": 0, "sms_critical": 0}, st
        # 2 of at most 8 threads: a quarter of the 1,024 sends in flight
        assert st["workers"] == {"threads": 2, "floor": 2, "send_inflight_cap": 256}, st
        m = s.metrics()
        for name in ("munim_spike_level", "munim_degradation_level", "munim_inbox_depth",
                     "process_cpu_seconds_total", "process_resident_memory_bytes",
                     "munim_worker_threads", "munim_festival_multiplier"):
            assert name in m, name
        assert m["munim_degradation_level"] == 0 and m["munim_worker_threads"] == 2
        assert m["process_resident_memory_bytes"] > 1e6
        assert any(k.startswith("munim_message_latency_seconds_bucket{") for k in m)
        assert m["munim_message_latency_seconds_count"] >= 1


def test_festival_window_runs_the_playbook():
    """A festival peak today: the floor of worker threads rises to the
    multiplier, batch sizes double, marketing is deferred and strict
    priority is on, by themselves; customers are still answered."""
    cal = "testfest:monitor:2020-01-01:1d:1x;testfest:peak:%s:1d:3x:alert=5" % ist_today()
    hook = Receiver()
    s = Stack(serve_args=["--workers", "1", "--workers-max", "4", "--festival-calendar", cal,
                          "--alert-url", hook.url, "--send-inflight", "8"])
    try:
        with s:
            st = wait_until(lambda: (lambda j: j if j["festival"] and j["workers"]["floor"] == 3
                                     else None)(status(s)),
                            what="the festival window in /status")
            f = st["festival"]
            assert f["name"] == "testfest" and f["phase"] == "peak", f
            assert f["multiplier"] == 3, f
            assert f["steps"] == ("batch,pools,aggregation-armed,priority-strict,sms-standby,"
                                  "defer-p3,depth-alert"), f
            assert st["modes"]["batch_factor"] == 2 and st["modes"]["pause_p3"] == 1, st
            assert st["modes"]["priority_strict"] == 1, st
            # level 0: aggregation armed but not on, SMS on standby but not used
            assert st["modes"]["aggregate"] == 0 and st["modes"]["sms_critical"] == 0, st
            wait_until(lambda: status(s)["workers"] == {"threads": 3, "floor": 3,
                                                        "send_inflight_cap": 6},
                       what="3 worker threads (1 x 3), 3/4 of the 8 sends in flight")
            assert s.metrics()["munim_festival_multiplier"] == 3
            # marketing waits; customers' replies do not
            s.say("stock atta")
            assert s.post(text_payload("broadcast Diwali dhamaka", frm=OWNER)[1])[0] == 200
            r = s.say("stock rice", frm="919811111111")
            assert r, r
            time.sleep(2)
            # the one customer who wrote before it waits for its offer
            assert s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3 AND state = 0") == 1
            assert not [m for m in s.mock_messages() if "Diwali dhamaka" in json.dumps(m)]
            # no SMS gateway while the playbook wants one on standby: said once
            wait_until(lambda: any(b"sms_standby" in p[2] for p in hook.got()),
                       what="the SMS standby alert")
            # the D-Day playbook's depth alert (this window's alert=5)
            s.mock_faults(latency_ms=500)
            for i in range(20):
                assert s.post(text_payload("stock atta", frm="9194%08d" % i)[1])[0] == 200
            wait_until(lambda: [p for p in hook.got() if b"festival_depth" in p[2]],
                       timeout=15, what="the festival's depth alert")
            depth = [json.loads(p[2]) for p in hook.got() if b"festival_depth" in p[2]]
            assert len(depth) == 1 and "testfest peak: queue depth" in depth[0]["text"], depth
        log = open(s.dir + "/serve.log").read()
        assert '"control.scaled"' in log and '"control.festival"' in log
    finally:
        hook.close()


def test_bad_festival_calendar_refuses_to_start():
    s = Stack(serve_args=["--festival-calendar", "diwali:peak:2025-02-30:3d:10x"])
    s.start_mock()
    try:
        s.start_serve(wait_ready=False)
        rc = s.serve.p.wait(timeout=15)
        assert rc != 0
        log = open(s.dir + "/serve.log").read()
        assert '--festival-calendar: festival window 1: no such date \\"2025-02-30\\"' in log, \
            log[-2000:]
    finally:
        s.stop()


def test_levels_3_and_4_drop_marketing_refuse_campaigns_and_page():
    """Deep queues: level 3 drops the waiting broadcast and tells the shop
    how much of it did not go (by SMS: from level 3 critical messages that
    would wait go by SMS); level 4 refuses new campaigns 503 with
    Retry-After and pages; when the queue drains the levels fall and
    campaigns are taken again."""
    hook = Receiver()
    s = delivery_stack(extra_serve=[
        "--send-inflight", "2", "--spike-depth-1", "2", "--spike-depth-2", "4",
        "--spike-depth-3", "6", "--spike-depth-4", "12", "--spike-hold-ms", "1500",
        "--control-window-s", "5", "--alert-url", hook.url, "--marketing-retry-after-s", "77"])
    token = run("tenant", "token", "--db", s.db, "--tenant", "1").stdout.strip()
    customers = ["9197%08d" % i for i in range(40)]
    try:
        with s:
            # the shop's customers write; the levels settle back to 0
            for c in customers:
                assert s.post(text_payload("hi", frm=c)[1])[0] == 200
            wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE state < 2") == 0,
                       timeout=30, what="the greetings answered")
            wait_until(lambda: s.metrics()["munim_spike_level"] == 0, timeout=30,
                       what="spike level 0")
            # a broadcast to the 40 starts going out, slowly; then a flood
            s.mock_faults(latency_ms=400)
            assert s.post(text_payload("broadcast Festive offer", frm=OWNER)[1])[0] == 200
            wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3") == 40,
                       what="the broadcast queued")
            for c in customers:
                assert s.post(text_payload("stock atta", frm=c)[1])[0] == 200
            wait_until(lambda: s.metrics()["munim_spike_level"] == 4, timeout=15,
                       what="spike level 4")
            # the owner's new broadcast is refused while the level is 4
            wamid, payload = text_payload("broadcast One more offer", frm=OWNER)
            assert s.post(payload)[0] == 200
            st, b, h = http("POST", s.url + "/v1/campaigns",
                            json.dumps({"text": "more offers"}).encode(),
                            {"Authorization": "Bearer " + token,
                             "Content-Type": "application/json"})
            assert st == 503 and h.get("Retry-After") == "77", (st, b, h)
            assert json.loads(b)["error"]["code"] == "marketing_paused"
            assert s.metrics()["munim_marketing_refused_total"] == 1
            dropped = wait_until(lambda: s.scalar(
                "SELECT COUNT(*) FROM outbox WHERE priority = 3 AND state = 7"
                " AND last_error LIKE 'dropped: traffic spike level%'") or None,
                timeout=15, what="the broadcast dropped")
            assert s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3 AND state = 0") == 0
            went = s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 3 AND state IN "
                            "(1, 2, 3, 4, 5)")
            assert dropped + went == 40 and dropped > 0, (dropped, went)
            print("    of 40 offers, %d went before the flood and %d were dropped" %
                  (went, dropped))
            told = wait_until(lambda: [m for m in s.mock_sms() if "%d of your broadcast "
                                       "messages" % dropped in json.dumps(m)],
                              timeout=20, what="the owner told by SMS")
            assert told and OWNER in json.dumps(told[0]), told
            refused = s.replies(wamid, timeout=30)[0]
            assert "new broadcasts are paused" in body_text(refused), body_text(refused)
            assert s.scalar("SELECT COUNT(*) FROM outbox WHERE body LIKE '%One more offer%'") \
                == 0
            m = s.metrics()
            assert m["munim_marketing_dropped_total"] == dropped
            assert m["munim_marketing_drop_notices_total"] == 1
            sev = [json.loads(p[2]).get("severity") for p in hook.got()]
            assert "oncall" in sev and "page" in sev, sev
            # drained: back to 0, campaigns taken again
            s.mock_faults(latency_ms=0)
            wait_until(lambda: s.metrics()["munim_spike_level"] == 0, timeout=30,
                       what="spike level back to 0")
            st, b, _ = http("POST", s.url + "/v1/campaigns",
                            json.dumps({"text": "more offers"}).encode(),
                            {"Authorization": "Bearer " + token,
                             "Content-Type": "application/json"})
            assert st == 202, (st, b)
    finally:
        hook.close()


def test_whatsapp_outage_degrades_and_tells_shops():
    """Every BSP down: the degradation level goes to 3 (companion app only),
    the shops with replies waiting get the seed's SMS notice; WhatsApp back:
    the level steps down after its hold."""
    s = delivery_stack(extra_serve=["--breaker-open-ms", "1000", "--degrade-hold-ms", "1500"])
    with s:
        s.say("stock atta")
        s.mock_faults(outage=True, for_ms=8000)
        for i in range(8):
            assert s.post(text_payload("stock rice", frm="9196%08d" % i)[1])[0] == 200
        wait_until(lambda: status(s)["degradation_level"] == 3, timeout=15,
                   what="degradation level 3")
        st = status(s)
        assert st["degradation_level_name"] == "companion-only", st
        assert "WhatsApp providers is up" in st["degradation_reason"], st
        assert s.metrics()["munim_degradation_level"] == 3
        notice = "WhatsApp is experiencing delays. Critical updates will be sent via SMS."
        got = wait_until(lambda: [m for m in s.mock_sms() if notice in json.dumps(m)],
                         timeout=15, what="the shop's SMS notice")
        assert OWNER in json.dumps(got[0]), got
        assert s.metrics()["munim_shop_notices_total"] == 1
        wait_until(lambda: status(s)["degradation_level"] == 0, timeout=40,
                   what="degradation back to 0")
        log = open(s.dir + "/serve.log").read()
        levels = [json.loads(l)["msg"].split()[2] for l in log.splitlines()
                  if '"control.degradation_level"' in l]
        last3 = len(levels) - 1 - levels[::-1].index("3")
        assert levels[0] == "3" and levels[last3:] == ["3", "2", "1", "0"], levels


def test_ai_outage_degrades_to_level_1():
    """The AI endpoint fails: its breaker opens and the degradation level is
    1 (customers get the seed's template with buttons); the endpoint back,
    the breaker lets a probe through and the level falls after its hold."""
    s = Stack(serve_args=["--degrade-hold-ms", "1500", "--ai-breaker-failures", "3",
                          "--ai-breaker-open-ms", "1500", "--ai-poll-ms", "20",
                          "--ai-token", "e2e-ai"])
    s.serve_args += ["--ai-url", s.bsp + "/v1/chat/completions"]
    with s:
        st, b, _ = http("POST", s.bsp + "/_mock/ai/faults", json.dumps(
            {"outage": True, "for_ms": 4000}).encode(), {"Content-Type": "application/json"})
        assert st == 200, (st, b)
        for i in range(3):
            s.say("bhaiya do kilo aata bhijwa dijiye %d" % i, timeout=15)
        st = wait_until(lambda: (lambda j: j if j["degradation_level"] == 1 else None)(
            status(s)), what="degradation level 1")
        assert st["degradation_reason"] == "the AI endpoint's breaker is open", st
        assert st["signals"]["ai_breaker_open"] == 1, st
        assert s.metrics()["munim_degradation_level"] == 1
        r = s.say("bhaiya kuch bhejo", frm="919822222222")[0]
        assert body_text(r).startswith("Due to high demand, smart responses are "
                                       "temporarily unavailable."), body_text(r)
        # the outage over: once a probe through the half-open breaker answers,
        # the level steps down after the hold
        def back():
            s.say("bhaiya thoda sa bhejo %f" % time.time(), frm="919833333333", timeout=15)
            return status(s)["degradation_level"] == 0
        wait_until(back, timeout=40, interval=1, what="degradation back to 0")


def test_level_3_sends_waiting_critical_messages_by_sms():
    """From spike level 3 (the seed's enable_sms_fallback([P0, P1])) a P0/P1
    that would wait for the number's WhatsApp pace goes by SMS; ordinary
    replies keep waiting for WhatsApp."""
    s = delivery_stack(extra_serve=[
        "--pace-per-number", "1", "--spike-depth-1", "1", "--spike-depth-2", "2",
        "--spike-depth-3", "3", "--spike-depth-4", "1000000", "--spike-hold-ms", "2000"])
    buyers = ["9193%08d" % i for i in range(5)]
    with s:
        for b in buyers:
            assert s.post(text_payload("order 1 kg atta", frm=b)[1])[0] == 200
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM orders") == 5, what="the orders")
        orders = s.sql("SELECT o.id, c.wa_id FROM orders o JOIN customers c"
                       " ON c.id = o.customer_id")
        for i in range(15):
            assert s.post(text_payload("stock atta", frm="9195%08d" % i)[1])[0] == 200
        wait_until(lambda: s.metrics()["munim_spike_level"] == 3, timeout=15,
                   what="spike level 3")
        assert status(s)["modes"]["sms_critical"] == 1
        # five invoices at once against one WhatsApp send a second: those that
        # would wait go by SMS (one or two may find a token free)
        for order, wa_id in orders:
            assert s.post(button_payload("confirm:%d" % order, frm=wa_id)[1])[0] == 200
        wait_until(lambda: s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 1"
                                    " AND body LIKE '%INV/%' AND provider = 'sms'"
                                    " AND state >= 2") >= 3,
                   timeout=15, what="the invoices sent by SMS")
        sms = [m for m in s.mock_sms() if "INV/" in json.dumps(m)]
        assert len(sms) >= 3, s.mock_sms()
        # the ordinary replies went (or wait) by WhatsApp only
        assert s.scalar("SELECT COUNT(*) FROM outbox WHERE priority = 2 AND provider = 'sms'") \
            == 0
