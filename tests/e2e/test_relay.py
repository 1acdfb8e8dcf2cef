"""munim relay, the floor under serve's end-to-end figures: every signed
webhook answered 200 and one reply per message at the mock BSP quoting it,
nothing stored; a bad signature 401 and a body that is not a webhook 400,
with no reply either way; its counts at exit; missing settings exit 2."""

import json
import os
import subprocess

from harness import (MUNIM, SECRET, TOKEN, Proc, Stack, body_text, envelope, run,
                     text_payload, wait_until)


def relay_stack():
    """A mock BSP and a relay in serve's place (s.serve is the relay)."""
    s = Stack(seed=False, mock_args=["--delivered-statuses", "0"])
    s.start_mock()
    s.serve = Proc([MUNIM, "relay", "--listen", "127.0.0.1:%d" % s.port,
                    "--bsp-url", s.bsp, "--app-secret", SECRET, "--access-token", TOKEN],
                   os.path.join(s.dir, "relay.log"))
    wait_until(lambda: s._ok(s.url + "/readyz"), timeout=15, what="relay ready")
    return s


def relay_counts(s):
    """Stops the relay; its exit status and the counts line it printed."""
    rc = s.serve.stop()
    lines = [l for l in open(s.serve.log_path) if l.startswith("relay: ")]
    assert lines, open(s.serve.log_path).read()
    words = lines[-1].split()
    return rc, {w: int(n) for w, n in zip(words[1::2], words[2::2]) if n.isdigit()}


def test_relay_answers_and_replies_once_per_message():
    s = relay_stack()
    try:
        r = subprocess.run([MUNIM, "loadgen", "--url", s.url, "--bsp", s.bsp,
                            "--app-secret", SECRET, "--rate", "200", "--duration", "2",
                            "--tenants", "2"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout.strip().splitlines()[-1])
        assert rep["sent"] == 400 and rep["ok"] == 400, rep
        assert rep["lost"] == 0 and rep["duplicates"] == 0, rep
        # a message of a shop's customer is answered to that customer, quoting it
        wamid, payload = text_payload("stock cheeni", frm="919800000042")
        assert s.post(payload)[0] == 200
        reply = s.replies(wamid)[0]
        assert reply["to"] == "+919800000042" and body_text(reply) == "ok", reply
        rc, counts = relay_counts(s)
        assert rc == 0
        assert counts == {"webhooks": 401, "refused": 0, "queued": 401, "sent": 401,
                          "failed": 0, "dropped": 0}, counts
    finally:
        s.stop()


def test_relay_refuses_bad_signature_and_bad_body():
    s = relay_stack()
    try:
        wamid, payload = text_payload("hello")
        st, body = s.post(payload, secret="not-the-secret")
        assert st == 401 and b"bad signature" in body, (st, body)
        st, body = s.post(None, raw=b"{not json")
        assert st == 400 and b"not a WhatsApp webhook" in body, (st, body)
        # a webhook with statuses only asks for no reply
        st, _ = s.post(envelope("100000000000001", statuses=[{
            "id": "wamid.X", "status": "delivered", "timestamp": "1700000000",
            "recipient_id": "919800000001"}]))
        assert st == 200
        rc, counts = relay_counts(s)
        assert rc == 0
        assert counts["webhooks"] == 3 and counts["refused"] == 2, counts
        assert counts["queued"] == 0 and counts["sent"] == 0, counts
        assert s.mock_messages() == []
    finally:
        s.stop()


def test_relay_needs_provider_and_secret():
    r = run("relay", "--listen", "127.0.0.1:0", check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--bsp-url and --app-secret are required" in r.stderr, r.stderr
    r = run("relay", "--no-such-flag", check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
