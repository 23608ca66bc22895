"""Redacted copies for third parties (A4.8) on real footage with the real YOLOX-nano model.

What a reviewer would check before the copy leaves: it plays (same size, frame count, frame
times), the people the detector sees in the *original* are unreadable in the copy, the rest
of the picture is the original's (only re-encoded), the subject stays sharp for the whole
clip while the others do not, plates are unreadable, and a broken input gives a clear error
and no half-written file.

"Unreadable" is measured as the detail kept: the correlation between the fine detail
(the picture less a Gaussian blur of sigma 1.5) of the original and of the copy inside a
region. A re-encoded region keeps about 0.97; a pixelated or blurred one about 0.05 (the
block edges of a pixelation are new detail, not the original's, so a plain sharpness
measure would be fooled by them).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from varta.evidence.redaction import (  # noqa: E402
    RedactionError,
    RedactionOptions,
    find_plates,
    load_redaction_detector,
    redact_file,
)

PETS = Path("annotated/PETS09-S2L1/PETS09-S2L1_f1-300_768x576_7fps.mp4")
VTEST = Path("video/vtest.avi")
INTEL = Path("video/intel_person-bicycle-car-detection.mp4")
MODEL = Path("models/yolox_nano.onnx")
VEHICLES = ("car", "bus", "truck", "motorcycle")
SHARP = 0.8  # detail kept by a region that was only re-encoded (measured 0.96 to 0.99)
BLURRED = 0.5  # at most this much kept by a redacted region (measured median 0.04, worst 0.45)


# --- fixtures and helpers ---------------------------------------------------------------
@pytest.fixture(scope="module")
def detector(test_data):
    from varta.analytics.detector import YoloxDetector

    model = test_data / MODEL
    if not model.is_file():
        pytest.skip(f"no detector model at {model}")
    return YoloxDetector(model)


@pytest.fixture(scope="module")
def clips(test_data, tmp_path_factory):
    """The first seconds of PETS09-S2L1 (768x576, 7 fps mp4) and vtest (480x360, 10 fps AVI)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed")
    folder = tmp_path_factory.mktemp("redaction-clips")
    out = {}
    for name, rel, seconds, suffix in (("pets", PETS, 5, ".mp4"), ("vtest", VTEST, 4, ".avi")):
        src = test_data / rel
        if not src.is_file():
            pytest.skip(f"test footage {src} not found")
        out[name] = folder / f"{name}{suffix}"
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-map", "0:v:0",
                        "-c", "copy", str(out[name])], check=True)
    return out


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame as BGR, and the frame times PyAV reports."""
    with av.open(str(path)) as c:
        frames, times = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            times.append(float(f.time) if f.time is not None else float("nan"))
    return frames, times


def detail_kept(orig: np.ndarray, copy: np.ndarray, box) -> float:
    """Correlation of the original's and the copy's fine detail inside ``box`` (x1, y1, x2, y2)."""
    h, w = orig.shape[:2]
    x1, y1 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x2, y2 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
    assert x2 - x1 >= 4 and y2 - y1 >= 4, box
    m = 8  # margin for the blur's reach: the result is as if the whole picture were filtered
    cx1, cy1 = max(0, x1 - m), max(0, y1 - m)

    def fine(img):
        g = cv2.cvtColor(img[cy1:y2 + m, cx1:x2 + m], cv2.COLOR_BGR2GRAY).astype(np.float32)
        return (g - cv2.GaussianBlur(g, (0, 0), 1.5))[y1 - cy1:y2 - cy1, x1 - cx1:x2 - cx1].ravel()

    a, b = fine(orig), fine(copy)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-9))


def psnr_outside(orig: np.ndarray, copy: np.ndarray, boxes, pad: int = 24) -> float:
    """PSNR of the copy against the original away from every box (padded)."""
    keep = np.ones(orig.shape[:2], bool)
    for x1, y1, x2, y2 in boxes:
        keep[max(0, int(y1) - pad):int(y2) + pad, max(0, int(x1) - pad):int(x2) + pad] = False
    diff = orig.astype(np.float64)[keep] - copy.astype(np.float64)[keep]
    return float(10 * np.log10(255 ** 2 / max(np.mean(diff ** 2), 1e-9)))


def head(box) -> tuple[float, float, float, float]:
    """The core of a person's head: the top 20 % of the box, its middle 60 % across."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return x1 + 0.2 * w, y1 + 0.02 * h, x2 - 0.2 * w, y1 + 0.2 * h


