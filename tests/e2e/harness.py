"""End-to-end test harness: real bin/munim processes on 127.0.0.1.

Each test gets its own temporary directory and store, a mock BSP and a
`serve` on free ports, talks to them over real HTTP, and stops them by
PID. Only the Python standard library (and, against PostgreSQL, psql) is
used.

The store is a SQLite file in the test's directory, or, when
MUNIM_E2E_PG is set (a superuser url without a database, e.g.
postgresql://postgres@127.0.0.1:5432), a PostgreSQL database of its own:
  - the first store of a run migrates a template database with
    `munim migrate`; every store after that is CREATE DATABASE ... TEMPLATE
    it (munim_e2e_<pid>_<n>), so a Stack's own migrate applies nothing;
    new_store(fresh=True) gives an empty database instead;
  - Stack(db_dir=D) maps D to one database, so a test that starts a second
    Stack on the same directory reaches the same store;
  - serve connects as the unprivileged role munim_app (given LOGIN once)
    when the server lets it log in (MUNIM_E2E_PG_SERVE_SUPERUSER=1: as the
    superuser, munim then sets the role per transaction), every other
    command as the superuser;
  - end_test() (tests/e2e/run calls it after each test) kills the
    processes a test left running and drops its databases WITH (FORCE);
    the template is dropped at exit.
With MUNIM_E2E_PGBOUNCER set as well (the url of a PgBouncer in
transaction pooling mode in front of that server, e.g.
postgresql://postgres@127.0.0.1:6432; tests/run-all starts one with
scripts/pgbouncer-server), munim's processes reach their databases through
it: every munim command's --db and serve's go through PgBouncer, statements
unprepared (MUNIM_DB_PREPARE=off in the environment, --db-prepare off on
serve), and serve LISTENs on the server itself (--db-listen, the direct
url: LISTEN needs a session). The suite's own psql, and making and dropping
databases, stay direct.
Looking into the store (Stack.sql/scalar/executemany/hold_lock) goes through
sqlite3, or psql as the superuser (row-level security does not hide rows
from it), with '?' placeholders, and integers back as int either way.
Tests about SQLite files themselves call sqlite_only(), which skips them
against PostgreSQL.
"""

import atexit
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
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
PG = os.environ.get("MUNIM_E2E_PG", "").strip()
STORE = "postgresql" if PG else "sqlite"  # which store the suite runs against
# a PgBouncer in transaction mode in front of PG, for munim's own connections
PGBOUNCER = os.environ.get("MUNIM_E2E_PGBOUNCER", "").strip() if PG else ""
if PGBOUNCER:
    # every munim command the suite runs, however it starts it: transaction
    # pooling cannot carry protocol-level prepared statements
    os.environ["MUNIM_DB_PREPARE"] = "off"


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
        # in the log's directory: what a process writes beside itself (a
        # PostgreSQL-backed serve's send journal) stays in the test's dir
        self.p = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                  env=env or os.environ.copy(),
                                  cwd=os.path.dirname(os.path.abspath(log_path)))
        _procs.append(self)

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


def metrics_at(url):
    """The Prometheus samples of the munim process at url, by name."""
    st, b, _ = http("GET", url + "/metrics")
    assert st == 200
    out = {}
    for line in b.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


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


# --- the store: a SQLite file or a PostgreSQL database ----------------------


class Skip(Exception):
    """Raised by a test that does not apply to the store the suite runs
    against; tests/e2e/run counts it as skipped."""


def sqlite_only(why):
    """Skips the calling test against PostgreSQL: it is about SQLite's file
    itself (why says what), not about munim."""
    if PG:
        raise Skip("SQLite only: " + why)


