"""The commands around serve: help, provisioning, configuration, say, and
the operational endpoints."""

import os
import re
import subprocess
import tempfile
import time

from harness import (MUNIM, PG, SECRET, STORE, Stack, body_text, free_port, http, new_store,
                     pg_url, run, text_payload, wait_until)

COMMANDS = ["serve", "migrate", "tenant", "product", "seed", "outbox", "config", "mock-bsp",
            "say", "loadgen", "relay", "plan"]


def test_help_for_every_command():
    out = run("help").stdout
    for c in COMMANDS:
        assert c in out, c
        r = run(c, "--help")
        assert r.stdout.startswith("usage: munim " + c), r.stdout
    for flag in ("--db", "--listen", "--bsp-url", "--app-secret", "--verify-token",
                 "--access-token", "--graph-version"):
        assert flag in run("serve", "--help").stdout, flag
    r = run("frobnicate", check=False)
    assert r.returncode == 2 and 'unknown command "frobnicate"' in r.stderr, r.stderr
    r = run("seed", "--tenantz", "3", check=False)
    assert r.returncode == 2 and 'unknown option "--tenantz"' in r.stderr, r.stderr
    r = run("seed", "--tenants", "lots", check=False)
    assert r.returncode == 2 and 'invalid value "lots"' in r.stderr, r.stderr
    # --db-prepare is on or off; anything else is refused before the store opens
    db = os.path.join(tempfile.mkdtemp(), "never.db")
    r = run("migrate", "--db", db, "--db-prepare", "maybe", check=False)
    assert r.returncode == 1 and 'invalid value "maybe" for --db-prepare (on or off)' in r.stderr, \
        r.stderr
    assert not os.path.exists(db)


def test_serve_requires_secrets():
    r = subprocess.run([MUNIM, "serve", "--db", os.path.join(tempfile.mkdtemp(), "x.db")],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("MUNIM_")})
    assert r.returncode == 2, r
    assert "--app-secret is required" in r.stderr, r.stderr


