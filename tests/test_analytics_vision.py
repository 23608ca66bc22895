"""The analytics' pixel work: the motion gate, camera tampering and the tracker.

Synthetic pictures pin down each behaviour; the real footage (vtest.avi, PETS09-S2L1 ground
truth, from the shared test data) checks that the defaults work on a real camera view.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import cv2
import numpy as np
import pytest

from varta.analytics.detector import Detection
from varta.analytics.motion import MotionDetector, merge_boxes, polygon_mask
from varta.analytics.tamper import TamperDetector
from varta.analytics.tracker import Tracker

VTEST_FRAMES = 300  # 30 s of vtest.avi at 10 fps
PETS_FPS = 7


# --- shared material -------------------------------------------------------------------
@pytest.fixture(scope="module")
def vtest(test_data) -> list[np.ndarray]:
    """The first 30 s of vtest.avi (480x360, 10 fps, people walking across a plaza)."""
    av = pytest.importorskip("av")
    frames = []
    with av.open(str(test_data / "video" / "vtest.avi")) as c:
        for frame in c.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == VTEST_FRAMES:
                break
    return frames


@pytest.fixture(scope="module")
def pets_gt(test_data) -> dict[int, list[tuple[int, float, float, float, float]]]:
    """PETS09-S2L1 ground truth, frames 1-300, evaluated boxes only: frame -> [(id, x, y, w, h)]."""
    gt = defaultdict(list)
    for line in (test_data / "annotated" / "PETS09-S2L1" / "gt" / "gt.txt").read_text().splitlines():
        f, i, x, y, w, h, flag = line.split(",")[:7]
        if int(flag) == 1 and int(f) <= 300:
            gt[int(f)].append((int(i), float(x), float(y), float(w), float(h)))
    return gt


def textured(w: int = 640, h: int = 480, seed: int = 0) -> np.ndarray:
    """A still, detailed BGR scene: smoothed noise, like foliage and paving."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 0)
    return cv2.normalize(img, None, 40, 200, cv2.NORM_MINMAX)


def noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """Sensor noise on a copy: a real camera never sends the same picture twice."""
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


# --- motion ----------------------------------------------------------------------------
def test_polygon_mask_marks_the_ignored_area():
    m = polygon_mask([[(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)]], 100, 80)
    assert m.shape == (80, 100) and m.dtype == np.uint8
    assert m[10, 10] == 0 and m[60, 80] == 255 and m[10, 80] == 255
    assert (polygon_mask(None, 10, 10) == 255).all()


def test_merge_boxes_joins_overlaps_only():
    assert sorted(merge_boxes([(0, 0, 10, 10), (5, 5, 20, 20), (50, 50, 60, 60)])) == [
        (0, 0, 20, 20), (50, 50, 60, 60)]


def test_still_scene_with_sensor_noise_has_no_motion():
    rng = np.random.default_rng(1)
    scene, md = textured(), MotionDetector()
    results = [md.update(noisy(scene, rng)) for _ in range(30)]
    assert not any(r.any for r in results)
    assert max(r.fraction for r in results) < 0.001


def moving_square(md: MotionDetector, frames: int = 20, x0: int = 100, step: int = 12):
    """A still scene, then a bright 60x40 block sliding right; the last result and block."""
    rng, scene = np.random.default_rng(2), textured()
    result, block = None, None
    for i in range(frames):
        img = noisy(scene, rng)
        if i >= 8:
            x = x0 + step * (i - 8)
            block = (x, 300, x + 60, 340)
            img[300:340, x:x + 60] = 250
        result = md.update(img)
    return result, block


def test_moving_block_is_boxed_in_source_pixels():
    result, (bx1, by1, bx2, by2) = moving_square(MotionDetector())
    assert len(result.boxes) == 1
    x1, y1, x2, y2 = result.boxes[0]
    # The box holds the block (640x480 source, analysed at 160x120: 4 source px a cell)...
    assert x1 <= bx1 and y1 <= by1 and x2 >= bx2 and y2 >= by2
    # ...and not much more: the dilation margin, plus behind it the trail the slowly
    # learning background keeps for a few frames.
    assert bx1 - x1 <= 60 and by1 - y1 <= 16 and x2 - bx2 <= 16 and y2 - by2 <= 16
    assert 0 < result.fraction < 0.02


def test_motion_inside_a_mask_is_ignored_outside_it_is_not():
    mask = [[(0.1, 0.55), (0.9, 0.55), (0.9, 0.8), (0.1, 0.8)]]  # covers the block's path
    result, _ = moving_square(MotionDetector(masks=mask))
    assert not result.any and result.fraction == 0
    elsewhere = [[(0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)]]
    result, _ = moving_square(MotionDetector(masks=elsewhere))
    assert result.any