_procs = []  # every Proc started, for end_test
_stores = []  # the PostgreSQL stores made since the last end_test
_by_dir = {}  # db_dir -> its PostgreSQL store, for this test
_pg = {"seq": 0, "template": None, "app_login": False, "shape": None}
# Databases of finished tests, emptied for the next: a copy of the template
# (some 1,900 relations) costs seconds, emptying one a fraction of that.
_pool = []
_EMPTY_SQL = """SET session_replication_role = replica;
DO $$ DECLARE t text; BEGIN
 FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname <> 'schema_migrations' LOOP
  EXECUTE format('DELETE FROM %I', t);
 END LOOP;
 FOR t IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
  PERFORM setval(quote_ident(t), 1, false);
 END LOOP;
END $$;
"""
# what a test can change that emptying does not give back: relations,
# functions, triggers
_SHAPE_SQL = """SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n
 ON n.oid = c.relnamespace WHERE n.nspname = 'public') || '/' ||
 (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public') || '/' || (SELECT count(*) FROM pg_trigger);
"""
# MUNIM_E2E_PG_SERVE_SUPERUSER=1: serve too connects as the superuser (munim
# then sets the role munim_app in each transaction) instead of as munim_app
_SERVE_SUPERUSER = os.environ.get("MUNIM_E2E_PG_SERVE_SUPERUSER", "") not in ("", "0")

# psql's unaligned output, with separators no value holds
_FS, _RS, _NULL, _SPLIT = "\x1f", "\x1e", "\x02", "\x1dSPLIT"


def pg_url(dbname, user=None, port=None, base=None):
    """MUNIM_E2E_PG (or base) with its database set to dbname, and, when
    given, its user replaced by user (without a password) and its port by
    port."""
    u = urllib.parse.urlsplit(base or PG)
    userinfo, _, hostport = u.netloc.rpartition("@")
    if user is not None:
        userinfo = user
    if port is not None:
        host = u.hostname or "127.0.0.1"
        hostport = "%s:%d" % ("[%s]" % host if ":" in host else host, port)
    netloc = (userinfo + "@" if userinfo else "") + hostport
    return urllib.parse.urlunsplit((u.scheme, netloc, "/" + dbname, u.query, ""))


def _psql(url, script, timeout=300):
    """Runs script through psql at url (stopping at the first error);
    returns its standard output."""
    try:
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-F", _FS, "-R", _RS, "-P", "null=" + _NULL, "-d", url],
                           input=script, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise AssertionError("psql is needed to run the suite against PostgreSQL "
                             "(MUNIM_E2E_PG is set): install postgresql-client")
    if r.returncode != 0:
        raise AssertionError("psql failed (%d) on %s: %s" % (r.returncode, script[:500],
                                                             r.stderr.strip()))
    return r.stdout


def _admin(sql):
    """One statement as the superuser, outside any database of the suite."""
    return _psql(pg_url("postgres"), sql + ";\n")


def _literal(v):
    """v as an SQL literal PostgreSQL reads as sqlite3 would bind it."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    if isinstance(v, str):
        if "\0" in v:
            raise ValueError("PostgreSQL text cannot hold NUL")
        return "'" + v.replace("'", "''") + "'"
    raise TypeError("no SQL literal for %r" % (v,))


def bind(query, args):
    """query with each '?' outside quotes replaced by the next of args as a
    literal (sqlite3's qmark style, for psql)."""
    out, i, quote = [], 0, None
    for ch in query:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            if i >= len(args):
                raise ValueError("too few arguments for %r" % query)
            out.append(_literal(args[i]))
            i += 1
            continue
        out.append(ch)
    if i != len(args):
        raise ValueError("%d arguments for %d placeholders in %r" % (len(args), i, query))
    return "".join(out)


def _convert(typ, text):
    """One value of psql's output, typed as sqlite3 would give it."""
    if text == _NULL:
        return None
    if typ in ("smallint", "integer", "bigint", "oid"):
        return int(text)
    if typ.startswith("numeric"):
        return int(text) if "." not in text else float(text)
    if typ in ("real", "double precision"):
        return float(text)
    if typ == "boolean":
        return 1 if text == "t" else 0
    if typ == "bytea":
        return bytes.fromhex(text[2:])
    return text


class SqliteStore:
    """A store in a SQLite file (path)."""

    def __init__(self, path):
        self.path = path
        self.url = path  # for every munim command's --db
        self.serve_url = path  # for serve's
        self.serve_args = []  # what serve needs besides --db

    def sql(self, query, *args):
        # read-only: WAL lets it read while serve writes
        con = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=10)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def executemany(self, query, rows):
        con = sqlite3.connect(self.path, timeout=10)
        try:
            con.executemany(query, rows)
            con.commit()
        finally:
            con.close()

    @contextlib.contextmanager
    def hold_lock(self):
        con = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()