def inner(box, share: float = 0.1) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return x1 + share * w, y1 + share / 2 * h, x2 - share * w, y2 - share / 2 * h


_seen: dict[tuple[int, bytes], list] = {}


def detect(detector, frame: np.ndarray) -> list:
    """The detector's boxes on an original frame (remembered: the tests ask several times)."""
    key = (id(detector), hashlib.sha1(frame.tobytes()).digest())
    if key not in _seen:
        _seen[key] = detector.detect(frame)
    return _seen[key]


def people(detector, frame: np.ndarray, min_h: float, min_score: float = 0.5) -> list:
    """Clear person detections (a reviewer checks the people plainly there)."""
    return [d for d in detect(detector, frame) if d.label == "person" and d.h >= min_h and d.score >= min_score]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stream_info(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "size": (s.width, s.height),
                "rate": s.average_rate, "audio": len(c.streams.audio)}


# --- the modes --------------------------------------------------------------------------
def test_faces_mode_blurs_every_head_and_keeps_the_rest(detector, clips, tmp_path):
    src = clips["pets"]
    before = sha256(src)
    dst = tmp_path / "pets-redacted.mp4"
    seen = []
    report = redact_file(src, dst, detector, RedactionOptions(people="faces", detect_every=2), progress=seen.append)

    # It plays like the original: H.264 yuv420p, same size, rate, frame count and frame times.
    assert sha256(src) == before, "the original must never be modified"
    assert dst.is_file() and not (tmp_path / "pets-redacted.mp4.part").exists()
    info = stream_info(dst)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["audio"] == 0
    assert info["size"] == (768, 576) and info["rate"] == 7
    orig, orig_t = decode(src)
    copy, copy_t = decode(dst)
    assert len(copy) == len(orig) == report.frames >= 35
    assert np.allclose(copy_t, orig_t, atol=1e-3)
    data = dst.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "+faststart: the index comes first"
    assert seen == sorted(seen) and seen[-1] == 1.0

    # The report, for the manifest.
    assert report.people_tracks >= 5 and report.vehicles >= 2 and report.subject_tracks == []
    assert report.blurred_regions > report.frames * 5
    assert "head" in report.method and "plates" in report.method and "every 2 frames" in report.method

    # Every clear person in the original has an unreadable head in the copy (odd frames were
    # not detected: their boxes are interpolated), while the legs and the scene stay as they were.
    heads, legs = [], []
    for i, (o, c) in enumerate(zip(orig, copy)):
        dets = detect(detector, o)
        for p in people(detector, o, min_h=60):
            heads.append((detail_kept(o, c, head(p.box)), i, p.box))
            x1, y1, x2, y2 = p.box
            legs.append(detail_kept(o, c, (x1, y1 + 0.65 * (y2 - y1), x2, y2)))
        assert psnr_outside(o, c, [d.box for d in dets]) > 33, f"frame {i}: the background changed"
    assert len(heads) > 100
    worst = max(heads)
    assert worst[0] < BLURRED, f"a head kept detail: {worst}"
    assert np.median([h[0] for h in heads]) < 0.15
    assert np.median(legs) > SHARP, "faces mode must not blur whole people"


