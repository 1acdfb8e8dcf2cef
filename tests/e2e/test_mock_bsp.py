"""munim mock-bsp on its own: the SMS gateway mock (MSG91 flow), its faults
and delivery reports, scripted WhatsApp faults (for_ms, failed_rate, 429
bursts) and the --auth-header token format.

Each test starts a real `munim mock-bsp` on a free loopback port and, where
the mock posts back, a small receiver (http.server on 127.0.0.1, port 0).
"""

import hashlib
import hmac
import json
import os
import re
import tempfile
import time

from harness import MUNIM, SECRET, SHOP, Proc, Receiver, free_port, http, wait_until

CUSTOMER = "919800000001"
SMS_OK = {"template_id": "T1", "short_url": "0",
          "recipients": [{"mobiles": "919812345678", "var": "the text"}]}


class Mock:
    """One `munim mock-bsp` on a free port; stop() asserts it exited 0."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="munim-mock-")
        self.url = "http://127.0.0.1:%d" % free_port()
        self.proc = Proc([MUNIM, "mock-bsp", "--listen", self.url[len("http://"):],
                          "--app-secret", SECRET, *args],
                         os.path.join(self.dir, "mock.log"))
        try:
            wait_until(self._up, what="mock-bsp to listen")
        except AssertionError:
            self.stop()
            raise

    def _up(self):
        if not self.proc.alive():
            raise AssertionError("mock-bsp exited: " + open(self.proc.log_path).read())
        try:
            return http("GET", self.url + "/_mock/stats", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self):
        rc = self.proc.stop()
        assert rc == 0, "mock-bsp exited %s: %s" % (rc, open(self.proc.log_path).read()[-3000:])

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            self.stop()
        except AssertionError:
            if exc_type is None:
                raise

    def get(self, path):
        st, b, _ = http("GET", self.url + path)
        assert st == 200, (path, st, b)
        return json.loads(b)

    def faults(self, **f):
        st, b, _ = http("POST", self.url + "/_mock/faults", json.dumps(f).encode(),
                        {"Content-Type": "application/json"})
        assert st == 200, (st, b)
        return json.loads(b)

    def sms(self, body, authkey="k3y", raw=None):
        """POST /api/v5/flow; returns (status, parsed answer)."""
        headers = {"Content-Type": "application/json"}
        if authkey is not None:
            headers["authkey"] = authkey
        data = raw if raw is not None else json.dumps(body).encode()
        st, b, _ = http("POST", self.url + "/api/v5/flow", data, headers)
        return st, json.loads(b)

    def send(self, headers=None, **extra):
        """The Cloud API send call with a text; returns (status, parsed answer)."""
        body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text",
                "text": {"body": "hello"}, **extra}
        h = {"Content-Type": "application/json"}
        h.update({"Authorization": "Bearer tok"} if headers is None else headers)
        st, b, _ = http("POST", self.url + "/v19.0/%s/messages" % SHOP,
                        json.dumps(body).encode(), h)
        return st, json.loads(b)


def test_sms_accepted_and_listed():
    with Mock() as m:
        st, a = m.sms(SMS_OK)
        assert st == 200 and a["type"] == "success", (st, a)
        first = a["message"]
        assert re.fullmatch(r"[0-9a-f]{24}", first), first
        two = {"template_id": "T2", "short_url": "0",
               "recipients": [{"mobiles": "9198123456789", "var": "₹120 due"},
                              {"mobiles": "9812345678", "var": ""}]}
        st, a = m.sms(two, authkey="other")
        assert st == 200, (st, a)
        second = a["message"]
        assert re.fullmatch(r"[0-9a-f]{24}", second) and second != first, (first, second)

        page = m.get("/_mock/sms")
        assert page["count"] == 3 and page["next"] == 3, page
        rows = page["sms"]
        assert [r["index"] for r in rows] == [0, 1, 2]
        assert [(r["request_id"], r["template_id"], r["mobiles"], r["var"]) for r in rows] == [
            (first, "T1", "919812345678", "the text"),
            (second, "T2", "9198123456789", "₹120 due"),
            (second, "T2", "9812345678", "")], rows
        now = int(time.time() * 1000)
        assert all(abs(r["received_at"] - now) < 60000 for r in rows), rows
        assert all(r["status"] == "delivered" for r in rows), rows

        # incremental polls: since/limit/next as /_mock/messages
        page = m.get("/_mock/sms?since=1&limit=1")
        assert page["count"] == 1 and page["sms"][0]["index"] == 1 and page["next"] == 2, page
        page = m.get("/_mock/sms?since=3")
        assert page == {"count": 0, "next": 3, "sms": []}, page
        assert http("GET", m.url + "/_mock/sms?limit=0")[0] == 400

        # the trailing-slash spelling of the URL is the same call
        st, _, _ = http("POST", m.url + "/api/v5/flow/", json.dumps(SMS_OK).encode(),
                        {"authkey": "k"})
        assert st == 200
        stats = m.get("/_mock/stats")
        assert (stats["sms_received"], stats["sms_accepted"], stats["sms_rejected"]) == (3, 4, 0), \
            stats

        # reset drops the SMS, not the indexes
        assert http("POST", m.url + "/_mock/reset", b"{}")[0] == 200
        assert m.get("/_mock/sms")["sms"] == []
        assert m.sms(SMS_OK)[0] == 200
        assert [r["index"] for r in m.get("/_mock/sms")["sms"]] == [4]


def test_sms_errors_are_named():
    def rcpt(**kw):
        return dict(SMS_OK, recipients=[kw])

    bad = [
        (None, SMS_OK, None, 401, "authkey missing"),
        ("", SMS_OK, None, 401, "authkey missing"),
        ("k", None, b"{not json", 400, "body is not JSON"),
        ("k", None, b"[1,2]", 400, "body is not a JSON object"),
        ("k", {"short_url": "0", "recipients": SMS_OK["recipients"]}, None, 400,
         "template_id missing"),
        ("k", dict(SMS_OK, template_id=""), None, 400, "template_id missing"),
        ("k", dict(SMS_OK, template_id=7), None, 400, "template_id missing"),
        ("k", {"template_id": "T"}, None, 400, "recipients missing"),
        ("k", dict(SMS_OK, recipients={"mobiles": "919812345678"}), None, 400,
         "recipients missing"),
        ("k", dict(SMS_OK, recipients=[]), None, 400, "recipients must hold 1 to 100 entries"),
        ("k", dict(SMS_OK, recipients=SMS_OK["recipients"] * 101), None, 400,
         "recipients must hold 1 to 100 entries"),
        ("k", rcpt(mobiles="981234567", var="x"), None, 400,
         "recipients[0].mobiles must be 10 to 15 digits"),
        ("k", rcpt(mobiles="9198123456789012", var="x"), None, 400,
         "recipients[0].mobiles must be 10 to 15 digits"),
        ("k", rcpt(mobiles="+919812345678", var="x"), None, 400,
         "recipients[0].mobiles must be 10 to 15 digits"),
        ("k", rcpt(var="x"), None, 400, "recipients[0].mobiles must be 10 to 15 digits"),
        ("k", dict(SMS_OK, recipients=[SMS_OK["recipients"][0], {"mobiles": "919812345678"}]),
         None, 400, "recipients[1].var missing or not a string"),
        ("k", rcpt(mobiles="919812345678", var=12), None, 400,
         "recipients[0].var missing or not a string"),
        ("k", rcpt(mobiles="919812345678", var="x" * 1001), None, 400,
         "recipients[0].var longer than 1000 bytes"),
        # 1,000 bytes, not characters: 334 rupee signs are 1,002
        ("k", rcpt(mobiles="919812345678", var="₹" * 334), None, 400,
         "recipients[0].var longer than 1000 bytes"),
    ]
    with Mock() as m:
        for key, body, raw, want_status, want_msg in bad:
            st, a = m.sms(body, authkey=key, raw=raw)
            assert (st, a) == (want_status, {"type": "error", "message": want_msg}), \
                (key, body, raw, st, a)
        stats = m.get("/_mock/stats")
        assert stats["sms_rejected"] == len(bad) and stats["sms_accepted"] == 0, stats
        assert m.get("/_mock/sms")["count"] == 0
        # the limits themselves are accepted: 100 recipients, 1,000 bytes, 15 digits
        st, a = m.sms(dict(SMS_OK, recipients=[{"mobiles": "919812345678901",
                                                 "var": "y" * 1000}] * 100))
        assert st == 200 and a["type"] == "success", (st, a)
        assert m.get("/_mock/stats")["sms_accepted"] == 100


def test_sms_outage():
    with Mock() as m:
        f = m.faults(sms_outage=True)
        assert f["sms_outage"] is True and f["outage"] is False, f
        assert m.get("/_mock/faults")["sms_outage"] is True
        st, a = m.sms(SMS_OK)
        assert (st, a) == (503, {"type": "error", "message": "service unavailable"}), (st, a)
        # the WhatsApp side is not affected
        assert m.send()[0] == 200
        stats = m.get("/_mock/stats")
        assert stats["sms_failed_by_fault"] == 1 and stats["sms_accepted"] == 0, stats
        assert m.get("/_mock/sms")["count"] == 0
        # reset clears the SMS faults too
        assert http("POST", m.url + "/_mock/reset", b"{}")[0] == 200
        assert m.get("/_mock/faults")["sms_outage"] is False
        assert m.sms(SMS_OK)[0] == 200


def test_sms_delivery_reports():
    rx = Receiver()
    try:
        with Mock("--sms-dlr-url", rx.url + "/sms/dlr?token=t") as m:
            st, a = m.sms(SMS_OK)
            assert st == 200, (st, a)
            ok_id = a["message"]
            wait_until(lambda: len(rx.got()) >= 1, what="the delivered report")
            path, headers, body = rx.got()[0]
            assert path == "/sms/dlr?token=t", path
            assert headers.get("Content-Type") == "application/json", headers
            assert "X-Hub-Signature-256" not in headers, headers
            reports = json.loads(body)
            assert isinstance(reports, list) and len(reports) == 1, reports
            r = reports[0]
            assert set(r) == {"requestId", "number", "status", "desc", "date"}, r
            assert (r["requestId"], r["number"], r["status"], r["desc"]) == \
                (ok_id, "919812345678", "1", "DELIVERED"), r
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["date"]), r

            f = m.faults(sms_failed_rate=1)
            assert f["sms_failed_rate"] == 1, f
            st, a = m.sms(dict(SMS_OK, recipients=[{"mobiles": "919811111111", "var": "a"},
                                                    {"mobiles": "919822222222", "var": "b"}]))
            assert st == 200, (st, a)
            bad_id = a["message"]

            def failed_reports():
                out = [x for _, _, b in rx.got() for x in json.loads(b)
                       if x["requestId"] == bad_id]
                return out if len(out) == 2 else None
            reports = wait_until(failed_reports, what="two failed reports")
            for r, number in zip(sorted(reports, key=lambda x: x["number"]),
                                 ("919811111111", "919822222222")):
                assert set(r) == {"requestId", "number", "status", "desc", "date",
                                  "failedReason"}, r
                assert (r["number"], r["status"], r["desc"], r["failedReason"]) == \
                    (number, "2", "FAILED", "Number out of service"), r
            rows = m.get("/_mock/sms")["sms"]
            assert [x["status"] for x in rows] == ["delivered", "failed", "failed"], rows

            stats = wait_until(lambda: (lambda s: s if s["sms_dlr_sent"] == 3 else None)(
                m.get("/_mock/stats")), what="sms_dlr_sent 3")
            assert stats["sms_failed_by_fault"] == 2 and stats["sms_accepted"] == 3, stats
    finally:
        rx.close()


def test_sms_report_failures_are_not_fatal():
    port = free_port()  # nobody listens there
    with Mock("--sms-dlr-url", "http://127.0.0.1:%d/dlr" % port) as m:
        assert m.sms(SMS_OK)[0] == 200
        wait_until(lambda: m.get("/_mock/stats")["sms_dlr"]["posts"] >= 2,
                   what="report POSTs retried")
        assert m.get("/_mock/stats")["sms_dlr_sent"] == 0
        assert m.sms(SMS_OK)[0] == 200  # still serving


def test_for_ms_reverts_an_outage_by_itself():
    with Mock() as m:
        before = int(time.time() * 1000)
        f = m.faults(outage=True, sms_outage=True, for_ms=1500)
        assert f["outage"] is True and f["sms_outage"] is True, f
        assert before + 1000 <= f["until_ms"] <= before + 1500 + 5000, (before, f)
        assert m.send()[0] == 503
        assert m.sms(SMS_OK)[0] == 503
        t0 = time.time()
        # no send in between: the undo must come from the mock's own timer
        f = wait_until(lambda: (lambda f: f if not f["outage"] else None)(
            m.get("/_mock/faults")), timeout=6, what="the outage to end")
        assert time.time() - t0 >= 0.8, "undone too early"
        assert f["sms_outage"] is False and f["until_ms"] == 0, f
        assert m.send()[0] == 200
        assert m.sms(SMS_OK)[0] == 200

        # only the fields that call set are undone
        m.faults(latency_ms=0, status=503)
        m.faults(error_rate=1, for_ms=300)
        f = wait_until(lambda: (lambda f: f if f["error_rate"] == 0 else None)(
            m.get("/_mock/faults")), timeout=5, what="the error rate to end")
        assert f["status"] == 503, f

        # a later POST cancels the pending undo
        m.faults(outage=True, for_ms=400)
        f = m.faults(failed_rate=0)
        assert f["until_ms"] == 0 and f["outage"] is True, f
        time.sleep(0.9)
        assert m.get("/_mock/faults")["outage"] is True
        assert m.send()[0] == 503

        for bad in ({"for_ms": 0}, {"for_ms": 3600001}, {"for_ms": "5"}, {"failed_rate": 2},
                    {"sms_failed_rate": -1}, {"sms_outage": "yes"}):
            st, b, _ = http("POST", m.url + "/_mock/faults", json.dumps(bad).encode())
            assert st == 400, (bad, st, b)


def test_429_burst_carries_its_code():
    with Mock() as m:
        m.faults(error_rate=1, status=429, for_ms=700)
        st, a = m.send()
        assert st == 429 and a["error"]["code"] == 130429, (st, a)
        wait_until(lambda: m.send()[0] == 200, timeout=5, interval=0.1,
                   what="the burst to end")


def test_failed_rate_sends_failed_statuses():
    rx = Receiver()
    try:
        with Mock("--webhook-url", rx.url + "/webhooks/whatsapp",
                  "--fault-failed-rate", "1") as m:
            assert m.get("/_mock/faults")["failed_rate"] == 1
            st, a = m.send(biz_opaque_callback_data="ob-42")
            assert st == 200, (st, a)
            wamid = a["messages"][0]["id"]
            wait_until(lambda: rx.got(), what="the failed status")
            path, headers, body = rx.got()[0]
            assert path == "/webhooks/whatsapp", path
            want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers.get("X-Hub-Signature-256") == want, headers
            doc = json.loads(body)
            value = doc["entry"][0]["changes"][0]["value"]
            assert value["metadata"]["phone_number_id"] == SHOP, value
            (s,) = value["statuses"]
            assert s["id"] == wamid and s["status"] == "failed", s
            assert s["recipient_id"] == CUSTOMER and s["biz_opaque_callback_data"] == "ob-42", s
            assert s["timestamp"].isdigit(), s
            assert len(s["errors"]) == 1, s
            assert s["errors"][0]["code"] == 131026, s
            assert s["errors"][0]["title"] == "Message undeliverable", s

            # switched off: delivered again, no errors
            m.faults(failed_rate=0)
            st, a = m.send()
            wamid2 = a["messages"][0]["id"]

            def second():
                for _, _, b in rx.got():
                    for x in json.loads(b)["entry"][0]["changes"][0]["value"]["statuses"]:
                        if x["id"] == wamid2:
                            return x
                return None
            s = wait_until(second, what="the delivered status")
            assert s["status"] == "delivered" and "errors" not in s, s
            assert "biz_opaque_callback_data" not in s, s
            assert m.get("/_mock/stats")["failed_statuses"] == 1
    finally:
        rx.close()


def test_auth_header_d360():
    with Mock("--auth-header", "D360-API-KEY") as m:
        st, a = m.send(headers={"D360-API-KEY": "key-1"})
        assert st == 200 and a["messages"][0]["id"].startswith("wamid."), (st, a)
        st, a = m.send(headers={"Authorization": "Bearer tok"})
        assert st == 401 and a["error"]["code"] == 190, (st, a)
        st, a = m.send(headers={"D360-API-KEY": ""})
        assert st == 401 and a["error"]["code"] == 190, (st, a)
    with Mock() as m:  # the default stays Bearer
        assert m.send()[0] == 200
        st, a = m.send(headers={"D360-API-KEY": "key-1"})
        assert st == 401 and a["error"]["code"] == 190, (st, a)
