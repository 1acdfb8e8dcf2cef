"""What serve's processes share through Redis (--redis), end to end.

The budget drill: two sender processes (serve --roles sender --redis) drain
one shop's broadcast, each through a mock BSP of its own so that each one's
sends can be counted apart, beside an ingest and worker process.
PostgreSQL only: a SQLite store is one process's file. While Redis runs,
the fleet sends at most 80 a second for the number; Redis killed (kill -9)
under load, sending goes on with each sender at its share, 80 / 2 live
senders; Redis started again, the budget is shared again. Rates are read
from the mocks' logs (received_at of each send).

Breakers (either store): a provider another sender holds open in Redis
opens this sender's breaker, and replies wait until it may probe; a breaker
this sender opens is published for the others."""

import os
import shutil
import socket
import time

from harness import (MUNIM, OWNER, PG, SECRET, TOKEN, VERIFY, Proc, Skip, Stack, free_port,
                     http, metrics_at, text_payload, wait_until)

PER_SECOND = 80
CUSTOMERS = 3000
# seconds of each phase, and how much of a phase's start the 1-second
# windows leave out: a token bucket lets a full bucket's burst through
# there (a new shared bucket when Redis comes back, a new local one at the
# loss)
SHARED_S, ALONE_S, AGAIN_S = 9, 9, 7
SETTLE_S = 1.5


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
            c.sendall(b"PING\r\n")
            return c.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(dir, port):
    p = Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", dir], os.path.join(dir, "redis.log"))
    wait_until(lambda: redis_ping(port), timeout=10, what="redis-server to answer")
    return p