def test_people_mode_blurs_whole_people_and_keeps_avi_frame_times(detector, clips, tmp_path):
    """vtest is an AVI whose stamps run in decode order: the copy is numbered at 10 fps."""
    src = clips["vtest"]
    dst = tmp_path / "vtest-redacted.mp4"
    report = redact_file(src, dst, detector, RedactionOptions(people="people", detect_every=2, blur="gaussian"))
    assert "whole people Gaussian-blurred" in report.method
    orig, _ = decode(src)
    copy, copy_t = decode(dst)
    assert stream_info(dst)["size"] == (480, 360)
    assert len(copy) == len(orig) == report.frames >= 40
    assert np.allclose(copy_t, [i / 10 for i in range(len(copy))], atol=1e-3)
    bodies = []
    for i, (o, c) in enumerate(zip(orig, copy)):
        for p in people(detector, o, min_h=40):
            bodies.append((detail_kept(o, c, inner(p.box)), i, p.box))
    assert len(bodies) > 100
    worst = max(bodies)
    assert worst[0] < BLURRED, f"a person kept detail: {worst}"
    assert np.median([b[0] for b in bodies]) < 0.15
    # The lawn in the lower left, where nobody walks in these seconds, is only re-encoded.
    assert min(detail_kept(o, c, (10, 250, 200, 350)) for o, c in zip(orig, copy)) > SHARP


def test_the_subject_stays_sharp_for_the_whole_clip_the_others_do_not(detector, clips, tmp_path):
    src = clips["pets"]
    orig, times = decode(src)
    at = int(np.argmin([abs(t - 1.0) for t in times]))
    # The subject: the tallest person at t = 1 s who stands clear of everyone else.
    candidates = people(detector, orig[at], min_h=70)
    clear = [p for p in candidates if all(_iou(p.box, q.box) == 0 for q in candidates if q is not p)]
    assert clear, "PETS09 has people standing apart at 1 s"
    subject = max(clear, key=lambda p: p.h).box
    h, w = orig[at].shape[:2]
    norm = [subject[0] / w, subject[1] / h, subject[2] / w, subject[3] / h]
    dst = tmp_path / "pets-subject.mp4"
    report = redact_file(src, dst, detector, RedactionOptions(subject=[{"t": 1.0, "box": norm}], detect_every=2))
    assert len(report.subject_tracks) == 1 and report.warnings == []
    assert "1 subject track left visible" in report.method
    copy, _ = decode(dst)

    # Follow the subject through the original, from 1 s backwards and forwards (the copy
    # was made in one go, so the frames before 1 s test that the track's whole life is kept).
    path = {at: subject}
    for step in (-1, 1):
        box, i = subject, at + step
        while 0 <= i < len(orig):
            best = max(people(detector, orig[i], min_h=40, min_score=0.3), key=lambda p: _iou(p.box, box), default=None)
            if best is None or _iou(best.box, box) < 0.2:
                break
            path[i] = box = best.box
            i += step
    assert min(path) == 0 and len(path) >= 20, f"the subject is followed over most of the clip: {sorted(path)}"
    sharp, others = [], []
    for i, box in path.items():
        # Where someone else passes close (seen on this frame or the two either side, even
        # faintly), their blur may cover part of the subject: that is by design, skip those.
        near = [d for k in range(max(0, i - 2), min(len(orig), i + 3))
                for d in people(detector, orig[k], min_h=30, min_score=0.3) if _iou(d.box, path.get(k, box)) < 0.3]
        if all(_iou(_pad(box), _pad(d.box)) == 0 for d in near):
            sharp.append((detail_kept(orig[i], copy[i], head(box)), i))
        others += [detail_kept(orig[i], copy[i], head(d.box)) for d in people(detector, orig[i], min_h=60)
                   if _iou(d.box, box) == 0]
    assert len(sharp) >= 15 and min(sharp)[0] > SHARP, f"the subject was blurred: {sorted(sharp)[:3]}"
    assert sum(i < at for _, i in sharp) >= 5, "sharp before the time the subject was pointed at, too"
    assert len(others) > 50 and max(others) < BLURRED and np.median(others) < 0.15