class PgStore:
    """A store in a PostgreSQL database of its own (name), made from the
    migrated template unless fresh."""

    def __init__(self, fresh=False):
        self.fresh = fresh
        if not fresh and _pool:
            self.name = _pool.pop()
            _psql(pg_url(self.name), _EMPTY_SQL)
        else:
            _pg["seq"] += 1
            self.name = "munim_e2e_%d_%d" % (os.getpid(), _pg["seq"])
            template = None if fresh else _template()
            _admin("CREATE DATABASE %s%s" % (self.name,
                                             " TEMPLATE " + template if template else ""))
        _stores.append(self)
        self.direct_url = pg_url(self.name)  # the suite's own psql
        user = "munim_app" if _pg["app_login"] else None
        self.url = pg_url(self.name, base=PGBOUNCER or None)
        self.serve_url = pg_url(self.name, user, base=PGBOUNCER or None)
        self.serve_args = []
        if PGBOUNCER:
            self.serve_args = ["--db-prepare", "off", "--db-listen", pg_url(self.name, user)]

    def sql(self, query, *args):
        q = bind(query, args).strip().rstrip(";")
        out = _psql(self.direct_url, "%s \\gdesc\n\\echo '%s'\n%s \\g\n" % (q, _SPLIT, q))
        desc, _, rows = out.partition("\n" + _SPLIT + "\n")
        types = [d.split(_FS)[1] for d in desc.split(_RS)] if _FS in desc else []
        rows = rows[:-1] if rows.endswith("\n") else rows
        if not rows:
            return []
        return [tuple(_convert(t, v) for t, v in zip(types, r.split(_FS)))
                for r in rows.split(_RS)]

    def executemany(self, query, rows):
        """An INSERT ... VALUES (...) goes as multi-row VALUES, 1,000 rows a
        statement; anything else a statement a row. One transaction."""
        m = re.match(r"(?is)^(\s*INSERT\b.*\bVALUES\s*)(\(.*\))\s*;?\s*$", query)
        stmts = []
        rows = list(rows)
        if m:
            for i in range(0, len(rows), 1000):
                stmts.append(m.group(1) + ",".join(bind(m.group(2), r)
                                                   for r in rows[i:i + 1000]) + ";")
        else:
            stmts = [bind(query, r) + ";" for r in rows]
        _psql(self.direct_url, "BEGIN;\n" + "\n".join(stmts) + "\nCOMMIT;\n")

    @contextlib.contextmanager
    def hold_lock(self):
        # what every webhook writes: the inbox, locked against all access
        p = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                              "-d", self.direct_url],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            p.stdin.write("BEGIN;\nLOCK TABLE inbox IN ACCESS EXCLUSIVE MODE;\n"
                          "\\echo locked\n")
            p.stdin.flush()
            line = p.stdout.readline()
            assert line.strip() == "locked", "could not lock the inbox: %r" % line
            yield
            p.stdin.write("ROLLBACK;\n")
        finally:
            p.stdin.close()
            p.wait(30)

    def drop(self):
        """Back to the pool when emptying can make it as new, else dropped."""
        if not self.fresh and _psql(self.direct_url, _SHAPE_SQL).strip() == _pg["shape"]:
            _pool.append(self.name)
            return
        _admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)


def _template():
    """The migrated template database of this run (made on first use), and
    munim_app allowed to log in when the server accepts that."""
    if _pg["template"] is None:
        name = "munim_e2e_%d_tmpl" % os.getpid()
        _admin("CREATE DATABASE %s" % name)
        try:
            run("migrate", "--db", pg_url(name))
        except AssertionError:
            _admin("DROP DATABASE %s WITH (FORCE)" % name)
            raise
        _pg["template"] = name
        _pg["shape"] = _psql(pg_url(name), _SHAPE_SQL).strip()
        if _SERVE_SUPERUSER:
            return name
        _admin("ALTER ROLE munim_app LOGIN")
        try:
            _psql(pg_url(name, "munim_app"), "SELECT 1;\n", timeout=30)
            _pg["app_login"] = True
        except AssertionError:
            _pg["app_login"] = False  # e.g. password auth: serve uses the superuser url
    return _pg["template"]


