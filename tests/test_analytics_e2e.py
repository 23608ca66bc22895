"""Analytics end to end: real footage and synthetic scenes served by a real RTSP server,
``varta serve`` with its analytics worker process, events read back through the HTTP API.

Ground truth:
* the synthetic scene (tests/scenes.py) knows where and when its walker moves;
* the entries and exits on intel_one-by-one-person-detection.mp4 were read off the frames
  by eye at one-second steps (a person visible from ENTRIES[i] to EXITS[i] inclusive);
* vtest.avi has people walking all the time.
"""

from __future__ import annotations

import time

import pytest

from conftest import MEDIA_CACHE, VartaHome
from scenes import Walk, scene

pytestmark = [pytest.mark.e2e]

# The walker crosses the picture in each of the eight compass directions, 3 s each, with
# 3 s of empty plaza between walks (longer than the tracker's memory, so each walk is a
# new object). Then 6 s of black frames: a covered lens.
WALKS = [
    (Walk((0.15, 0.7), (0.85, 0.7), 3, 3), "right"), (Walk((0.85, 0.75), (0.15, 0.75), 3, 3), "left"),
    (Walk((0.3, 0.45), (0.3, 0.95), 3, 3), "down"), (Walk((0.3, 0.95), (0.3, 0.45), 3, 3), "up"),
    (Walk((0.2, 0.45), (0.8, 0.95), 3, 3), "down-right"), (Walk((0.8, 0.95), (0.2, 0.45), 3, 3), "up-left"),
    (Walk((0.2, 0.95), (0.8, 0.45), 3, 3), "up-right"), (Walk((0.8, 0.45), (0.2, 0.95), 3, 3), "down-left"),
]
BLACK_S = 6.0
# A vertical line down the middle drawn top to bottom: side A is the picture's right, so
# "a_to_b" counts walkers crossing from right to left: the left, up-left and down-left walks.
LINE_CROSSINGS_A_TO_B = 3
SCENE_RULES = {
    "fps": 5, "priority": "high",
    "rules": [
        {"name": "plaza", "type": "zone", "zone": "plaza", "polygon": [[0, 0.3], [1, 0.3], [1, 1], [0, 1]],
         "classes": ["person"], "min_dwell_s": 0.5},
        {"name": "gate", "type": "line", "zone": "gate", "a": [0.5, 0.3], "b": [0.5, 1.0], "direction": "a_to_b",
         "classes": ["person"], "severity": "info"},
        {"name": "lens", "type": "tamper", "kinds": ["covered", "blinded", "video_lost"]},
    ],
}
INTEL_SECONDS = 50  # the first two visitors
ENTRIES, EXITS = [7, 23], [19, 44]
WHOLE = {"name": "anyone", "type": "zone", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "classes": ["person"],
         "min_dwell_s": 0.5}


@pytest.fixture(scope="module")
def model(test_data):
    path = test_data / "models" / "yolox_nano.onnx"
    if not path.is_file():
        pytest.skip(f"no detector model at {path}")
    return path


@pytest.fixture(scope="module")
def streams(test_data, footage):
    from varta.demo.media import prepare_from_file

    scene_ts, truth, covered, duration = scene(test_data, MEDIA_CACHE, "walks", [w for w, _ in WALKS],
                                               black_s=BLACK_S)
    intel = prepare_from_file(test_data / "video" / "intel_one-by-one-person-detection.mp4",
                              MEDIA_CACHE / "intel-one-by-one-50s.ts", gop=10, max_seconds=INTEL_SECONDS)
    return {"scene": scene_ts, "intel": intel, "vtest": footage["vtest"]}, truth, covered, duration


@pytest.fixture(scope="module")
def running(tmp_path_factory, streams, model):
    from conftest import _require_gst
    from varta.demo.simulator import CameraSimulator

    _require_gst()
    media, truth, covered, duration = streams
    sim = CameraSimulator(media).start()
    v = VartaHome(tmp_path_factory.mktemp("analytics"), detector_model=str(model), analytics_cpu_cores=1.5)
    v.start()
    api = v.api("operator.e2e", "department")
    tech = v.api()
    for name in media:
        v.run("camera", "add", f"cam-{name}", "--url", sim.url(name), "--sub-url", sim.url(name), "--group", "centre",
              "--lat", "46.85", "--lon", "35.36")
    rules = {"scene": SCENE_RULES, "intel": {"fps": 5, "rules": [WHOLE]}, "vtest": {"fps": 5, "rules": [WHOLE]}}
    for name, cfg in rules.items():
        r = tech.put(f"/api/cameras/cam-{name}/analytics", json=cfg)
        assert r.status_code == 200, r.text
    yield v, api, truth, covered, duration
    v.stop()
    sim.stop()


def _events(api, camera: str) -> list[dict]:
    r = api.get("/api/events", params={"camera": camera, "limit": 1000})
    assert r.status_code == 200, r.text
    return sorted(r.json()["events"], key=lambda e: e["start_us"])


def _since(v: VartaHome, api, camera: str) -> int:
    """When the worker's first frame of this connection arrived: stream time 0."""
    st = api.get(f"/api/cameras/{camera}/analytics").json()["status"]
    assert st and st["state"] in ("analysing", "degraded"), st
    return st["since_us"]


