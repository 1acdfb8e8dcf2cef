"""The error rows of POST /webhooks/whatsapp, each against a real serve."""

import json
import os
import subprocess
import threading
import time

from harness import Stack, http, sign, sqlite_only, text_payload, wait_until


def inbox_count(s):
    return s.scalar("SELECT COUNT(*) FROM inbox")


def test_missing_signature_401_nothing_stored():
    with Stack() as s:
        _, payload = text_payload("stock rice")
        st, _ = s.post(payload, signature="")
        assert st == 401, st
        assert inbox_count(s) == 0
        assert s.metrics()['munim_webhook_requests_total{code="401"}'] == 1


def test_wrong_signature_401_nothing_stored():
    with Stack() as s:
        _, payload = text_payload("stock rice")
        assert s.post(payload, secret="not-the-secret")[0] == 401
        body = json.dumps(payload).encode()
        good = sign(body)
        flipped = good[:-1] + ("0" if good[-1] != "0" else "1")
        assert s.post(None, raw=body, signature=flipped)[0] == 401
        assert s.post(None, raw=body, signature="sha1=" + good[7:])[0] == 401
        assert inbox_count(s) == 0


def raw_post_status(port, body, chunked=False):
    """POSTs body over a plain socket and returns the status the server
    answered, even if it answered (and closed) before the body was sent."""
    import socket
    sig = sign(body)
    head = ("POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n" % sig)
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else \
        "Content-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(head.encode())
        try:
            if chunked:
                for i in range(0, len(body), 65536):
                    part = body[i:i + 65536]
                    c.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                c.sendall(b"0\r\n\r\n")
            else:
                c.sendall(body)
        except OSError:
            pass  # the server answered early and closed
        data = b""
        while b"\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_body_over_1mib_413():
    with Stack() as s:
        big = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (1 << 20) + b'"}'
        assert raw_post_status(s.port, big) == 413
        # without a Content-Length the cap holds while streaming
        assert raw_post_status(s.port, big, chunked=True) == 413
        assert inbox_count(s) == 0
        assert s.metrics()['munim_webhook_requests_total{code="413"}'] == 2
        # the server is still fine afterwards
        assert s.say("hi")


def test_not_json_400_nothing_stored():
    with Stack() as s:
        assert s.post(None, raw=b"this is not json")[0] == 400
        assert s.post(None, raw=b'{"object":"page","entry":[]}')[0] == 400
        assert s.post(None, raw=b'{"hello":"world"}')[0] == 400
        assert s.post(None, raw=b"[1,2,3]")[0] == 400
        assert inbox_count(s) == 0
        assert s.metrics()['munim_webhook_requests_total{code="400"}'] == 4


def test_unknown_phone_number_id_200_counted():
    with Stack() as s:
        _, payload = text_payload("hi", to="999999999999999")
        st, _ = s.post(payload)
        assert st == 200, st
        assert inbox_count(s) == 0
        assert s.metrics()["munim_webhook_unknown_tenant_total"] == 1
        log = open(os.path.join(s.dir, "serve.log")).read()
        assert "unknown_tenant" in log and "999999999999999" in log


def test_store_locked_503_then_recovers():
    """The store locked past --db-busy-timeout-ms (SQLite's busy timeout,
    PostgreSQL's lock_timeout): 503, and the BSP's retry is taken."""
    with Stack(serve_args=["--db-busy-timeout-ms", "200"]) as s:
        with s.hold_lock():
            wamid, payload = text_payload("stock rice")
            st, _ = s.post(payload)
            assert st == 503, st
        # the BSP retries the same payload: now it is taken and answered once
        assert s.post(payload)[0] == 200
        assert len(s.replies(wamid)) == 1
        assert s.metrics()['munim_webhook_requests_total{code="503"}'] >= 1


def test_disk_full_503_then_recovers():
    sqlite_only("the store's file on a full disk (a 6 MiB tmpfs)")
    mnt = None
    try:
        import tempfile
        mnt = tempfile.mkdtemp(prefix="munim-full-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt], check=True)
        s = Stack(db_dir=mnt)
        s.start()
        try:
            assert s.say("hi")
            filler = os.path.join(mnt, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            payloads = [text_payload("stock rice %d" % i) for i in range(30)]
            codes = [s.post(p)[0] for _, p in payloads]
            assert 503 in codes, codes
            assert set(codes) <= {200, 503}, codes
            os.remove(filler)
            # the BSP retries everything that was not 200: all are answered
            for (wamid, p), code in zip(payloads, codes):
                if code != 200:
                    assert s.post(p)[0] == 200
            for wamid, _ in payloads:
                s.replies(wamid)
        finally:
            s.stop()
    finally:
        if mnt:
            subprocess.run(["umount", "-l", mnt])
