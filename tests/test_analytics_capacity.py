"""Issue 14: cheaper inference with the detector's accuracy kept, honest tracks, and a
governor that slows the least important cameras first.

The inference variants are checked on real frames (PETS09-S2L1, the shared data's
annotated sequence) against the official FP32 model on the official canvas; the INT8 model
is made exactly as ``varta model install`` makes it. Honest tracks and the governor are
pure logic, checked with hand-made detections and loads.
"""

from __future__ import annotations

import io
import shutil
import threading
import time

import pytest

from varta.analytics.detector import Detection
from varta.analytics.governor import CameraLoad, describe, rebalance
from varta.analytics.offline import MotWriter
from varta.analytics.rules import RuleEngine
from varta.analytics.tracker import Tracker
from varta.analytics.tracker import iou as box_iou
from varta.analytics.types import FrameInfo

PETS_FRAMES = (1, 60, 120, 180, 240, 300)


def _pets_frames(test_data):
    import cv2

    folder = test_data / "annotated" / "PETS09-S2L1" / "img1"
    frames = [cv2.imread(str(folder / f"{i:06d}.jpg")) for i in PETS_FRAMES]
    if any(f is None for f in frames):
        pytest.skip(f"PETS09-S2L1 frames not found in {folder}")
    return frames


def _people(dets, min_score=0.0):
    return [d for d in dets if d.label == "person" and d.score >= min_score]


def _found(reference, candidate, iou=0.5):
    """How many of the reference boxes have a candidate box overlapping them by ``iou``."""
    return sum(1 for r in reference if any(box_iou(r.box, c.box) >= iou for c in candidate))


@pytest.fixture(scope="module")
def models(test_data, tmp_path_factory):
    """The data's FP32 model, installed and turned into INT8 as `varta model install` does."""
    from varta.analytics.models import DEFAULT_MODEL, derive_int8, models_dir

    model = test_data / "models" / "yolox_nano.onnx"
    if not model.is_file():
        pytest.skip(f"no detector model at {model}")
    home = tmp_path_factory.mktemp("models-home")
    models_dir(home).mkdir(parents=True)
    shutil.copy(model, models_dir(home) / model.name)
    return model, derive_int8(DEFAULT_MODEL, home)


def test_the_cropped_canvas_finds_what_the_official_canvas_finds(test_data, models):
    from varta.analytics.detector import YoloxDetector, canvas_size

    fp32, _ = models
    square, rect = YoloxDetector(fp32, threads=1, square=True), YoloxDetector(fp32, threads=1)
    assert canvas_size(576, 768) == (320, 416, pytest.approx(416 / 768))  # 4:3 pads to 320, not 416
    assert canvas_size(360, 640)[:2] == (256, 416)  # a 16:9 sub-stream: 38 % fewer pixels
    total = same = 0
    for bgr in _pets_frames(test_data):
        ref, got = _people(square.detect(bgr)), _people(rect.detect(bgr))
        total += len(ref)
        same += _found(ref, got, iou=0.9)
        assert abs(len(got) - len(ref)) <= 1
    assert total >= 30 and same >= 0.95 * total, (same, total)


def test_int8_finds_the_people_the_fp32_model_finds(test_data, models):
    from varta.analytics.detector import YoloxDetector
    from varta.analytics.models import MODELS
    from varta.analytics.quantize import description, verified

    fp32, int8 = models
    info = description(int8).read_text()
    assert "sha256" in info and verified(int8, MODELS["yolox-nano"].sha256)
    ref_det, q_det = YoloxDetector(fp32, threads=1, square=True), YoloxDetector(int8, threads=1)
    sure = found = extra = 0
    for bgr in _pets_frames(test_data):
        ref, got = _people(ref_det.detect(bgr)), _people(q_det.detect(bgr))
        confident = [d for d in ref if d.score >= 0.5]
        sure += len(confident)
        found += _found(confident, got)
        extra += len(got) - _found(got, ref)  # INT8 boxes the FP32 model has nothing near
    assert sure >= 20
    # The tolerance the accuracy bench measured (RESULTS §12: 1–2 points of recall lower on
    # the sequences; here 6 frames, so one or two people more than the bench's average).
    assert found >= 0.9 * sure, f"INT8 missed {sure - found} of {sure} people FP32 is sure of"
    assert extra <= 0.2 * sure  # boxes FP32 has nothing near (precision is the bench's to judge)


def test_a_damaged_int8_model_is_refused_and_made_again(models):
    from varta.analytics.models import MODELS
    from varta.analytics.quantize import verified

    _, int8 = models
    good = int8.read_bytes()
    try:
        int8.write_bytes(good[:-100] + b"\0" * 100)
        assert not verified(int8, MODELS["yolox-nano"].sha256)
    finally:
        int8.write_bytes(good)
    assert verified(int8, MODELS["yolox-nano"].sha256)


