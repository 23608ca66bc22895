"""Analytics rules that need no camera: settings validation, overload behaviour, the
motion/events recording modes, model installation with its checksum, signed webhooks."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from dataclasses import dataclass

import pytest

from varta.analytics.config import AnalyticsError, parse_config
from varta.analytics.governor import CameraLoad, describe, rebalance
from varta.recording.activity import settled_before, widen, without_activity
from varta.recording.retention import Hold

S = 1_000_000


def test_settings_are_checked_field_by_field():
    cfg = parse_config({"fps": 5, "masks": [[[0, 0], [0.2, 0], [0.2, 0.2]]],
                        "rules": [{"name": "yard", "type": "zone", "zone": "yard",
                                   "polygon": [[0, 0], [1, 0], [1, 1]], "classes": ["person"]}]})
    assert cfg.fps == 5 and cfg.masks == [[(0, 0), (0.2, 0), (0.2, 0.2)]] and cfg.rules[0]["name"] == "yard"
    assert parse_config(None).enabled is False
    for bad, words in (({"fps": 100}, "fps"), ({"stream": "third"}, "stream"), ({"priority": "urgent"}, "priority"),
                       ({"masks": [[[0, 0], [2, 0], [1, 1]]]}, "outside the picture"), ({"colour": 1}, "unknown"),
                       ({"rules": [{"name": "x", "type": "zone", "polygon": [[0, 0]]}]}, "x")):
        with pytest.raises(AnalyticsError) as e:
            parse_config(bad)
        assert words in str(e.value), (bad, str(e.value))


def test_overload_slows_the_least_important_camera_first_and_gives_back_to_the_most_important():
    cams = [CameraLoad("gate", 3, 5, 5), CameraLoad("park", 1, 5, 5), CameraLoad("street", 2, 5, 5)]
    assert rebalance(cams, cpu_cores_used=0.98, budget_cores=1.0) == {"park": 3.5}
    cams[1].fps = 1.0  # park already at the floor: the normal-priority camera is next
    assert rebalance(cams, 0.98, 1.0) == {"street": 3.5}
    assert rebalance(cams, 0.8, 1.0) == {}  # between the marks: hold steady
    cams[2].fps = 3.5
    assert rebalance(cams, 0.3, 1.0) == {"street": 4.38}  # back up: higher priority first
    assert "recording is not affected" in describe(cams[2]) and describe(cams[0]) == ""
    # Nothing can be slowed below 1 frame/s: the governor then says nothing more.
    floor = [CameraLoad("a", 1, 5, 1.0)]
    assert rebalance(floor, 2.0, 1.0) == {}


@dataclass
class Seg:
    start_us: int
    end_us: int


def test_motion_mode_keeps_footage_around_activity_only():
    segs = [Seg(i * 10 * S, (i + 1) * 10 * S) for i in range(12)]  # 0..120 s
    spans = {"motion": widen([(45 * S, 52 * S)], pre_us=5 * S, post_us=10 * S, open_end_us=0)}  # 40..62 s
    mode = lambda us: "motion" if us < 100 * S else "continuous"  # noqa: E731
    doomed = without_activity(segs, mode, spans, analysed=(0, 200 * S))
    kept = [s for s in segs if s not in doomed]
    assert [(s.start_us // S) for s in kept] == [40, 50, 60, 100, 110]  # activity ± roll, then continuous
    # Held footage stays whatever the mode; footage outside the analysed window stays too.
    assert Seg(0, 10 * S) not in without_activity(segs, mode, spans, (0, 200 * S), holds=[Hold(5 * S, 6 * S)])
    assert without_activity(segs, mode, spans, analysed=(70 * S, 200 * S)) == segs[7:10]
    assert without_activity(segs, mode, spans, analysed=None) == []
    # An ongoing span reaches "now" and the post-roll beyond it.
    assert widen([(10 * S, None)], 1 * S, 2 * S, open_end_us=30 * S) == [(9 * S, 32 * S)]
    assert settled_before(1000 * S, 5 * S, 10 * S) == 1000 * S - 10 * S - 60 * S


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def file_server(tmp_path):
    handler = lambda *a, **kw: _Files(*a, directory=str(tmp_path), **kw)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_model_install_downloads_and_refuses_a_file_that_fails_the_checksum(test_data, file_server, tmp_path):
    from varta.analytics.models import ModelError, install

    served, base = file_server
    model = (test_data / "models" / "yolox_nano.onnx").read_bytes()
    (served / "good.onnx").write_bytes(model)
    (served / "bad.onnx").write_bytes(model[:-10] + b"0123456789")
    home = tmp_path / "home"
    path = install("yolox-nano", home, url=f"{base}/good.onnx")
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("695e750a")
    path.unlink()
    with pytest.raises(ModelError, match="checksum mismatch"):
        install("yolox-nano", home, url=f"{base}/bad.onnx")
    assert not path.exists() and not list(path.parent.glob("*.part"))  # nothing half-installed
    with pytest.raises(ModelError, match="cannot download"):
        install("yolox-nano", home, url=f"{base}/missing.onnx")
    with pytest.raises(ModelError, match="unknown model"):
        install("yolox-huge", home)


def test_webhook_posts_signed_alarms_and_retries(tmp_path):
    from varta.events.webhook import WebhookSender, signature

    got, lock = [], threading.Lock()
    fail_first = {"n": 1}

    class Hook(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                if fail_first["n"]:
                    fail_first["n"] -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                got.append((self.headers["X-Varta-Signature"], body))
            self.send_response(204)
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sender = WebhookSender(f"http://127.0.0.1:{srv.server_address[1]}/alarm", "s3cret").start()
    try:
        sender.send("event.opened", {"id": 7, "camera_id": "mel-1", "rule": "yard"})
        for _ in range(100):
            if got:
                break
            threading.Event().wait(0.1)
    finally:
        sender.stop()
        srv.shutdown()
    assert len(got) == 1, "delivered once, after one refused attempt"
    sig, body = got[0]
    assert sig == signature("s3cret", body) and json.loads(body)["event"]["id"] == 7
    assert sig != signature("other", body)


def test_motion_on_tracked_objects_is_told_from_new_motion():
    from varta.analytics.pipeline import _explained

    person = (100, 100, 140, 200)
    assert _explained([(95, 150, 150, 210)], [person])  # the walker's own trail
    assert not _explained([(95, 150, 150, 210), (400, 50, 450, 120)], [person])  # and someone new
    assert not _explained([(300, 300, 320, 320)], [])


def test_cameras_falling_behind_count_as_overload_even_with_cpu_to_spare():
    cams = [CameraLoad("gate", 3, 5, 5, achieved=4.9), CameraLoad("park", 1, 5, 5, achieved=3.4)]
    assert rebalance(cams, cpu_cores_used=0.6, budget_cores=2.0) == {"park": 3.5}
    # The important camera falls behind: the unimportant one gives more, nothing comes back.
    cams = [CameraLoad("gate", 3, 5, 5, achieved=3.9), CameraLoad("park", 1, 5, 3.5, achieved=3.5)]
    assert rebalance(cams, 0.2, 2.0) == {"park": 2.45}
    cams[0].achieved = 5.0  # all keep up again, the CPU is idle: rates come back
    assert rebalance(cams, 0.2, 2.0) == {"park": 4.38}