def new_store(dir=None, fresh=False):
    """A new store of the test's own. SQLite: munim.db in dir (a new temp
    dir by default), empty. PostgreSQL: a new database, already migrated
    unless fresh (run `munim migrate` either way: it applies what is
    missing). .url is for munim's --db, .serve_url for serve's, .serve_args
    what serve needs besides (through PgBouncer: --db-listen, --db-prepare)."""
    if PG:
        return PgStore(fresh=fresh)
    return SqliteStore(os.path.join(dir or tempfile.mkdtemp(prefix="munim-e2e-"), "munim.db"))


def store_in(dir):
    """The store of the directory dir: the same one for every call in a test."""
    if not PG:
        return SqliteStore(os.path.join(dir, "munim.db"))
    if dir not in _by_dir:
        _by_dir[dir] = PgStore()
    return _by_dir[dir]


def end_test():
    """After each test: kills the processes it left running, drops its
    PostgreSQL databases."""
    for p in _procs:
        if p.alive():
            p.kill9()
    del _procs[:]
    _by_dir.clear()
    while _stores:
        _stores.pop().drop()


def _at_exit():
    end_test()
    while _pool:
        _admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _pool.pop())
    if _pg["template"]:
        _admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _pg["template"])
        _pg["template"] = None


atexit.register(_at_exit)


class Stack:
    """A mock BSP and a serve process over a fresh store in a temp dir (or
    over store, an object like PgStore that the test made itself)."""

    def __init__(self, tenants=1, serve_args=(), mock_args=(), db_dir=None, seed=True,
                 store=None):
        self.dir = tempfile.mkdtemp(prefix="munim-e2e-")
        self.store = store or store_in(db_dir or self.dir)
        self.db = self.store.url  # --db for munim's commands
        self.serve_db = self.store.serve_url  # --db for serve
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

    @property
    def serve_db_args(self):
        """serve's --db and what goes with it (through PgBouncer: --db-listen
        and --db-prepare)."""
        return ["--db", self.serve_db, *self.store.serve_args]

    def start_mock(self):
        self.mock = Proc([MUNIM, "mock-bsp", "--listen", "127.0.0.1:%d" % self.mock_port,
                          "--app-secret", SECRET,
                          "--webhook-url", self.url + "/webhooks/whatsapp", *self.mock_args],
                         os.path.join(self.dir, "mock.log"))
        wait_until(lambda: self._ok(self.bsp + "/_mock/stats"), what="mock-bsp to listen")

    def start_serve(self, wait_ready=True, port=None, extra=(), log="serve.log"):
        """Starts serve on self.port as self.serve; with port, another serve
        process of the same store on that port, which it returns (extra: its
        own arguments after serve_args; log: its log's name in self.dir)."""
        proc = Proc([MUNIM, "serve", *self.serve_db_args,
                     "--listen", "127.0.0.1:%d" % (port or self.port), "--bsp-url", self.bsp,
                     "--app-secret", SECRET, "--verify-token", VERIFY,
                     "--access-token", TOKEN, *self.serve_args, *extra],
                    os.path.join(self.dir, log))
        if port is None:
            self.serve = proc
        if wait_ready:
            wait_until(lambda: self._ready(proc, port), timeout=15, what="serve ready")
        return proc

    def start(self):
        self.start_mock()
        self.start_serve()
        return self

    def _ready(self, proc, port=None):
        """proc (listening on port, by default self.port) answers /readyz;
        raises, with its log, if it exited."""
        if not proc.alive():
            raise AssertionError("serve exited %s before it was ready:\n%s" % (
                proc.p.returncode, open(proc.log_path, errors="replace").read()[-3000:]))
        return self._ok("http://127.0.0.1:%d/readyz" % (port or self.port))

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
        return metrics_at(self.url)

    # --- looking into the store -------------------------------------------

    def sql(self, query, *args):
        """The rows of query ('?' placeholders for args) as tuples, read
        while serve runs; integers come back as int."""
        return self.store.sql(query, *args)

    def scalar(self, query, *args):
        rows = self.sql(query, *args)
        return rows[0][0] if rows else None

    def executemany(self, query, rows):
        """Writes: query once per row of args, in one transaction (in SQL
        that both stores accept)."""
        self.store.executemany(query, rows)

    def hold_lock(self):
        """A context that holds the store locked against the webhooks'
        writes: SQLite's EXCLUSIVE lock on the file; PostgreSQL's ACCESS
        EXCLUSIVE lock on the inbox."""
        return self.store.hold_lock()


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