def test_a_region_finds_the_same_people_as_the_whole_picture(test_data, models):
    from varta.analytics.detector import YoloxDetector

    fp32, _ = models
    det = YoloxDetector(fp32, threads=1)
    bgr = _pets_frames(test_data)[0]
    whole = _people(det.detect(bgr), 0.5)
    h, w = bgr.shape[:2]
    region = (w // 4, h // 4, 3 * w // 4, h)  # the lower middle of the plaza
    inside = [d for d in whole if d.x >= region[0] + 4 and d.x + d.w <= region[2] - 4 and d.y >= region[1] + 4]
    assert inside, "the frame has people in the region"
    part = _people(det.detect(bgr, region=region), 0.3)
    assert all(region[0] <= (d.x + d.w / 2) <= region[2] for d in part)  # boxes in the picture's pixels
    assert _found(inside, part, iou=0.8) == len(inside)


# --- honest tracks ------------------------------------------------------------------------


def _person(x, y, score=0.9):
    return Detection(x - 20, y - 80, 40, 80, score, 0, "person")


def test_a_predicted_box_is_never_written_to_mot():
    tracker, out = Tracker(), io.StringIO()
    writer = MotWriter(out)
    seen_frames = []
    for i in range(12):
        t = i * 0.2
        dets = [_person(100 + 30 * i, 300)] if i < 6 else []  # seen on frames 1-6, then gone
        tracker.update(dets, t)
        writer.write(i + 1, tracker.tracks(), t)
        if dets:
            seen_frames.append(i + 1)
    writer.close()
    lines = [ln.split(",") for ln in out.getvalue().splitlines()]
    assert [int(f[0]) for f in lines] == seen_frames  # the first (before confirmation) written late, in order
    assert {f[1] for f in lines} == {"1"}
    assert all(float(f[2]) == pytest.approx(100 + 30 * (int(f[0]) - 1) - 20) for f in lines)  # the seen boxes


def test_a_prediction_into_a_zone_starts_no_alarm():
    """A walker heads for the zone and vanishes before it: the tracker predicts the box on
    into the zone, but nobody was seen there, so nothing opens."""
    zone = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
    eng = RuleEngine([{"name": "yard", "type": "zone", "polygon": zone, "min_dwell_s": 0.0, "classes": ["person"]}])
    tracker = Tracker(max_age_s=3.0)
    opened = []
    for i in range(20):
        t = i * 0.2
        dets = [_person(200 + 40 * i, 300)] if i < 7 else []  # last seen at x = 440 (zone starts at 500)
        tracks = [tr for tr in tracker.update(dets, t) if tr.confirmed]
        if i >= 9:
            assert tracks and tracks[0].box[0] > 500 and not tracks[0].observed(t)  # predicted in the zone
        o, _, _ = eng.step(FrameInfo(t=t, width=1000, height=500), tracks)
        opened += o
    assert opened == []
    # The same walker, seen inside: the alarm opens, its box is the seen one.
    eng2, tracker2 = RuleEngine(eng.rules), Tracker()
    for i in range(12):
        t = i * 0.2
        tracks = [tr for tr in tracker2.update([_person(400 + 40 * i, 300)], t) if tr.confirmed]
        o, _, _ = eng2.step(FrameInfo(t=t, width=1000, height=500), tracks)
        if o:
            assert o[0].box == tracks[0].seen_box and tracks[0].observed(t)
            assert o[0].box[0] + 20 >= 500
            break
    else:
        pytest.fail("the walker seen in the zone raised nothing")


def test_a_crossing_counts_only_on_what_was_seen():
    line = {"name": "gate", "type": "line", "a": [0.5, 0.0], "b": [0.5, 1.0], "direction": "both", "classes": ["person"]}
    eng, tracker = RuleEngine([line]), Tracker(max_age_s=3.0)
    for i in range(20):
        t = i * 0.2
        dets = [_person(300 + 25 * i, 300)] if i < 6 else []  # last seen at x = 425, line at 500
        tracks = [tr for tr in tracker.update(dets, t) if tr.confirmed]
        eng.step(FrameInfo(t=t, width=1000, height=500), tracks)
    assert eng.counts() == {"gate": 0}


# --- the detector pool and the governor ---------------------------------------------------


def test_the_detector_pool_runs_at_most_its_size_at_once():
    from varta.analytics.worker import DetectorPool

    class Slow:
        def __init__(self):
            self.now = self.most = 0
            self.lock = threading.Lock()

        def detect(self, bgr, **kw):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.05)
            with self.lock:
                self.now -= 1
            return []

    inner = Slow()
    pool = DetectorPool(inner, 2)
    threads = [threading.Thread(target=pool.detect, args=(None,)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert inner.most == 2


def test_the_governor_slows_low_priority_then_quiet_cameras_first():
    cams = [CameraLoad("high-busy", 3, 5, 5, 5, True), CameraLoad("normal-busy", 2, 5, 5, 5, True),
            CameraLoad("normal-quiet", 2, 5, 5, 5, False), CameraLoad("low-busy", 1, 5, 5, 5, True)]
    order = []
    by_id = {c.camera_id: c for c in cams}
    for _ in range(30):  # overloaded: 1.9 of 2 cores
        change = rebalance(cams, 1.9, 2.0)
        if not change:
            break
        (cam_id, fps), = change.items()
        by_id[cam_id].fps = fps
        if cam_id not in order:
            order.append(cam_id)
    assert order == ["low-busy", "normal-quiet", "normal-busy", "high-busy"]
    assert all(c.fps == 1.0 for c in cams)  # never below 1 frame/s
    assert "lower-priority and quiet cameras are slowed first" in describe(by_id["low-busy"])
    # Load falls: the most important, busiest camera gets its rate back first.
    change = rebalance(cams, 0.5, 2.0)
    assert list(change) == ["high-busy"] and change["high-busy"] > 1.0


def test_a_camera_that_falls_behind_is_overload_and_says_so():
    lagging = CameraLoad("c1", 2, 5, 5, achieved=4.9, lag_s=6.0)
    assert lagging.behind
    assert rebalance([lagging, CameraLoad("c2", 1, 5, 5, 5.0)], 0.3, 2.0) == {"c2": 3.5}  # CPU idle, still slowed
    assert "cannot keep up" in describe(lagging) and "6.0 s behind" in describe(lagging)
    assert describe(CameraLoad("c3", 2, 5, 5, achieved=5.0, lag_s=0.2)) == ""
