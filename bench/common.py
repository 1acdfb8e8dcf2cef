"""Shared pieces of the benchmarks: the machine they ran on, starting and
stopping munim and the mock BSP on loopback, running munim loadgen.

Benchmarks are run by hand after the README's set-up (they are not part of
the test command): every figure they print is measured on this machine in
the same run, and ratios are reported against a baseline of the same run.
"""

import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUNIM = os.environ.get("MUNIM_BIN") or os.path.join(ROOT, "bin", "munim")
SECRET = "bench-app-secret"


def machine():
    """One line naming the machine: CPU model, cores, memory, kernel."""
    model = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024 // 1024
    except OSError:
        pass
    return "%s, %d cores, %d GiB, %s %s, %s" % (model, os.cpu_count() or 0, mem,
                                              platform.system(), platform.release(),
                                              time.strftime("%Y-%m-%d %H:%M %Z"))


def cpu_seconds(pid):
    """CPU time (user + system) a process has used so far, in seconds."""
    try:
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU time used by this script's finished children (loadgen runs)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not answer within %ds" % (url, timeout))


class Stack:
    """serve + mock-bsp over a seeded store in a temporary directory."""

    def __init__(self, tenants=100, serve_args=(), keep_dir=None, mock_args=(), relay=False,
                 db=None):
        self.dir = keep_dir or tempfile.mkdtemp(prefix="munim-bench-")
        # db: a store the caller has made ready (a PostgreSQL url), used as
        # it is; without it, a SQLite file in the directory, made and seeded
        self.db = db or os.path.join(self.dir, "munim.db")
        self.tenants = tenants
        self.serve_args = list(serve_args)
        self.mock_args = list(mock_args)
        self.relay = relay  # run `munim relay` (stores nothing) instead of serve
        self.port = free_port()
        self.mock_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.bsp = "http://127.0.0.1:%d" % self.mock_port
        self.procs = []
        if not db and not os.path.exists(self.db):
            subprocess.run([MUNIM, "migrate", "--db", self.db], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([MUNIM, "seed", "--db", self.db, "--tenants", str(tenants)],
                           check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.start_mock()
        return self.start_serve()

    def start_mock(self):
        log = open(os.path.join(self.dir, "mock.log"), "ab")
        self.mock = subprocess.Popen(
            [MUNIM, "mock-bsp", "--listen", "127.0.0.1:%d" % self.mock_port,
             "--app-secret", SECRET, "--webhook-url", self.url + "/webhooks/whatsapp",
             *self.mock_args],
            stdout=log, stderr=log)
        self.procs.append(self.mock)
        wait_http(self.bsp + "/_mock/stats")

    def start_serve(self):
        """Starts serve (again, after a kill) and waits until it is ready."""
        log = open(os.path.join(self.dir, "serve.log"), "ab")
        if self.relay:
            cmd = [MUNIM, "relay", "--listen", "127.0.0.1:%d" % self.port,
                   "--bsp-url", self.bsp, "--app-secret", SECRET,
                   "--access-token", "bench", "--log-level", "warn"]
        else:
            cmd = [MUNIM, "serve", "--db", self.db, "--listen", "127.0.0.1:%d" % self.port,
                   "--bsp-url", self.bsp, "--app-secret", SECRET, "--verify-token", "v",
                   "--access-token", "bench", "--log-level", "warn", *self.serve_args]
        # in the run's directory: a PostgreSQL-backed serve keeps its send
        # journal in its working directory
        self.serve = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=self.dir)
        self.procs.append(self.serve)
        t0 = time.time()
        wait_http(self.url + "/readyz", timeout=300)
        self.ready_s = time.time() - t0  # start-up to ready, as the client sees it
        return self

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_mb(self):
        """Peak resident set of serve so far (VmHWM), MB."""
        try:
            for line in open("/proc/%d/status" % self.serve.pid):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def loadgen(stack, rate, duration, *extra):
    """Runs munim loadgen against stack; returns its JSON report, with
    "cpu_us_per_message": {"serve", "mock", "loadgen"} added (CPU time each
    process spent during the run, per message sent)."""
    before = (cpu_seconds(stack.serve.pid), cpu_seconds(stack.mock.pid),
              children_cpu_seconds())
    r = subprocess.run([MUNIM, "loadgen", "--url", stack.url, "--bsp", stack.bsp,
                        "--app-secret", SECRET, "--tenants", str(stack.tenants),
                        "--rate", str(rate), "--duration", str(duration), *extra],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("loadgen failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    after = (cpu_seconds(stack.serve.pid), cpu_seconds(stack.mock.pid),
             children_cpu_seconds())
    n = max(rep.get("sent", 0), 1)
    rep["cpu_us_per_message"] = {k: (after[i] - before[i]) / n * 1e6
                                 for i, k in enumerate(("serve", "mock", "loadgen"))}
    return rep


PG_SERVER = os.path.join(ROOT, "scripts", "pg-server")


class PgServer:
    """A PostgreSQL server of scripts/pg-server's in dir; start() prints nothing."""

    def __init__(self, dir):
        self.dir = dir
        self.port = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        # run as root, the server runs as postgres, which must reach dir
        os.chmod(os.path.dirname(self.dir), 0o755)
        r = subprocess.run([PG_SERVER, "start", self.dir], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("could not start PostgreSQL in %s: %s" % (self.dir, r.stderr))
        self.port = int(r.stdout.strip().splitlines()[-1])
        return self

    def stop(self):
        if self.port is None:
            return
        r = subprocess.run([PG_SERVER, "stop", self.dir], capture_output=True, text=True)
        if r.returncode != 0:
            print("could not stop PostgreSQL in %s: %s" % (self.dir, r.stderr.strip()))
        self.port = None

    def url(self, db, user="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)

    def psql(self, sql, db="postgres", tuples=False):
        """Runs sql (one or more statements, stopping at the first error) as
        the superuser; returns psql's stdout."""
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
               "-p", str(self.port), "-U", "postgres", "-d", db]
        if tuples:
            cmd += ["-At"]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed on %s: %s" % (db, r.stderr.strip()[-2000:]))
        return r.stdout

    def postmaster(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def cpu_seconds(self):
        """CPU time of the server's processes still running (the postmaster
        and its children: munim's backends, the WAL writer, the
        checkpointer...)."""
        pm = self.postmaster()
        total = cpu_seconds(pm)
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = open("/proc/%s/stat" % name).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pm:
                total += cpu_seconds(int(name))
        return total

    def create_db(self, db):
        self.psql("DROP DATABASE IF EXISTS %s" % db)
        self.psql("CREATE DATABASE %s" % db)

    def drop_db(self, db):
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
