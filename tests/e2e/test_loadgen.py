"""munim loadgen against a real serve and mock BSP: every message answered
and replied to exactly once, the JSON line, the stepped profile with one
text, and the exit statuses for an unreachable stack and bad arguments."""

import json
import subprocess

from harness import MUNIM, SECRET, STORE, Stack, body_text, free_port


def loadgen(*args, timeout=120):
    return subprocess.run([MUNIM, "loadgen", *args], capture_output=True, text=True,
                          timeout=timeout)


def report(r):
    assert r.returncode == 0, "loadgen exited %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.rstrip("\n").split("\n")
    return json.loads(lines[-1])


# The rate this test drives: the load generator is under test, not the store;
# the PostgreSQL store keeps up with less on this machine today (see
# docs/postgresql.md, "Speed").
LOADGEN_RATE = 200 if STORE == "sqlite" else 50


def test_loadgen_constant_rate():
    with Stack(tenants=2) as s:
        rep = report(loadgen("--url", s.url, "--bsp", s.bsp, "--app-secret", SECRET,
                             "--rate", str(LOADGEN_RATE), "--duration", "3", "--tenants", "2"))
        n = LOADGEN_RATE * 3
        assert rep["profile"] == "constant" and rep["rate"] == LOADGEN_RATE, rep
        assert rep["sent"] == n, rep
        assert rep["ok"] == n, rep
        assert rep["codes"] == {"200": n}, rep
        assert rep["errors"] == 0, rep
        assert rep["lost"] == 0, rep
        assert rep["duplicates"] == 0, rep
        assert rep["unexpected_replies"] == 0, rep
        assert rep["e2e_ms"]["p50"] > 0, rep
        assert rep["e2e_ms"]["p50"] <= rep["e2e_ms"]["p99"] <= rep["e2e_ms"]["max"], rep
        assert rep["webhook_ms"]["p50"] > 0, rep
        assert rep["achieved_rate"] > LOADGEN_RATE * 0.95, rep
        assert "steps" not in rep
        # both shops answered: the replies came from both phone_number_ids
        shops = {m["phone_number_id"] for m in s.mock_messages()}
        assert shops == {"100000000000001", "100000000000002"}, shops
        # the write-ahead log filled and was copied by the store's own
        # thread, not inside a commit, with nothing lost above (SQLite's
        # WAL: a PostgreSQL server checkpoints by itself)
        if STORE == "sqlite":
            assert s.metrics()["munim_store_checkpoints_total"] >= 1


def test_loadgen_step_profile_one_text():
    with Stack(tenants=1) as s:
        rep = report(loadgen("--url", s.url, "--bsp", s.bsp, "--app-secret", SECRET,
                             "--profile", "step", "--rate", "50", "--step", "50",
                             "--step-every", "1", "--duration", "2", "--customers", "5",
                             "--text", "stock cheeni"))
        assert rep["sent"] == 150 and rep["ok"] == 150 and rep["lost"] == 0, rep
        assert [st["rate"] for st in rep["steps"]] == [50, 100], rep
        assert [st["sent"] for st in rep["steps"]] == [50, 100], rep
        assert all(st["e2e_ms"]["p50"] > 0 for st in rep["steps"]), rep
        msgs = s.mock_messages()
        assert len(msgs) == 150
        assert all(body_text(m).startswith("Sugar") for m in msgs), body_text(msgs[0])
        assert len({m["to"] for m in msgs}) == 5


def test_loadgen_unreachable_is_exit_1():
    r = loadgen("--url", "http://127.0.0.1:%d" % free_port(),
                "--bsp", "http://127.0.0.1:%d" % free_port(), "--duration", "1")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "could not reach the mock BSP" in r.stderr, r.stderr
    assert r.stdout == "", r.stdout

    s = Stack(seed=False)
    s.start_mock()
    try:
        r = loadgen("--url", "http://127.0.0.1:%d" % free_port(), "--bsp", s.bsp,
                    "--duration", "1")
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "could not reach munim at http://127.0.0.1:" in r.stderr, r.stderr
    finally:
        s.stop()


def test_loadgen_bad_arguments_are_exit_2():
    for args in (["--rate", "0"], ["--rate", "abc"], ["--rate", "100001"],
                 ["--duration", "3601"], ["--profile", "zigzag"],
                 ["--rate", "100000", "--duration", "101"],
                 ["--profile", "step", "--rate", "99000", "--step", "1000",
                  "--step-every", "1", "--duration", "3"],
                 ["--text", ""], ["--from", "+91abc"], ["stray"]):
        r = loadgen("--url", "http://127.0.0.1:1", "--bsp", "http://127.0.0.1:1", *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