def test_directions_line_crossings_and_a_covered_lens_through_rtsp(running):
    v, api, truth, covered, duration = running
    # One loop of the scene, plus time for the lens to be uncovered and the event closed.
    v.wait_for(lambda: any(e["kind"] == "tamper" and e["end"] for e in _events(api, "cam-scene")),
               timeout=duration + 60, what="the covered-lens event to open and close")
    t0 = _since(v, api, "cam-scene")
    loop = [e for e in _events(api, "cam-scene") if e["start_us"] < t0 + duration * 1e6]
    walks = [e for e in loop if e["rule"] == "plaza"]
    got = [e["heading"] for e in walks]
    assert got == [h for _, h in WALKS], f"headings {got}"
    for e, (t_start, t_end, _, _) in zip(walks, truth):
        assert abs((e["start_us"] - t0) / 1e6 - t_start) < 2.0, e
        assert e["label"] == "person" and e["snapshot_url"] and e["detail"]["direction"]["en"]
    crossings = [e for e in loop if e["rule"] == "gate"]
    assert len(crossings) == LINE_CROSSINGS_A_TO_B, [(e["start"], e["heading"]) for e in crossings]
    assert all(e["detail"]["crossing"] == "a_to_b" and e["heading"] in ("left", "up-left", "down-left")
               for e in crossings)
    lens = [e for e in loop if e["kind"] == "tamper"]
    assert len(lens) == 1 and lens[0]["detail"]["tamper"] == "covered", lens
    # Covered from `covered` s for BLACK_S s; the state must hold 3 s before it is believed.
    assert covered < (lens[0]["start_us"] - t0) / 1e6 < covered + 5.0, (lens[0], covered)
    # The alarm picture is a real JPEG of the frame.
    img = api.get(walks[0]["snapshot_url"])
    assert img.status_code == 200 and img.content[:2] == b"\xff\xd8" and len(img.content) > 10_000


def test_one_person_at_a_time_matches_the_visible_entries_within_two_seconds(running):
    v, api, *_ = running
    v.wait_for(lambda: len([e for e in _events(api, "cam-intel") if e["end"]]) >= len(ENTRIES),
               timeout=INTEL_SECONDS + 40, what="both visitors' events to end")
    t0 = _since(v, api, "cam-intel")
    first_loop = [e for e in _events(api, "cam-intel") if e["start_us"] < t0 + INTEL_SECONDS * 1e6]
    spans = [((e["start_us"] - t0) / 1e6, (e["end_us"] - t0) / 1e6) for e in first_loop]
    assert len(spans) == len(ENTRIES), spans
    for (start, end), entry, exit_ in zip(spans, ENTRIES, EXITS):
        assert abs(start - entry) <= 2.0, (spans, ENTRIES)
        assert abs(end - (exit_ + 0.5)) <= 2.0, (spans, EXITS)  # gone within the second after


def test_people_on_vtest_raise_person_events_with_directions(running):
    v, api, *_ = running
    v.wait_for(lambda: len(_events(api, "cam-vtest")) >= 3, timeout=60, what="person events on vtest")
    evs = _events(api, "cam-vtest")
    assert {e["label"] for e in evs} == {"person"}
    assert any(e["heading"] for e in evs), "walkers have a direction"
    st = api.get("/api/cameras/cam-vtest/analytics").json()["status"]
    assert st["actual_fps"] > 3.5 and st["detect_fps"] > 0, st


def test_operators_acknowledge_and_judge_alarms_and_it_is_journaled(running):
    v, api, *_ = running
    v.wait_for(lambda: _events(api, "cam-vtest"), timeout=60, what="an event")
    ev = _events(api, "cam-vtest")[0]
    r = api.post(f"/api/events/{ev['id']}/false", json={})
    assert r.status_code == 200 and r.json()["verdict"] == "false" and r.json()["state"] == "acknowledged"
    assert r.json()["handled_by"] == "operator.e2e"
    r = api.post(f"/api/events/{ev['id']}/note", json={"note": "тінь від дерева"})
    assert r.status_code == 200
    assert api.post(f"/api/events/{ev['id']}/note", json={"note": " "}).status_code == 422
    detail = api.get(f"/api/events/{ev['id']}").json()
    assert [a["action"] for a in detail["actions"]] == ["false", "note"]
    assert detail["path"], "the track's path is kept"
    lines = api.get("/api/journal", params={"action": "event.handle", "limit": 10}).json()["lines"]
    assert any(f"event {ev['id']}" in ln["detail"] and "тінь" in ln["detail"] for ln in lines)
    # Search by class and state.
    assert all(e["verdict"] == "false" for e in api.get("/api/events", params={"verdict": "false"}).json()["events"])
    assert api.get("/api/events", params={"label": "car", "camera": "cam-vtest"}).json()["events"] == []


def test_alarms_are_pushed_over_server_sent_events(running):
    v, api, *_ = running
    seen: list[str] = []
    deadline = time.monotonic() + 45
    with api.stream("GET", "/api/alarms/stream", params={"camera": "cam-vtest"}, timeout=50) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                seen.append(line)
            if line.startswith("data: ") and seen:
                assert '"camera_id": "cam-vtest"' in line
                break
            if time.monotonic() > deadline:
                break
    assert seen == ["event: alarm"] or seen[:1] == ["event: alarm"]