def test_low_open_files_limit_is_said_and_served_through():
    """serve raises its open-files limit for its connections (4,096 webhook
    connections + 1,024 sends + 64); under a hard limit below that it says
    so with the numbers, raises what it can, and serves."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024))

    s = Stack()
    s.start_mock()
    log_path = os.path.join(s.dir, "serve.log")
    log = open(log_path, "ab")
    p = subprocess.Popen([MUNIM, "serve", *s.serve_db_args, "--listen",
                          "127.0.0.1:%d" % s.port,
                          "--bsp-url", s.bsp, "--app-secret", SECRET, "--verify-token", "v",
                          "--access-token", "t"], stdout=log, stderr=log,
                         preexec_fn=low_limit, cwd=s.dir)
    try:
        wait_until(lambda: s._ok(s.url + "/readyz"), timeout=15, what="serve ready")
        text = open(log_path).read()
        assert '"event":"serve.fd_limit"' in text, text
        assert "the open-files limit is 1024, below the 5184" in text, text
        limits = [ln for ln in open("/proc/%d/limits" % p.pid) if ln.startswith("Max open files")]
        assert limits[0].split()[3] == "1024", limits
        assert body_text(s.say("stock sugar")[0]).startswith("Sugar")
    finally:
        p.terminate()
        assert p.wait(20) == 0
        log.close()
        s.stop()


def test_config_from_environment_and_secrets_hidden():
    env = dict(os.environ, MUNIM_DB="/tmp/from-env.db", MUNIM_APP_SECRET="s3cret",
               MUNIM_GRAPH_VERSION="v99.0", MUNIM_LISTEN="127.0.0.1:7001")
    r = subprocess.run([MUNIM, "config", "--dump", "--listen", "127.0.0.1:7002"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "db = /tmp/from-env.db" in r.stdout
    assert "graph-version = v99.0" in r.stdout
    assert "listen = 127.0.0.1:7002" in r.stdout  # a flag beats the environment
    assert "app-secret = (set)" in r.stdout and "s3cret" not in r.stdout


def test_migrate_is_idempotent():
    """A fresh store gets every migration (each store counts its own), a
    second run none; a store that cannot be opened is exit 1."""
    db = new_store(fresh=True).url
    out = run("migrate", "--db", db).stdout
    m = re.search(r"(\d+) migration\(s\) applied, schema version (\d+)", out)
    assert m and int(m.group(1)) == int(m.group(2)) >= 1, out
    if STORE == "sqlite":
        assert m.group(2) == "12", out
    assert ("0 migration(s) applied, schema version %s" % m.group(2)
            in run("migrate", "--db", db).stdout)
    r = run("migrate", "--db", "/nonexistent-dir/x.db", check=False)
    assert r.returncode == 1 and "could not open store" in r.stderr, r.stderr
    if PG:
        # a server that does not answer
        r = run("migrate", "--db", pg_url("munim", port=free_port()), check=False)
        assert r.returncode == 1 and "could not open store" in r.stderr, r.stderr


def test_seed_contract():
    store = new_store()
    db = store.url
    run("migrate", "--db", db)
    out = run("seed", "--db", db, "--tenants", "3", "--first-phone-number-id",
              "200000000000001").stdout
    assert "seeded 3 tenant(s)" in out, out
    assert "seeded 0 tenant(s) (3 already present)" in run(
        "seed", "--db", db, "--tenants", "3", "--first-phone-number-id",
        "200000000000001").stdout
    out = run("tenant", "list", "--db", db).stdout
    for pid in ("200000000000001", "200000000000002", "200000000000003"):
        assert pid in out, out
    for t in (1, 2, 3):
        out = run("product", "list", "--db", db, "--tenant", str(t)).stdout
        for name in ("Rice", "Toor Dal", "Sugar", "Atta"):
            assert name in out, out
        assert "chawal" in out and "cheeni" in out
    low = store.sql("SELECT MIN(stock) FROM products WHERE sku IN "
                    "('RICE','DAL','SUGAR','ATTA')")[0][0]
    assert low >= 10 ** 9, low


def test_tenant_and_product_provisioning_errors():
    d = tempfile.mkdtemp()
    db = new_store(d).url
    run("migrate", "--db", db)
    r = run("tenant", "add", "--db", db, "--name", "Gupta Medical", check=False)
    assert r.returncode == 1 and "--phone-number-id are required" in r.stderr, r.stderr
    run("tenant", "add", "--db", db, "--name", "Gupta Medical", "--phone-number-id", "555",
        "--state-code", "09", "--upi-id", "gupta@upi", "--owners", "919811111111")
    r = run("tenant", "add", "--db", db, "--name", "Other", "--phone-number-id", "555",
            check=False)
    assert r.returncode == 1 and "already belongs to a tenant" in r.stderr, r.stderr
    r = run("tenant", "add", "--db", db, "--name", "Bad", "--phone-number-id", "556",
            "--state-code", "Maharashtra", check=False)
    assert r.returncode == 1 and "invalid state code" in r.stderr, r.stderr

    r = run("product", "add", "--db", db, "--tenant", "1", "--sku", "PCM", "--name",
            "Paracetamol 500", "--unit", "crate", "--price", "20", check=False)
    assert r.returncode == 1 and 'invalid unit "crate"' in r.stderr, r.stderr
    r = run("product", "add", "--db", db, "--tenant", "1", "--sku", "PCM", "--name",
            "Paracetamol 500", "--unit", "pc", "--price", "twenty", check=False)
    assert r.returncode == 1 and 'invalid price "twenty"' in r.stderr, r.stderr
    r = run("product", "add", "--db", db, "--tenant", "9", "--sku", "PCM", "--name", "P",
            "--price", "1", check=False)
    assert r.returncode == 1 and "no tenant 9" in r.stderr, r.stderr

    csv = os.path.join(d, "cat.csv")
    with open(csv, "w") as f:
        f.write("sku,name,aliases,unit,price,gst,hsn,stock\n"
                "PCM,Paracetamol 500,\"crocin,dolo\",packet,30.50,5,3004,120\n"
                "ORS,ORS Sachet,electral;ors,pc,22,5,3004,40.5\n")
    r = run("product", "import", "--db", db, "--tenant", "1", csv, check=False)
    # 40.5 pieces is not a whole number of base units: nothing is imported
    assert r.returncode == 1 and "cat.csv:3" in r.stderr and "invalid stock" in r.stderr, r.stderr
    assert "0 product(s)" in run("product", "list", "--db", db, "--tenant", "1").stdout
    with open(csv, "w") as f:
        f.write("sku,name,aliases,unit,price,gst,hsn,stock\n"
                "PCM,Paracetamol 500,\"crocin,dolo\",packet,30.50,5,3004,120\n"
                "ORS,ORS Sachet,electral;ors,pc,22,5,3004,40\n")
    assert "2 product(s) imported" in run("product", "import", "--db", db, "--tenant", "1",
                                          csv).stdout
    out = run("product", "list", "--db", db, "--tenant", "1").stdout
    assert "crocin,dolo" in out and "electral,ors" in out and "30.50" in out, out
    with open(csv, "w") as f:
        f.write("name,sku\nx,y\n")
    r = run("product", "import", "--db", db, "--tenant", "1", csv, check=False)
    assert r.returncode == 1 and "the header must be" in r.stderr, r.stderr


def test_say_prints_the_reply():
    with Stack() as s:
        r = subprocess.run([MUNIM, "say", "--url", s.url, "--bsp", s.bsp, "--app-secret", SECRET,
                            "--to", "100000000000001", "order 2 kg chawal"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "Rice" in r.stdout and "[Confirm] [Cancel]" in r.stdout, r.stdout
        r = subprocess.run([MUNIM, "say", "--url", s.url, "--bsp", s.bsp, "--app-secret",
                            "wrong", "--to", "100000000000001", "hi"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "401" in (r.stdout + r.stderr), (r.stdout, r.stderr)


def test_health_ready_metrics():
    with Stack() as s:
        assert http("GET", s.url + "/healthz")[0] == 200
        assert http("GET", s.url + "/readyz")[0] == 200
        assert http("GET", s.url + "/nope")[0] == 404
        assert http("DELETE", s.url + "/webhooks/whatsapp")[0] == 405
        s.say("stock rice")
        m = s.metrics()
        for name in ("munim_inbox_depth", "munim_processing_latency_seconds_count",
                     "munim_message_latency_seconds_count", "munim_dead_letters_total",
                     'munim_outbox_messages{priority="P2",state="accepted"}',
                     'munim_webhook_requests_total{code="200"}',
                     "munim_store_checkpoints_total", "munim_store_memory_bytes"):
            assert name in m, name
        assert m['munim_webhook_requests_total{code="200"}'] >= 1
        assert m["munim_processing_latency_seconds_count"] >= 1
        if STORE == "sqlite":  # libpq holds no page cache: 0
            assert m["munim_store_memory_bytes"] > 0, m
        # the fast path: processed in its webhook's commit, handed straight
        # to the sender
        assert m["munim_inline_processed_total"] == 1, m
        assert m["munim_send_direct_total"] == 1, m
        wait_until(lambda: s.metrics()["munim_message_latency_seconds_count"] >= 1,
                   what="reply latency observed")
        # the delivered status from the mock moves the gauge
        wait_until(lambda: s.metrics().get(
            'munim_outbox_messages{priority="P2",state="delivered"}', 0) >= 1,
            what="delivered gauge")
        assert s.metrics()["munim_statuses_applied_total"] >= 1
        # a restarted serve starts its gauges from the store's own counts
        delivered = s.metrics()['munim_outbox_messages{priority="P2",state="delivered"}']
        s.serve.stop()
        s.start_serve()
        m = s.metrics()
        assert m['munim_outbox_messages{priority="P2",state="delivered"}'] == delivered, m
        assert m['munim_outbox_messages{priority="P2",state="pending"}'] == 0, m


def test_worker_path_without_fast_path():
    """With --inline-max 0 every message goes through the inbox to a worker
    (which hands its reply to the sender after syncing its batch): the same
    answers."""
    with Stack(serve_args=["--inline-max", "0"]) as s:
        assert "Rice" in body_text(s.say("stock rice")[0])
        m = s.metrics()
        assert m["munim_inline_processed_total"] == 0, m
        assert m["munim_messages_processed_total"] == 1, m
        # one send: handed straight to the sender by the worker's batch, or,
        # when the sender had no slot for it at that moment (sender_reserve:
        # a loaded machine, a start-up not finished), claimed from the outbox
        assert m['munim_provider_sends_total{provider="bsp1",result="started"}'] == 1, m
        assert m["munim_send_direct_total"] <= 1, m


def test_restart_with_waiting_messages():
    """Messages stored by an ingest-only serve wait in the inbox; a serve with
    every role reads whose they are at start-up, answers them, and a customer
    with nothing waiting is answered too."""
    s = Stack(serve_args=["--roles", "ingest"])
    try:
        s.start()
        waiting = []
        for text in ("stock rice", "stock sugar"):
            wamid, payload = text_payload(text, frm="919800000077")
            assert s.post(payload)[0] == 200
            waiting.append(wamid)
        assert s.serve.stop() == 0
        s.serve_args = []
        s.start_serve()
        log = open(os.path.join(s.dir, "serve.log")).read()
        assert '"event":"serve.backlog_loaded","msg":"2 messages wait' in log, log[-2000:]
        assert len(s.say("stock rice", frm="919800000078")) == 1
        for w in waiting:
            assert len(s.replies(w)) == 1
    finally:
        s.stop()


def test_restart_resumes_pending_work():
    """Messages acknowledged while the sender cannot reach the provider are
    sent after a restart (SIGTERM), none lost, none twice."""
    with Stack(serve_args=["--retry-base-ms", "50", "--retry-cap-ms", "100",
                           "--send-max-attempts", "100"]) as s:
        s.mock_faults(outage=True)
        ids = []
        for i in range(5):
            wamid, payload = text_payload("stock rice")
            assert s.post(payload)[0] == 200
            ids.append(wamid)
        s.serve.stop()
        s.mock_faults(outage=False)
        s.start_serve()
        for w in ids:
            assert len(s.replies(w)) == 1
        assert "serve.ready" in open(os.path.join(s.dir, "serve.log")).read()


def test_serve_roles():
    """serve --roles ingest only stores webhooks; the same store served with
    every role processes and answers them; an unknown or empty role list is
    refused with exit 2."""
    s = Stack(serve_args=["--roles", "ingest"])
    try:
        s.start()
        wamid, payload = text_payload("stock rice")
        assert s.post(payload)[0] == 200
        # stored, pending (state 0)
        assert s.sql("SELECT state FROM inbox WHERE ext_id = ?", wamid) == [(0,)]
        assert http("GET", s.url + "/readyz")[0] == 200
        assert http("GET", s.url + "/metrics")[0] == 200
        time.sleep(1.0)
        assert s.mock_messages(context=wamid) == []
        assert s.sql("SELECT state FROM inbox WHERE ext_id = ?", wamid) == [(0,)]
        assert s.serve.stop() == 0
        s.serve_args = []
        s.start_serve()
        assert len(s.replies(wamid)) == 1
        # without ingest there is no webhook route, but health and metrics answer
        assert s.serve.stop() == 0
        s.serve_args = ["--roles", "worker,sender"]
        s.start_serve()
        assert http("POST", s.url + "/webhooks/whatsapp", b"{}",
                    {"Content-Type": "application/json"})[0] == 404
        assert http("GET", s.url + "/healthz")[0] == 200
        assert http("GET", s.url + "/metrics")[0] == 200
    finally:
        s.stop()
    for roles in ("ingest,bogus", "", "ingest,"):
        r = run("serve", "--db", s.serve_db, "--app-secret", SECRET, "--verify-token", "v",
                "--access-token", "t", "--roles", roles, check=False)
        bad = roles.split(",")[-1] if roles else ""
        assert r.returncode == 2, (roles, r)
        want = 'unknown role "%s" (ingest, worker, sender, controller)' % bad
        assert want in r.stderr, r.stderr
