"""The sender against a faulty mock BSP: retries, permanent failures, dead
letters, delivery statuses."""

import time

from harness import MUNIM, Stack, run, text_payload, wait_until

FAST_RETRY = ["--retry-base-ms", "50", "--retry-cap-ms", "200"]


def outbox_state(s, wamid):
    return s.scalar("SELECT state FROM outbox WHERE reply_to=?", wamid)


def test_delivered_status_updates_outbox():
    with Stack() as s:
        wamid, payload = text_payload("stock atta")
        assert s.post(payload)[0] == 200
        s.replies(wamid)
        # mock BSP posts a signed "delivered" status back: the row follows it
        wait_until(lambda: outbox_state(s, wamid) == 4, what="outbox row delivered")
        pid = s.scalar("SELECT provider_msg_id FROM outbox WHERE reply_to=?", wamid)
        assert pid and pid.startswith("wamid."), pid


def test_5xx_retried_until_accepted():
    with Stack(serve_args=FAST_RETRY) as s:
        s.mock_faults(error_rate=1.0, status=503)
        wamid, payload = text_payload("stock sugar")
        assert s.post(payload)[0] == 200
        # failed answers, not claims: a claim counts its attempt before the
        # request goes out, and that request could meet the healed mock
        wait_until(lambda: s.metrics()["munim_send_errors_total"] >= 2,
                   what="two failed attempts")
        assert s.mock_messages(context=wamid) == []
        s.mock_faults(error_rate=0.0, outage=False)
        assert len(s.replies(wamid)) == 1
        assert s.scalar("SELECT attempts FROM outbox WHERE reply_to=?", wamid) >= 3


def test_429_is_retried():
    with Stack(serve_args=FAST_RETRY) as s:
        s.mock_faults(error_rate=1.0, status=429)
        wamid, payload = text_payload("stock salt")
        assert s.post(payload)[0] == 200
        wait_until(lambda: (s.scalar("SELECT attempts FROM outbox WHERE reply_to=?", wamid)
                            or 0) >= 1, what="a rate-limited attempt")
        s.mock_faults(error_rate=0.0)
        assert len(s.replies(wamid)) == 1


def test_4xx_is_permanent_with_provider_code():
    with Stack(serve_args=FAST_RETRY) as s:
        s.mock_faults(error_rate=1.0, status=400)
        wamid, payload = text_payload("stock dal")
        assert s.post(payload)[0] == 200
        wait_until(lambda: outbox_state(s, wamid) == 6, what="outbox row failed")
        code, err, attempts = s.sql("SELECT last_error_code, last_error, attempts FROM outbox "
                                    "WHERE reply_to=?", wamid)[0]
        assert code != 0 and err, (code, err)
        assert attempts == 1, attempts


def test_dead_letter_after_attempts():
    with Stack(serve_args=FAST_RETRY + ["--send-max-attempts", "3"]) as s:
        s.mock_faults(outage=True)
        wamid, payload = text_payload("stock milk")
        assert s.post(payload)[0] == 200
        wait_until(lambda: outbox_state(s, wamid) == 7, what="outbox row dead")
        assert s.scalar("SELECT attempts FROM outbox WHERE reply_to=?", wamid) == 3
        assert s.metrics()["munim_dead_letters_total"] == 1
        out = run("outbox", "--db", s.db, "--dead").stdout
        assert wamid in out and "1 dead letter" in out, out


def test_timeout_is_retried():
    with Stack(serve_args=FAST_RETRY + ["--send-timeout-ms", "300"]) as s:
        s.mock_faults(latency_ms=1500)
        wamid, payload = text_payload("stock tea")
        assert s.post(payload)[0] == 200
        wait_until(lambda: (s.scalar("SELECT attempts FROM outbox WHERE reply_to=?", wamid)
                            or 0) >= 1, timeout=10, what="a timed-out attempt")
        s.mock_faults(latency_ms=0)
        wait_until(lambda: outbox_state(s, wamid) in (2, 3, 4), timeout=10,
                   what="accepted after the timeout")
