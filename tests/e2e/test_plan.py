"""`munim plan`: the autoscaling manifests (parsed as YAML), the capacity
simulation's report (its shape, the SLO verdicts, CSV), and bad flags
refused with exit status 2 and a message."""

import csv
import io
import os
import re
import shutil
import tempfile

from harness import run

try:
    import yaml
except ImportError:  # pragma: no cover - python3-yaml is in the build image
    yaml = None

MINUTE = re.compile(r"^2025-10-30 \d\d:\d\d +[\d.]+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+  [0-4] [a-z]+$")


def test_plan_simulate_diwali():
    r = run("plan", "simulate", "--profile", "diwali")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("munim plan simulate: profile diwali, 100000 tenants"), lines[0]
    assert "1920.0/s per instance" in lines[0], lines[0]
    assert lines[2].split()[:3] == ["time", "(IST)", "offered/s"], lines[2]
    minutes = [l for l in lines if MINUTE.match(l)]
    assert len(minutes) == 1440, len(minutes)
    assert minutes[0].startswith("2025-10-30 00:00") and minutes[-1].startswith("2025-10-30 23:59")
    # the busiest minute is the evening's, at 10x the seed's 500/s
    top = max(minutes, key=lambda l: float(l.split()[2]))
    assert 4900 <= float(top.split()[2]) <= 5000, top
    assert top.split()[1].startswith("19:"), top
    tail = lines[lines.index("summary"):]
    assert any(l.startswith("  minutes over the p95 SLO (2000 ms): ") for l in tail), tail
    assert any(re.match(r"  SLO p95 < 2000 ms: (holds|fails)$", l) for l in tail), tail
    assert any(re.match(r"  SLO availability >= 99.9 %: (holds|fails)$", l) for l in tail), tail
    assert "weak spots" in tail
    # the seed's floors above the autoscaler's maximum are found
    assert any("festival floor cut: diwali peak" in l and "300 workers" in l for l in tail), tail
    # the same run twice is the same report
    assert run("plan", "simulate", "--profile", "diwali").stdout == r.stdout


def test_plan_simulate_seed_sized_workers_fail_the_slo():
    # 28/s per worker is what the seed's own sizing implies (500/s on 30
    # workers at 60 % CPU): the 10x evening needs more than 100 of them
    r = run("plan", "simulate", "--profile", "diwali", "--per-instance-rps", "28",
            "--minutes", "1440")
    out = r.stdout
    assert "  SLO p95 < 2000 ms: fails" in out, out[-2000:]
    assert "- capacity ceiling: the autoscaler's maximum, 100 replicas x 28.0/s = 2800/s" in out
    assert "highest spike level 4 (emergency)" in out
    # a normal day at that size holds
    r = run("plan", "simulate", "--profile", "normal", "--per-instance-rps", "28")
    assert "  SLO p95 < 2000 ms: holds" in r.stdout, r.stdout[-2000:]
    assert "max replicas: 10 " not in r.stdout  # it scaled up for the evening


def test_plan_simulate_csv_and_profiles():
    r = run("plan", "simulate", "--profile", "newyear", "--csv", "--minutes", "90",
            "--tenants", "300000")
    rows = [l for l in r.stdout.splitlines() if not l.startswith("#")]
    table = list(csv.DictReader(io.StringIO("\n".join(rows))))
    assert len(table) == 90, len(table)
    assert table[0]["time_ist"] == "2026-01-01 00:00", table[0]
    assert set(table[0]) == {"time_ist", "offered_per_s", "replicas", "ready", "floor", "needed",
                             "depth", "p95_ms", "spike"}, table[0]
    # 300,000 tenants, 5x New Year: 3 x 5 x the night's 10/s
    assert 140 <= float(table[30]["offered_per_s"]) <= 160, table[30]
    assert int(table[-1]["floor"]) == 100
    assert any(l.startswith("# summary") for l in r.stdout.splitlines())


