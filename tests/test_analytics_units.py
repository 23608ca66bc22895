"""Analytics pieces alone: direction of movement (pure) and the detector on real footage."""

from __future__ import annotations

import pytest

from varta.analytics.direction import heading, track_motion


@pytest.mark.parametrize("dx, dy, point", [
    (0, -10, "up"), (10, -10, "up-right"), (10, 0, "right"), (10, 10, "down-right"),
    (0, 10, "down"), (-10, 10, "down-left"), (-10, 0, "left"), (-10, -10, "up-left"),
    (10, 3, "right"), (3, 10, "down"),  # within 22.5° of an axis
])
def test_headings_on_the_picture_compass(dx, dy, point):
    assert heading(dx, dy) == point


def test_track_motion_speed_and_phrase():
    path = [(0.0, 100.0, 200.0), (0.5, 150.0, 201.0), (2.0, 300.0, 198.0)]
    m = track_motion(path)
    assert m["heading"] == "right" and m["en"] == "moving left to right"
    assert m["speed_px_s"] == pytest.approx(100.0, rel=0.01)
    assert track_motion([(0, 10, 10), (5, 12, 13)]) is None  # standing still: no heading
    assert track_motion([(0, 10, 10)]) is None


def test_yolox_nano_finds_the_people_in_vtest(test_data):
    """The reference counts in ../shared/data/MANIFEST.md (score > 0.3, NMS 0.45)."""
    av = pytest.importorskip("av")
    from varta.analytics.detector import YoloxDetector

    model = test_data / "models" / "yolox_nano.onnx"
    if not model.is_file():
        pytest.skip(f"no model at {model}")
    det = YoloxDetector(model)
    want = {0: 4, 100: 7, 400: 4, 700: 10}
    got = {}
    with av.open(str(test_data / "video" / "vtest.avi")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i in want:
                dets = det.detect(frame.to_ndarray(format="bgr24"))
                got[i] = sum(1 for d in dets if d.label == "person")
                assert {d.label for d in dets} <= {"person", "bicycle", "car", "motorcycle", "bus", "truck"}
            if i >= max(want):
                break
    assert got == want