def test_lights_on_is_reported_once_then_learned():
    rng, scene, md = np.random.default_rng(3), textured(), MotionDetector()
    for _ in range(10):
        assert not md.update(noisy(scene, rng)).any
    bright = cv2.add(scene, np.full_like(scene, 60))
    first = md.update(noisy(bright, rng))
    assert first.any and first.fraction > 0.7
    after = [md.update(noisy(bright, rng)).any for _ in range(10)]
    assert not any(after[2:])  # quiet again within a couple of frames, not after ~20


def test_new_frame_size_restarts_the_background():
    md = MotionDetector()
    moving_square(md)
    small = cv2.resize(textured(), (320, 240))
    assert not md.update(small).any  # warming up again, no crash on the new shape
    for _ in range(5):
        md.update(small)
    assert not md.update(small).any


def test_people_in_vtest_move_and_the_boxes_find_them(vtest, pets_gt):
    md = MotionDetector()
    results = [md.update(f) for f in vtest[:100]]
    after_warmup = results[md.warmup_frames:]
    assert sum(r.any for r in after_warmup) >= 0.9 * len(after_warmup)
    # The gate must not hide the people: the ground-truth centres (x0.625) lie in motion boxes.
    found = total = 0
    for i, r in enumerate(results[20:], start=20):
        for _, x, y, w, h in pets_gt[i + 1]:
            cx, cy = (x + w / 2) * 0.625, (y + h / 2) * 0.625
            total += 1
            found += any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in r.boxes)
    assert found >= 0.85 * total  # measured 444 of 459


def test_a_still_vtest_frame_has_no_motion(vtest):
    md = MotionDetector()
    assert not any(md.update(vtest[50]).any for _ in range(30))


# --- tampering -------------------------------------------------------------------------
def feed(td: TamperDetector, frames, t0: float, step: float = 0.1) -> list[frozenset[str]]:
    return [td.update(f, t0 + i * step) for i, f in enumerate(frames)]


def learned_on(vtest) -> TamperDetector:
    """A detector that has learned the vtest view (12 s at 10 fps)."""
    td = TamperDetector()
    assert feed(td, vtest[:120], 0.0) == [frozenset()] * 120
    assert td.learned
    return td


def held(states: list[frozenset[str]], state: str, step: float = 0.1) -> float | None:
    """Seconds into ``states`` (one per ``step``) at which ``state`` first appears."""
    return next((i * step for i, s in enumerate(states) if state in s), None)


def test_people_walking_raise_no_tamper_alarm(vtest):
    td = TamperDetector()
    states = feed(td, vtest, 0.0)
    assert td.learned
    assert set().union(*states) == set()
    assert td.measures["similarity"] > 0.6


def test_dark_frames_are_covered_after_hold_not_before(vtest):
    td, rng = learned_on(vtest), np.random.default_rng(4)
    black = [np.clip(rng.normal(6, 3, vtest[0].shape), 0, 255).astype(np.uint8) for _ in range(60)]
    states = feed(td, black, 12.0)
    assert held(states, "covered") == pytest.approx(td.hold_s, abs=0.05)
    assert states[-1] == {"covered"}  # nothing else (not "moved": a covered view is not judged)
    back = feed(td, vtest[180:220], 18.0)
    assert back[-1] == frozenset() and held(back, "covered") == 0.0
    assert not any("covered" in s for s in back[15:])  # cleared within 1.5 s


def test_white_frames_are_blinded(vtest):
    td, rng = learned_on(vtest), np.random.default_rng(5)
    white = [np.clip(rng.normal(250, 3, vtest[0].shape), 0, 255).astype(np.uint8) for _ in range(50)]
    states = feed(td, white, 12.0)
    assert states[25] == frozenset() and states[-1] == {"blinded"}


def test_a_blurred_picture_is_defocused(vtest):
    td = learned_on(vtest)
    blurred = [cv2.GaussianBlur(f, (31, 31), 0) for f in vtest[120:170]]
    states = feed(td, blurred, 12.0)
    assert states[25] == frozenset() and states[-1] == {"defocused"}
    assert not any("moved" in s for s in states)
    back = feed(td, vtest[170:200], 17.0)
    assert back[-1] == frozenset()