def test_plan_manifests_stdout_and_files():
    r = run("plan", "manifests", "--namespace", "shops", "--hpa-max-replicas", "80")
    if yaml:
        docs = list(yaml.safe_load_all(r.stdout))
    else:
        docs = None
    assert r.stdout.count("\n---\n") == 7
    assert "  namespace: shops\n" in r.stdout
    if docs is not None:
        kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
        assert kinds == [("HorizontalPodAutoscaler", "webhook-workers"),
                         ("HorizontalPodAutoscaler", "order-service"),
                         ("HorizontalPodAutoscaler", "inventory-service"),
                         ("HorizontalPodAutoscaler", "invoice-service"),
                         ("ScaledObject", "webhook-workers"),
                         ("ScaledObject", "order-service"),
                         ("ScaledObject", "inventory-service"),
                         ("ScaledObject", "invoice-service")], kinds
        hpa = docs[0]["spec"]
        assert hpa["minReplicas"] == 10 and hpa["maxReplicas"] == 80
        metrics = {(m["type"], (m.get("resource") or m["pods"]["metric"])["name"]): m
                   for m in hpa["metrics"]}
        assert metrics[("Resource", "cpu")]["resource"]["target"]["averageUtilization"] == 60
        assert metrics[("Resource", "memory")]["resource"]["target"]["averageUtilization"] == 70
        assert metrics[("Pods", "munim_inbox_depth")]["pods"]["target"]["averageValue"] == "100"
        up, down = hpa["behavior"]["scaleUp"], hpa["behavior"]["scaleDown"]
        assert up["stabilizationWindowSeconds"] == 60 and up["selectPolicy"] == "Max"
        assert up["policies"] == [{"type": "Pods", "value": 10, "periodSeconds": 60},
                                  {"type": "Percent", "value": 100, "periodSeconds": 60}]
        assert down["stabilizationWindowSeconds"] == 300
        assert down["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]
        erp = {d["metadata"]["name"]: d["spec"] for d in docs[1:4]}
        assert (erp["order-service"]["minReplicas"], erp["order-service"]["maxReplicas"]) == (10, 100)
        assert (erp["inventory-service"]["minReplicas"], erp["invoice-service"]["maxReplicas"]) == (5, 50)
        so = docs[4]["spec"]
        assert so["maxReplicaCount"] == 80
        prom = [t for t in so["triggers"] if t["type"] == "prometheus"]
        assert prom[0]["metadata"]["query"] == "sum(munim_inbox_depth)"
        assert prom[0]["metadata"]["threshold"] == "100"
        assert "munim_message_latency_seconds_bucket" in prom[1]["metadata"]["query"]
        crons = [t["metadata"] for t in so["triggers"] if t["type"] == "cron"]
        assert all(c["timezone"] == "Asia/Kolkata" for c in crons)
        peak = [c for c in crons if c["start"] == "0 0 30 10 *"]
        assert peak == [{"timezone": "Asia/Kolkata", "start": "0 0 30 10 *",
                         "end": "0 0 2 11 *", "desiredReplicas": "80"}], peak
        prescale = [c for c in crons if c["start"] == "0 0 25 10 *"][0]
        assert prescale["desiredReplicas"] == "60"
    d = tempfile.mkdtemp(prefix="munim-plan-")
    try:
        out = os.path.join(d, "k8s")
        r = run("plan", "manifests", "--out", out, "--festival-calendar", "")
        assert "wrote 8 objects" in r.stdout, r.stdout
        files = sorted(os.listdir(out))
        assert files == ["hpa-inventory-service.yaml", "hpa-invoice-service.yaml",
                         "hpa-order-service.yaml", "hpa-webhook-workers.yaml",
                         "scaledobject-inventory-service.yaml",
                         "scaledobject-invoice-service.yaml", "scaledobject-order-service.yaml",
                         "scaledobject-webhook-workers.yaml"], files
        text = open(os.path.join(out, "scaledobject-webhook-workers.yaml")).read()
        assert "type: cron" not in text  # no calendar, no cron triggers
        if yaml:
            assert yaml.safe_load(text)["kind"] == "ScaledObject"
    finally:
        shutil.rmtree(d)


def test_plan_bad_flags_exit_2():
    cases = [
        (["plan"], "usage: munim plan"),
        (["plan", "frobnicate"], "unknown subcommand \"frobnicate\""),
        (["plan", "simulate", "--profile", "holi"], "unknown profile \"holi\""),
        (["plan", "simulate", "--per-instance-rps", "-1"], "invalid value \"-1\""),
        (["plan", "simulate", "--minutes", "0"], "minutes"),
        (["plan", "simulate", "--bogus"], "unknown option \"--bogus\""),
        (["plan", "simulate", "--festival-calendar", "x:peak:2025-02-30:1d:2x"],
         "no such date \"2025-02-30\""),
        (["plan", "simulate", "--spike-depth-2", "100"], "must rise with the level"),
        (["plan", "manifests", "--namespace", "Bad_NS"], "invalid namespace \"Bad_NS\""),
        (["plan", "manifests", "--prometheus", "ftp://x"], "invalid Prometheus URL"),
        (["plan", "manifests", "--erp-services", "orders:10:65"], "bad erp-services item"),
        (["plan", "manifests", "--festival-calendar", "x:party:2025-10-01:1d:2x"],
         "unknown phase \"party\""),
        (["plan", "manifests", "--hpa-min-replicas", "50", "--hpa-max-replicas", "20"],
         "hpa-max-replicas 20 is below hpa-min-replicas 50"),
        (["plan", "manifests", "extra"], "too many arguments"),
    ]
    for args, words in cases:
        r = run(*args, check=False)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    # --help is not an error
    r = run("plan", "simulate", "--help")
    assert "--per-instance-rps" in r.stdout and "[default: diwali]" in r.stdout, r.stdout
