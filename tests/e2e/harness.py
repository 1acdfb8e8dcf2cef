"""End-to-end test harness: real bin/munim processes on 127.0.0.1.

Each test gets its own temporary directory and store, a mock BSP and a
`serve` on free ports, talks to them over real HTTP, and stops them by
PID. Only the Python standard library is used.
"""

import hashlib
import hmac
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MUNIM = os.path.abspath(os.path.join(ROOT, os.environ.get("MUNIM_BIN", "bin/munim")))
SECRET = "e2e-app-secret"
VERIFY = "e2e-verify-token"
TOKEN = "e2e-access-token"
SHOP = "100000000000001"
CUSTOMER = "919800000001"
OWNER = "919900000001"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def http(method, url, body=None, headers=None, timeout=15):
    """Returns (status, body bytes, headers dict)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


_seq = [0]


def new_wamid():
    _seq[0] += 1
    return "wamid.E2E%d_%d_%d" % (os.getpid(), _seq[0], random.randrange(1 << 30))


def text_payload(text, wamid=None, to=SHOP, frm=CUSTOMER, name="Asha"):
    wamid = wamid or new_wamid()
    msg = {"from": frm, "id": wamid, "timestamp": str(int(time.time())),
           "type": "text", "text": {"body": text}}
    return wamid, envelope(to, [msg], contacts=[{"profile": {"name": name}, "wa_id": frm}])


def button_payload(button_id, title="OK", wamid=None, to=SHOP, frm=CUSTOMER, context=None):
    wamid = wamid or new_wamid()
    msg = {"from": frm, "id": wamid, "timestamp": str(int(time.time())),
           "type": "interactive",
           "interactive": {"type": "button_reply",
                           "button_reply": {"id": button_id, "title": title}}}
    if context:
        msg["context"] = {"from": to, "id": context}
    return wamid, envelope(to, [msg], contacts=[{"profile": {"name": "Asha"}, "wa_id": frm}])


def envelope(phone_number_id, messages=None, statuses=None, contacts=None):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111",
                          "phone_number_id": phone_number_id}}
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}]}


class Proc:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                  env=env or os.environ.copy())

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the process, waits, returns its exit status."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def kill9(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.log.close()


def run(*args, check=True, timeout=300):
    r = subprocess.run([MUNIM, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("munim %s failed (%d): %s%s" % (" ".join(args), r.returncode,
                                                             r.stdout, r.stderr))
    return r


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


class Receiver:
    """Collects the POSTs made to it: (path, headers, body bytes); answers 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.posts.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def got(self):
        with self.lock:
            return list(self.posts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Stack:
    """A mock BSP and a serve process over a fresh store in a temp dir."""

    def __init__(self, tenants=1, serve_args=(), mock_args=(), db_dir=None, seed=True):
        self.dir = tempfile.mkdtemp(prefix="munim-e2e-")
        self.db = os.path.join(db_dir or self.dir, "munim.db")
        self.mock_port = free_port()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.bsp = "http://127.0.0.1:%d" % self.mock_port
        self.serve_args = list(serve_args)
        self.mock_args = list(mock_args)
        self.serve = None
        self.mock = None
        run("migrate", "--db", self.db)
        if seed:
            run("seed", "--db", self.db, "--tenants", str(tenants))

    def start_mock(self):
        self.mock = Proc([MUNIM, "mock-bsp", "--listen", "127.0.0.1:%d" % self.mock_port,
                          "--app-secret", SECRET,
                          "--webhook-url", self.url + "/webhooks/whatsapp", *self.mock_args],
                         os.path.join(self.dir, "mock.log"))
        wait_until(lambda: self._ok(self.bsp + "/_mock/stats"), what="mock-bsp to listen")

    def start_serve(self, wait_ready=True):
        self.serve = Proc([MUNIM, "serve", "--db", self.db,
                           "--listen", "127.0.0.1:%d" % self.port, "--bsp-url", self.bsp,
                           "--app-secret", SECRET, "--verify-token", VERIFY,
                           "--access-token", TOKEN, *self.serve_args],
                          os.path.join(self.dir, "serve.log"))
        if wait_ready:
            wait_until(lambda: self._ok(self.url + "/readyz"), timeout=15, what="serve ready")

    def start(self):
        self.start_mock()
        self.start_serve()
        return self

    def _ok(self, url):
        try:
            return http("GET", url, timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self):
        """Stops both processes (SIGTERM); raises if either did not exit 0
        (a crash, or a sanitizer's report in a sanitized build)."""
        bad = []
        for p in (self.serve, self.mock):
            if p and p.alive():
                rc = p.stop()
                if rc != 0:
                    tail = open(p.log_path, errors="replace").read()[-3000:]
                    bad.append("%s exited %s:\n%s" % (os.path.basename(p.args[1]), rc, tail))
        if bad:
            raise AssertionError("\n".join(bad))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        try:
            self.stop()
        except AssertionError:
            if exc_type is None:
                raise

    # --- talking to serve -------------------------------------------------

    def post(self, payload, secret=SECRET, signature=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        sig = signature if signature is not None else sign(body, secret)
        if sig:
            headers["X-Hub-Signature-256"] = sig
        st, b, _ = http("POST", self.url + "/webhooks/whatsapp", body, headers)
        return st, b

    def say(self, text, frm=CUSTOMER, to=SHOP, expect=1, timeout=10):
        wamid, payload = text_payload(text, to=to, frm=frm)
        st, b = self.post(payload)
        assert st == 200, "webhook answered %d: %r" % (st, b)
        return self.replies(wamid, expect, timeout)

    def tap(self, button_id, frm=CUSTOMER, to=SHOP, expect=1, timeout=10):
        wamid, payload = button_payload(button_id, to=to, frm=frm)
        st, b = self.post(payload)
        assert st == 200, "webhook answered %d: %r" % (st, b)
        return self.replies(wamid, expect, timeout)

    def replies(self, wamid, expect=1, timeout=10):
        def got():
            msgs = self.mock_messages(context=wamid)
            return msgs if len(msgs) >= expect else None
        return wait_until(got, timeout=timeout, what="%d repl%s to %s" % (
            expect, "y" if expect == 1 else "ies", wamid))

    def _mock_log(self, what, query):
        """Every entry of the mock's log /_mock/<what> (matching query), oldest
        first, page by page."""
        out = []
        since = 0
        while True:
            q = dict(query, since=since, limit=10000)
            qs = "&".join("%s=%s" % kv for kv in q.items())
            st, b, _ = http("GET", "%s/_mock/%s?%s" % (self.bsp, what, qs))
            assert st == 200, st
            page = json.loads(b)
            out.extend(page[what])
            if len(page[what]) < 10000:
                return out
            since = page["next"]

    def mock_messages(self, **query):
        """Every message the mock BSP accepted (matching query), oldest first."""
        return self._mock_log("messages", query)

    def mock_sms(self):
        """Every SMS the mock's SMS gateway accepted, oldest first."""
        return self._mock_log("sms", {})

    def mock_faults(self, path="/_mock/faults", **faults):
        """Sets the mock's faults (path: /_mock/ai/faults for its AI endpoint's)."""
        st, b, _ = http("POST", self.bsp + path, json.dumps(faults).encode(),
                        {"Content-Type": "application/json"})
        assert st == 200, (st, b)
        return json.loads(b)

    def metrics(self):
        st, b, _ = http("GET", self.url + "/metrics")
        assert st == 200
        out = {}
        for line in b.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    # --- looking into the store (read-only, WAL allows it while serving) ---

    def sql(self, query, *args):
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def scalar(self, query, *args):
        rows = self.sql(query, *args)
        return rows[0][0] if rows else None


def body_text(msg):
    """The human text of a message the mock BSP received."""
    raw = msg.get("body")
    b = json.loads(raw) if isinstance(raw, str) else raw or {}
    if b.get("type") == "text":
        return b["text"]["body"]
    if b.get("type") == "interactive":
        return b["interactive"]["body"]["text"]
    return ""


def body_json(msg):
    raw = msg.get("body")
    return json.loads(raw) if isinstance(raw, str) else raw


def buttons(msg):
    b = body_json(msg)
    if b.get("type") != "interactive":
        return []
    return [(x["reply"]["id"], x["reply"]["title"]) for x in b["interactive"]["action"]["buttons"]]