def _shift(f):
    return np.roll(f, f.shape[1] // 4, axis=1)


def _rotate(f):
    h, w = f.shape[:2]
    return cv2.warpAffine(f, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)


def _other_region(f):
    h, w = f.shape[:2]
    return cv2.resize(f[h // 4:, w // 4:], (w, h))  # zoomed onto the lower right


@pytest.mark.parametrize("turn", [_shift, _rotate, _other_region], ids=["shifted", "rotated", "zoomed"])
def test_a_turned_camera_is_moved_and_clears_when_turned_back(vtest, turn):
    td = learned_on(vtest)
    states = feed(td, [turn(f) for f in vtest[120:170]], 12.0)
    assert states[25] == frozenset() and states[-1] == {"moved"}
    back = feed(td, vtest[170:200], 17.0)
    assert back[-1] == frozenset()


def test_a_ptz_command_turns_the_camera_without_a_moved_alarm(vtest):
    """Turned by a PTZ command (the worker hands it on: CameraPipeline.steered), the new
    view is learned, not alarmed; turned again with no command, it is a turned camera."""
    td = learned_on(vtest)
    td.steered()
    states = feed(td, [_shift(f) for f in vtest[120:260]], 12.0)  # 14 s on the view the operator chose
    assert not any("moved" in s for s in states) and td.learned
    states = feed(td, vtest[260:320], 26.0)  # turned back with no command: that is tampering
    assert held(states, "moved") == pytest.approx(td.hold_s, abs=0.05), states


def test_a_lasting_new_view_is_learned_as_the_reference(vtest):
    td = TamperDetector(relearn_s=5.0)
    feed(td, vtest[:120], 0.0)
    states = feed(td, [_shift(f) for f in vtest[120:300]], 12.0)  # 18 s on the new view
    first = held(states, "moved")
    assert first == pytest.approx(3.0, abs=0.05)
    gone = next(i for i, s in enumerate(states) if i * 0.1 > first and "moved" not in s) * 0.1
    assert gone == pytest.approx(first + 5.0, abs=0.15)  # re-learned after relearn_s...
    assert not any(states[int(gone * 10):])  # ...and quiet on the new view since


def test_one_odd_frame_neither_raises_nor_drops_an_alarm(vtest):
    td, rng = learned_on(vtest), np.random.default_rng(6)
    black = np.clip(rng.normal(6, 3, vtest[0].shape), 0, 255).astype(np.uint8)
    frames = list(vtest[120:160])
    frames[10] = black  # one black frame among good ones
    assert not any(feed(td, frames, 12.0))
    covered = [black] * 40
    covered[35] = vtest[200]  # one good frame while covered
    states = feed(td, covered, 16.0)
    assert all(s == {"covered"} for s in states[31:])


def test_a_darker_scene_is_neither_covered_nor_defocused(vtest):
    td = learned_on(vtest)
    dusk = [(f * 0.3).astype(np.uint8) for f in vtest[120:220]]  # lights down to 30 %
    assert not any(feed(td, dusk, 12.0))


# --- tracking --------------------------------------------------------------------------
def det(x: float, y: float, w: float = 40, h: float = 100, label: str = "person", score: float = 0.8) -> Detection:
    return Detection(x, y, w, h, score, {"person": 0, "car": 2}[label], label)


def track_pets(gt, step: int, seed: int, drop: float = 0.1, jitter: float = 2.0):
    """Feed the ground truth (every ``step``-th frame) with boxes dropped and jittered.

    Returns, per gt id, the (t, track) pairs of the frames its detection was matched.
    """
    rng, tracker, seen = np.random.default_rng(seed), Tracker(), defaultdict(list)
    for f in range(1, 301, step):
        owner, dets = {}, []
        for gid, x, y, w, h in gt[f]:
            if rng.random() < drop:
                continue
            d = det(x + rng.normal(0, jitter), y + rng.normal(0, jitter), w * (1 + rng.normal(0, 0.03)),
                    h * (1 + rng.normal(0, 0.03)), score=0.9)
            owner[d.box] = gid
            dets.append(d)
        t = (f - 1) / PETS_FPS
        for tr in tracker.update(dets, t):
            if tr.last_t == t and tr.box in owner:
                seen[owner[tr.box]].append((t, tr))
    return seen


def switches(seen, max_gap_s: float = 2.0) -> int:
    """Identity switches: a gt id carried by another track than at its previous sighting.

    A new track after the person was unseen for longer than the tracker's max_age_s is a
    re-acquisition, not a switch: nothing can carry an id through that (gt ids 11 and 12
    are flagged out for 10 and 14 s in frames 1-300).
    """
    return sum(1 for s in seen.values() for (ta, a), (tb, b) in zip(s, s[1:]) if a.id != b.id and tb - ta <= max_gap_s)


@pytest.mark.parametrize("step, mean_max, worst_max", [(1, 3.0, 6), (2, 4.0, 8)], ids=["7fps", "3.5fps"])
def test_pets_ground_truth_keeps_identities(pets_gt, step, mean_max, worst_max):
    """Measured over seeds 0-4: 0,2,3,3,1 switches at 7 fps and 6,2,0,1,0 at 3.5 fps (over 20
    seeds: mean 1.3 and 3.0). Without the velocity prediction it is 6.5 and 14.7: the bounds fail."""
    counts = []
    for seed in range(5):
        seen = track_pets(pets_gt, step, seed)
        counts.append(switches(seen))
        for gid, s in seen.items():
            if len(s) >= 10:
                majority = Counter(tr.id for _, tr in s).most_common(1)[0][0]
                trk = next(tr for _, tr in s if tr.id == majority)
                assert trk.confirmed and trk.label == "person", gid
        assert len(seen) == 10  # every evaluated gt identity of frames 1-300 was tracked
    assert sum(counts) / len(counts) <= mean_max and max(counts) <= worst_max, counts


def test_two_people_crossing_keep_their_ids():
    tracker = Tracker()
    ids = set()
    for i in range(25):  # 5 fps, 100 px/s each, one box on the other at i = 12
        t = i / 5
        a, b = det(100 + 20 * i, 176 + 2 * i), det(580 - 20 * i, 224 - 2 * i)
        tracks = tracker.update([b, a] if i % 2 else [a, b], t)
        if i != 12:  # (at 12 the two boxes are one and the same)
            by_box = {tr.box: tr.id for tr in tracks if tr.last_t == t}
            ids.add((by_box[a.box], by_box[b.box]))
    assert ids == {(1, 2)}


def test_a_small_fast_object_keeps_one_track():
    tracker = Tracker()
    for i in range(10):  # 20x20 px moving 12 px a frame: consecutive boxes overlap at IoU 0.25
        tracks = tracker.update([det(50 + 12 * i, 50, 20, 20)], i / 5)
    assert [tr.id for tr in tracks] == [1] and tracks[0].hits == 10 and tracks[0].confirmed


def test_track_life_cycle_in_seconds():
    tracker = Tracker(max_age_s=2.0, min_hits=2, path_len=5)
    tracker.update([det(100, 100, score=0.5)], 0.0)
    assert tracker.confirmed() == [] and [t.id for t in tracker.tracks()] == [1]
    for i in range(1, 8):
        tracker.update([det(100 + 4 * i, 100, score=0.5 + i / 100)], i * 0.2)
    (tr,) = tracker.confirmed()
    assert tr.hits == 8 and tr.score == pytest.approx(0.57) and tr.first_t == 0.0 and tr.last_t == pytest.approx(1.4)
    assert len(tr.path) == 5 and tr.path[-1] == (pytest.approx(1.4), 128 + 20, 200)  # bottom centre
    assert tr.path[0][0] == pytest.approx(0.6)
    # Not seen: kept (and its box predicted on at 20 px/s) up to max_age_s, then ended once.
    assert tracker.update([], 3.3) == [tr] and tracker.ended() == []
    assert tr.box[0] == pytest.approx(128 + 20 * 1.9, abs=1.0)
    assert tracker.update([], 3.5) == []
    assert tracker.ended() == [tr] and tracker.ended() == []
    (new,) = tracker.update([det(100, 100)], 4.0)
    assert new.id == 2  # ids keep increasing
    tracker.reset()  # a reset ends the live tracks too, so their events close
    assert tracker.tracks() == [] and tracker.ended() == [new]
    assert [t.id for t in tracker.update([det(100, 100)], 5.0)] == [3]


def test_a_car_never_joins_a_person_track():
    tracker = Tracker()
    tracker.update([det(100, 100)], 0.0)
    tracker.update([det(102, 100)], 0.2)
    tracks = tracker.update([det(104, 100, label="car")], 0.4)  # same place, other label
    person, car = sorted(tracks, key=lambda t: t.id)
    assert (person.label, person.hits, car.label, car.id) == ("person", 2, "car", 2)
    tracks = tracker.update([det(106, 100, label="car"), det(106, 101)], 0.6)
    assert {(t.id, t.label, t.hits) for t in tracks} == {(1, "person", 3), (2, "car", 2)}


def test_prediction_follows_seconds_not_frames():
    """The detector may pause (nothing moved, so the gate let no frame through)."""
    tracker = Tracker()
    for i in range(5):
        tracker.update([det(100 + 10 * i, 100)], i * 0.1)  # 100 px/s
    (tr,) = tracker.update([det(100 + 40 + 100 * 1.5, 100)], 0.4 + 1.5)  # 1.5 s later, 150 px on
    assert tr.id == 1 and tr.hits == 6
    assert math.isclose(tr.path[-1][1], 100 + 190 + 20)
