"""The controller in serve: the traffic spike level rises with the backlog,
pauses marketing (P3) at level 2, and steps down after its hold, when the
marketing goes out."""

import json
import time
from datetime import datetime

from harness import OWNER, Stack, body_json, text_payload, wait_until


def level_changes(s):
    """(ms, level) of every control.spike_level line in serve's log."""
    out = []
    for line in open(s.dir + "/serve.log", errors="replace"):
        if '"control.spike_level"' not in line:
            continue
        ev = json.loads(line)
        at = datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ms = int((at - datetime(1970, 1, 1)).total_seconds() * 1000)
        out.append((ms, int(ev["msg"].split()[2])))
    return out


def test_spike_level_pauses_marketing():
    s = Stack(serve_args=["--send-inflight", "2", "--spike-depth-1", "4", "--spike-depth-2", "8",
                          "--spike-depth-3", "100000", "--spike-depth-4", "200000",
                          "--spike-hold-ms", "1500", "--control-window-s", "5"])
    customers = ["9196%08d" % i for i in range(30)]
    with s:
        assert s.metrics()["munim_spike_level"] == 0
        s.mock_faults(latency_ms=300)
        for c in customers:
            assert s.post(text_payload("stock atta", frm=c)[1])[0] == 200
        assert s.post(text_payload("broadcast Diwali sale", frm=OWNER)[1])[0] == 200
        wait_until(lambda: s.metrics()["munim_spike_level"] >= 2, timeout=10,
                   what="spike level 2")
        marketing = lambda: [m for m in s.mock_messages() if "context" not in body_json(m)]
        got = wait_until(lambda: (lambda m: m if len(m) >= 30 else None)(marketing()),
                         timeout=60, interval=0.2, what="all 30 offers sent")
        wait_until(lambda: s.metrics()["munim_spike_level"] == 0, timeout=15,
                   what="spike level back to 0")
        changes = level_changes(s)
        up = [ms for ms, lv in changes if lv >= 2]
        down = [ms for ms, lv in changes if lv < 2]
        assert up and down, changes
        # no offer went out while the level was 2 or more: the first came
        # after the level fell below 2
        fell = min(ms for ms in down if ms > up[0])
        first_offer = min(m["received_at"] for m in got)
        assert first_offer >= fell, (first_offer, fell, changes)
        # the levels rose and fell in order, one step at a time on the way down
        levels = [lv for _, lv in changes]
        top = levels.index(max(levels))
        assert levels[top + 1:] == list(range(max(levels) - 1, -1, -1)), levels