def test_a_subject_nobody_stands_at_is_reported_and_everyone_is_blurred(detector, clips, tmp_path):
    report = redact_file(clips["vtest"], tmp_path / "out.mp4", detector,
                         RedactionOptions(subject=[{"t": 1.0, "box": [0.0, 0.9, 0.05, 1.0]}], detect_every=3))
    assert report.subject_tracks == [] and "no person found" in report.warnings[0]


# --- plates -----------------------------------------------------------------------------
def _draw_plate(img: np.ndarray, box, at: float) -> tuple[int, int, int, int]:
    """A black-on-white plate "AB 1234 CD", 45 % of the vehicle's width, at height share ``at``."""
    x1, y1, x2, y2 = box
    pw = int(max(48, 0.45 * (x2 - x1)))
    ph = int(pw / 4.6)  # the EU / Ukrainian 520 x 112 mm shape
    px, py = int((x1 + x2) / 2 - pw / 2), int(y1 + at * (y2 - y1))
    cv2.rectangle(img, (px, py), (px + pw, py + ph), (255, 255, 255), -1)
    cv2.rectangle(img, (px, py), (px + pw, py + ph), (30, 30, 30), 1)
    scale = ph / 32
    cv2.putText(img, "AB1234CD", (px + 3, py + ph - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return px, py, px + pw, py + ph


@pytest.fixture(scope="module")
def plated(test_data, detector, tmp_path_factory):
    """3 s of the Intel parking lot while a car crosses it, with plates drawn on the car: one
    where a rear plate sits (lower part of the box) and one on the roof, where only the plate
    finder can catch it (as at a box's end when a car is seen from straight above)."""
    src = test_data / INTEL
    if not src.is_file():
        pytest.skip(f"test footage {src} not found")
    out = tmp_path_factory.mktemp("plates") / "plated.mp4"
    plates: dict[int, list[tuple]] = {}
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=12, options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 768, 432, "yuv420p"
        n = 0
        for i, frame in enumerate(inp.decode(video=0)):
            if i < 362:
                continue
            if i >= 398:
                break
            img = frame.to_ndarray(format="bgr24")
            cars = [d for d in detector.detect(img) if d.label in VEHICLES and d.h >= 60]
            if cars:
                box = max(cars, key=lambda d: d.w * d.h).box
                plates[n] = [_draw_plate(img, box, 0.7), _draw_plate(img, box, 0.2)]
            picture = av.VideoFrame.from_ndarray(img, format="bgr24")
            picture.pts = n
            dst.mux(stream.encode(picture))
            n += 1
        dst.mux(stream.encode(None))
    assert len(plates) >= 30, "the car crosses the lot in these frames"
    return out, plates


def test_plates_are_unreadable(detector, plated, tmp_path):
    src, plates = plated
    dst = tmp_path / "plates-redacted.mp4"
    report = redact_file(src, dst, detector, RedactionOptions(people="none", plates=True))
    assert report.vehicles >= 1 and report.people_tracks == 0
    assert "plates" in report.method and "head" not in report.method
    orig, _ = decode(src)
    copy, _ = decode(dst)
    assert len(copy) == len(orig)
    rear, roof = [], []
    for i, (low, high) in plates.items():  # the characters, inside the plate's outline
        rear.append((detail_kept(orig[i], copy[i], _inset(low)), i))
        roof.append((detail_kept(orig[i], copy[i], _inset(high)), i))
        assert psnr_outside(orig[i], copy[i], [_hull(low, high)], pad=120) > 33
    assert max(rear)[0] < BLURRED, f"a rear plate kept detail: {max(rear)}"
    assert max(roof)[0] < BLURRED, f"the plate finder missed a plate: {max(roof)}"
    assert np.median([r[0] for r in rear + roof]) < 0.15


def test_the_plate_finder_finds_a_plate_high_on_a_car(detector, plated):
    """The finder alone, on one frame: the drawn roof plate is inside one of its patches."""
    src, plates = plated
    frames, _ = decode(src)
    hits = 0
    for i in list(plates)[::6]:
        cars = [d for d in detector.detect(frames[i]) if d.label in VEHICLES]
        found = [p for d in cars for p in find_plates(frames[i], d.box)]
        roof = plates[i][1]
        hits += any(_inside(roof, p) > 0.8 for p in found)
    assert hits >= len(list(plates)[::6]) - 1


# --- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50, bytes(range(256)) * 400],
                         ids=["empty", "text", "garbage"])
def test_a_broken_input_raises_and_leaves_no_file(detector, tmp_path, content):
    src = tmp_path / "broken.mp4"
    src.write_bytes(content)
    dst = tmp_path / "out" / "redacted.mp4"
    dst.parent.mkdir()
    with pytest.raises(RedactionError, match="broken.mp4"):
        redact_file(src, dst, detector, RedactionOptions())
    assert list(dst.parent.iterdir()) == [] and src.read_bytes() == content


def test_clear_errors_for_what_cannot_work(detector, clips, tmp_path):
    src = clips["vtest"]
    with pytest.raises(RedactionError, match="no such file"):
        redact_file(tmp_path / "missing.mp4", tmp_path / "x.mp4", detector, RedactionOptions())
    with pytest.raises(RedactionError, match="no detector model"):
        redact_file(src, tmp_path / "x.mp4", None, RedactionOptions())
    with pytest.raises(RedactionError, match="must not replace the original"):
        redact_file(src, src, detector, RedactionOptions())
    with pytest.raises(RedactionError, match="cannot write"):
        redact_file(src, tmp_path / "no-such-folder" / "x.mp4", detector, RedactionOptions(detect_every=4))
    for bad, words in ((dict(people="heads"), "people must be"), (dict(blur="mosaic"), "blur must be"),
                       (dict(detect_every=0), "detect_every"), (dict(people="none", plates=False), "nothing to redact"),
                       (dict(subject=[{"t": 1, "box": [0.5, 0.5, 0.2, 0.9]}]), "subject"),
                       (dict(subject=[{"box": [0, 0, 1, 1]}]), "subject")):
        with pytest.raises(RedactionError, match=words):
            redact_file(src, tmp_path / "x.mp4", detector, RedactionOptions(**bad))
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no output or .part was left"


def test_the_configured_model_is_loaded_or_its_absence_said(test_data, tmp_path):
    from varta.config import Settings

    with pytest.raises(RedactionError, match="no detector model at .*varta model install yolox-nano"):
        load_redaction_detector(Settings(home=tmp_path))
    det = load_redaction_detector(Settings(home=tmp_path, detector_model=str(test_data / MODEL)))
    assert callable(det.detect)


# --- small geometry -----------------------------------------------------------------------
def _iou(a, b) -> float:
    from varta.analytics.tracker import iou

    return iou(a, b)


def _pad(box, share: float = 0.15):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return x1 - share * w, y1 - share * h, x2 + share * w, y2 + share * h


def _inset(box, px: int = 2):
    return box[0] + px, box[1] + px, box[2] - px, box[3] - px


def _hull(a, b):
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _inside(a, b) -> float:
    """Share of box ``a`` inside box ``b``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((a[2] - a[0]) * (a[3] - a[1]))


def test_frame_rate_fraction_is_kept_for_ntsc_rates(tmp_path, detector, test_data):
    """23.976 fps (2997/125) stays exact: players and the manifest compare durations."""
    src = test_data / "video" / "traffic_overhead.mp4"
    if not src.is_file():
        pytest.skip(f"test footage {src} not found")
    clip = tmp_path / "traffic.mp4"
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", "2", "-c", "copy",
                    str(clip)], check=True)
    dst = tmp_path / "traffic-redacted.mp4"
    report = redact_file(clip, dst, detector, RedactionOptions(people="none", detect_every=3))
    assert stream_info(dst)["rate"] == Fraction(2997, 125)
    assert report.vehicles >= 3
    (_, t_orig), (_, t_copy) = decode(clip), decode(dst)
    assert len(t_copy) == len(t_orig) and np.allclose(t_copy, np.array(t_orig) - t_orig[0], atol=1e-3)