def redis_cmd(port, *args):
    """One command over RESP; the reply as int, bytes, None or a list."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
        req = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b"$%d\r\n%s\r\n" % (len(a), a)
        c.sendall(req)
        f = c.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"+":
                return rest
            if kind == b"-":
                raise AssertionError("redis: %s" % rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:n]
                return data
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            raise AssertionError("redis: unexpected %r" % line)
        return read()


def sends(bsp):
    """received_at (ms) of every send the mock at bsp took, oldest first."""
    out, since = [], 0
    while True:
        st, b, _ = http("GET", "%s/_mock/replies?since=%d" % (bsp, since))
        assert st == 200, st
        lines = b.decode().splitlines()
        since = int(lines[0].split()[1])
        out.extend(int(line.split()[1]) for line in lines[1:] if line)
        if len(lines) <= 1:
            return out


def count(ts, a, b):
    return sum(1 for t in ts if a <= t < b)


def max_window(ts, a, b, w=1000):
    """Most sends in any w ms wholly inside [a, b)."""
    ts = sorted(t for t in ts if a <= t < b)
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] < t - w + 1:
            j += 1
        if t - w + 1 >= a:
            best = max(best, i - j + 1)
    return best


def test_redis_budget_shared_then_local_share_then_shared_again():
    if not PG:
        raise Skip("PostgreSQL only: two sender processes share one store")
    if not shutil.which("redis-server"):
        raise Skip("redis-server is not installed (scripts/deps.sh)")
    rport = free_port()
    redis_url = "redis://127.0.0.1:%d" % rport
    s = Stack(serve_args=["--roles", "ingest,worker", "--redis", redis_url],
              mock_args=["--delivered-statuses", "0"])
    now = int(time.time() * 1000)
    s.executemany("INSERT INTO customers (tenant_id, wa_id, name, last_inbound_at)"
                  " VALUES (1, ?, 'C', ?)", [("9196%08d" % i, now - 3600 * 1000)
                                             for i in range(CUSTOMERS)])
    redis = start_redis(s.dir, rport)
    s.start()
    # the second sender's own mock BSP
    bsp2_port = free_port()
    bsp2 = "http://127.0.0.1:%d" % bsp2_port
    Proc([MUNIM, "mock-bsp", "--listen", "127.0.0.1:%d" % bsp2_port, "--app-secret", SECRET,
          "--webhook-url", s.url + "/webhooks/whatsapp", "--delivered-statuses", "0"],
         os.path.join(s.dir, "mock2.log"))
    wait_until(lambda: s._ok(bsp2 + "/_mock/stats"), what="the second mock-bsp")
    senders = []
    for i, bsp in enumerate((s.bsp, bsp2)):
        port = free_port()
        p = Proc([MUNIM, "serve", *s.serve_db_args, "--listen", "127.0.0.1:%d" % port,
                  "--bsp-url", bsp, "--app-secret", SECRET, "--verify-token", VERIFY,
                  "--access-token", TOKEN, "--roles", "sender", "--redis", redis_url,
                  "--pace-per-number", str(PER_SECOND), "--send-inflight", "64"],
                 os.path.join(s.dir, "sender%d.log" % (i + 1)))
        url = "http://127.0.0.1:%d" % port
        wait_until(lambda: s._ok(url + "/readyz"), timeout=15, what="sender %d ready" % (i + 1))
        senders.append((p, url, bsp))
    # both registered: each counts two live senders
    wait_until(lambda: all(metrics_at(u).get("munim_send_senders_live") == 2
                           for _, u, _ in senders), timeout=10, what="two live senders")

    st, _ = s.post(text_payload("broadcast Diwali sale", frm=OWNER)[1])
    assert st == 200
    first = wait_until(lambda: (sends(s.bsp) + sends(bsp2)) or None, timeout=20,
                       what="the broadcast flowing")
    t0 = min(first)
    time.sleep(max(0, t0 / 1000 + SHARED_S - time.time()))
    t_kill = int(time.time() * 1000)
    redis.kill9()
    time.sleep(ALONE_S)
    down = [metrics_at(u) for _, u, _ in senders]
    t_back = int(time.time() * 1000)
    start_redis(s.dir, rport)
    time.sleep(AGAIN_S)
    t_end = int(time.time() * 1000)
    up = [metrics_at(u) for _, u, _ in senders]

    per = [sends(bsp) for _, _, bsp in senders]
    both = per[0] + per[1]
    share = PER_SECOND // 2
    report = []

    def phase(name, a, b):
        secs = (b - a) / 1000.0
        n = count(both, a, b)
        each = [count(x, a, b) for x in per]
        peak = max_window(both, a + SETTLE_S * 1000, b)
        peaks = [max_window(x, a + SETTLE_S * 1000, b) for x in per]
        report.append("%s %.1f s: %d sends (%.1f/s; %s), busiest second %d (%s)" % (
            name, secs, n, n / secs, " + ".join("%.1f/s" % (e / secs) for e in each), peak,
            " + ".join(str(p) for p in peaks)))
        return secs, n, each, peak, peaks

    secs, n, each, peak, _ = phase("shared", t0, t_kill)
    # the bucket's burst once, then the rate; allowances held (10 a sender)
    assert n <= PER_SECOND * (secs + 1) + 20, report
    assert peak <= PER_SECOND + 20, report
    assert n >= PER_SECOND * secs * 0.75, report  # the budget is used
    assert min(each) > 0, report  # by both

    secs, n, each, peak, peaks = phase("redis killed", t_kill, t_back)
    # each sender within its share: a local bucket's burst, then the share
    for e, p in zip(each, peaks):
        assert e <= share * (secs + 1) + 10, report
        assert p <= share + 5, report
        assert e >= share * secs * 0.6, report  # and sending goes on
    for m in down:
        assert m["munim_redis_up"] == 0, m
        assert m["munim_send_number_rate"] == share, m
        assert m["munim_redis_lost_total"] == 1, m

    secs, n, each, peak, _ = phase("redis back", t_back, t_end)
    assert n <= PER_SECOND * (secs + 1) + 20, report
    assert peak <= PER_SECOND + 20, report
    assert n >= PER_SECOND * (secs - 2) * 0.75, report
    for m in up:
        assert m["munim_redis_up"] == 1, m
        assert m["munim_send_number_rate"] == PER_SECOND, m
        assert m["munim_send_senders_live"] == 2, m
    print("redis budget drill: " + "; ".join(report))

    for p, _, _ in senders:
        assert p.stop() == 0
    for line in open(os.path.join(s.dir, "sender1.log")).read().splitlines():
        if "send.redis_lost" in line or "send.redis_back" in line:
            print("sender1: " + line)
    log = open(os.path.join(s.dir, "sender1.log")).read()
    assert log.count("send.redis_lost") == 1 and log.count("send.redis_back") == 1, log[-3000:]
    s.stop()


def test_breaker_state_shared_through_redis():
    if not shutil.which("redis-server"):
        raise Skip("redis-server is not installed (scripts/deps.sh)")
    rport = free_port()
    s = Stack(serve_args=["--redis", "redis://127.0.0.1:%d" % rport, "--retry-base-ms", "50",
                          "--retry-cap-ms", "200", "--breaker-open-ms", "60000"])
    start_redis(s.dir, rport)
    with s:
        wait_until(lambda: s.metrics().get("munim_redis_up") == 1, timeout=10,
                   what="the sender on redis")
        key = "munim:breaker:" + s.bsp
        # another sender saw the BSP fail and holds it open for 3 s
        secs, usecs = (int(x) for x in redis_cmd(rport, "TIME"))
        until = secs * 1000 + usecs // 1000 + 3000
        redis_cmd(rport, "SET", key, until, "PX", 3000)
        state = 'munim_breaker_state{provider="bsp1"}'
        wait_until(lambda: s.metrics().get(state) == 1, timeout=5,
                   what="the breaker opened from redis")
        assert s.metrics()["munim_breaker_shared_opens_total"] == 1
        t0 = time.time()
        wamid, payload = text_payload("stock atta")
        assert s.post(payload)[0] == 200
        time.sleep(1)
        assert s.mock_messages(context=wamid) == [], "a reply went while the breaker was open"
        # once the shared end (and this sender's jitter) passed: a probe, the reply
        s.replies(wamid, timeout=15)
        waited = time.time() - t0
        assert waited >= 1.5, waited
        for i in range(3):  # probes enough to close it
            s.say("stock atta", frm="91970000%04d" % i, timeout=15)
        wait_until(lambda: s.metrics().get(state) == 0, timeout=10, what="the breaker closed")
        assert redis_cmd(rport, "GET", key) is None  # expired with the open period

        # this sender's own breaker opens: the others are told
        s.mock_faults(outage=True)
        for i in range(3):
            assert s.post(text_payload("stock atta", frm="91980000%04d" % i)[1])[0] == 200
        wait_until(lambda: s.metrics().get(state) == 1, timeout=15,
                   what="the breaker opened by failures")
        left = redis_cmd(rport, "PTTL", key)
        assert 50000 <= left <= 73000, left  # 60 s and up to 20 % jitter
        s.mock_faults(outage=False)
