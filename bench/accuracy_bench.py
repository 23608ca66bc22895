#!/usr/bin/env python3
"""Detection and tracking accuracy of Varta's analytics pipeline on annotated sequences.

Everything goes through Varta's own code: ``FrameSource`` decodes the file (PyAV), a
``CameraPipeline`` runs the motion gate, ``YoloxDetector`` (YOLOX-nano, one ONNX Runtime
thread, Varta's default) and the tracker, and ``MotWriter`` writes the tracked boxes as
``varta analyze VIDEO --mot OUT.txt`` does. Each on every frame (``fps=0``, so frame numbers
match the ground truth) and at the 5 fps analysis rate (only the analysed frames are scored):

1. the reference (the floor): the official FP32 model on the official 416x416 canvas, on
   every analysed frame, raw person detections; it must reproduce the data set's MANIFEST;

and for each inference variant (``--variants``, default ``fp32,int8``: the FP32 weights on
Varta's cropped canvas, and the INT8 model ``varta model install`` makes):

1v. the variant's raw detections on every analysed frame;
2.  + tracker: what ``--mot`` writes with the detector on every frame (only observations:
    confirmed tracks on frames where a detection matched them; a track's earlier
    observations are written once it is confirmed);
3.  the full pipeline as Varta runs it: motion gate + tracker.

ΔP / ΔR are against (1) on the same frames: the issue's target is every variant's (3)
within 1 point of (1), or better.

Scoring (the MANIFEST's method): person boxes only; per frame, detections (or tracks) in
descending score order each take the unmatched ground-truth box with the highest IoU >= 0.5;
a match with a flag-0 (ignore) box is neither TP nor FP, flag-0 boxes are never FN. The
"far region ignored" precision drops unmatched detections whose box lies inside the top-left
corner x < 130, y < 160 (768x576 pixels; scaled for vtest), where PETS09-S2L1 leaves the
walkers on the far path unannotated; "h >= 40 px" counts precision only on boxes at least
40 px tall (scaled likewise). Identity switches (IDSW) and MOTA follow the CLEAR-MOT rules
(correspondences kept while IoU >= 0.5, the rest paired by the Hungarian method; own code,
motmetrics is not installed): MOTA = 1 - (FN + FP + IDSW) / ground-truth boxes.

To prove the bench measures what ``varta analyze --mot`` writes, each tracked run is done
twice: by a loop that mirrors ``analyze_file`` (it needs the raw detections and the track
labels, which the MOT file does not carry) and by ``analyze_file`` itself; the two MOT texts
must be identical (``--no-verify`` skips the second run).

Usage::

    .venv/bin/python bench/accuracy_bench.py [--quick] [--results FILE] [--variants fp32,int8]
    .venv/bin/python bench/accuracy_bench.py --sequences pets,vtest --rates 0

``--quick``: PETS09-S2L1 only (300 frames). Data: ``$VARTA_TEST_DATA`` (default
/work/shared/data); the INT8 variant is made from the data's FP32 model into a temporary
folder exactly as ``varta model install`` makes it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (also puts the project root on sys.path)

from varta.analytics.config import parse_config  # noqa: E402
from varta.analytics.offline import MotWriter, analyze_file  # noqa: E402
from varta.analytics.pipeline import CameraPipeline  # noqa: E402
from varta.analytics.source import FrameSource  # noqa: E402
from varta.analytics.tracker import iou  # noqa: E402

DATA = Path(os.environ.get("VARTA_TEST_DATA", "/work/shared/data"))
IOU = 0.5
REGION = (130.0, 160.0)  # far top-left of PETS09-S2L1 at 768x576 (MANIFEST §3.1)
MIN_H = 40.0


@dataclass(frozen=True)
class Sequence:
    key: str
    video: str  # relative to DATA
    gt: str
    scale: float  # gt pixels -> video pixels
    frames: int | None  # gt frames 1..frames are scored (None: all the video has)
    region: bool  # the far top-left region variant applies
    manifest: tuple[int, int, int] | None  # MANIFEST's TP, FP, FN for raw detections on this file


SEQUENCES = {
    "pets": Sequence("pets", "annotated/PETS09-S2L1/PETS09-S2L1_f1-300_768x576_7fps.mp4",
                     "annotated/PETS09-S2L1/gt/gt.txt", 1.0, 300, True, (1517, 489, 183)),
    "vtest": Sequence("vtest", "video/vtest.avi", "annotated/PETS09-S2L1/gt/gt.txt", 0.625, 795, True,
                      (4034, 1193, 442)),
    "tud": Sequence("tud", "annotated/TUD-Campus/TUD-Campus.mp4", "annotated/TUD-Campus/gt/gt.txt", 1.0, 71, False,
                    (277, 152, 82)),
}
LABELS = {"pets": "PETS09-S2L1 mp4 768x576 7 fps (frames 1-300)", "vtest": "vtest.avi 480x360 (795 frames, gt x 0.625)",
          "tud": "TUD-Campus mp4 640x480 25 fps (71 frames)"}


# --------------------------------------------------------------------------- ground truth / scoring


def load_gt(seq: Sequence) -> dict[int, list[tuple[tuple[float, float, float, float], int, int]]]:
    gt: dict[int, list] = {}
    for line in (DATA / seq.gt).read_text().splitlines():
        p = line.split(",")
        if len(p) < 7:
            continue
        f, tid = int(p[0]), int(p[1])
        if seq.frames and f > seq.frames:
            continue
        x, y, w, h = (float(v) * seq.scale for v in p[2:6])
        gt.setdefault(f, []).append(((x, y, x + w, y + h), tid, int(float(p[6]))))
    return gt


@dataclass
class Score:
    """Precision and recall by the MANIFEST's method (greedy by score)."""

    frames: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_region: int = 0  # FP inside the far top-left region
    tp_tall: int = 0  # TP / FP among boxes at least MIN_H tall
    fp_tall: int = 0

    def add(self, dets: list[tuple[tuple, float]], gts: list, region: tuple[float, float] | None,
            min_h: float) -> None:
        """One frame: dets = [(box, score)], gts = [(box, gt id, flag)]."""
        self.frames += 1
        used: set[int] = set()
        for box, _score in sorted(dets, key=lambda d: -d[1]):
            best, bi = IOU - 1e-12, None
            for gi, g in enumerate(gts):
                if gi in used:
                    continue
                o = iou(box, g[0])
                if o > best:
                    best, bi = o, gi
            tall = (box[3] - box[1]) >= min_h
            if bi is None:
                self.fp += 1
                self.fp_tall += tall
                if region and box[2] <= region[0] and box[3] <= region[1]:
                    self.fp_region += 1
                continue
            used.add(bi)
            if gts[bi][2] != 1:
                continue  # an ignore box: neither TP nor FP
            self.tp += 1
            self.tp_tall += tall
        self.fn += sum(1 for gi, g in enumerate(gts) if g[2] == 1 and gi not in used)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def precision_region(self) -> float:
        fp = self.fp - self.fp_region
        return self.tp / (self.tp + fp) if self.tp + fp else float("nan")

    @property
    def precision_tall(self) -> float:
        return self.tp_tall / (self.tp_tall + self.fp_tall) if self.tp_tall + self.fp_tall else float("nan")


@dataclass
class ClearMot:
    """Identity switches and MOTA by the CLEAR-MOT rules (as motmetrics/the MOTChallenge devkit):
    a ground-truth person keeps last frame's track while their IoU stays >= 0.5; the rest are
    paired by the Hungarian method on IoU >= 0.5; a person paired with another track than the
    one it was last paired with is a switch. Tracks paired with flag-0 boxes are dropped."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    idsw: int = 0
    gt_boxes: int = 0
    ids: set = field(default_factory=set)
    _prev: dict = field(default_factory=dict)

    def add(self, tracks: list[tuple[tuple, int]], gts: list) -> None:
        from scipy.optimize import linear_sum_assignment

        pairs: list[tuple[int, int]] = []
        free_g, free_t = set(range(len(gts))), set(range(len(tracks)))
        by_tid = {tid: ti for ti, (_b, tid) in enumerate(tracks)}
        for gi, g in enumerate(gts):
            ti = by_tid.get(self._prev.get(g[1], -1))
            if ti is not None and ti in free_t and iou(tracks[ti][0], g[0]) >= IOU:
                pairs.append((gi, ti))
                free_g.discard(gi)
                free_t.discard(ti)
        gl, tl = sorted(free_g), sorted(free_t)
        if gl and tl:
            cost = [[1.0 - iou(tracks[ti][0], gts[gi][0]) for ti in tl] for gi in gl]
            for r, c in zip(*linear_sum_assignment(cost)):
                if 1.0 - cost[r][c] >= IOU:
                    gi, ti = gl[r], tl[c]
                    tid = tracks[ti][1]
                    if gts[gi][2] == 1 and gts[gi][1] in self._prev and self._prev[gts[gi][1]] != tid:
                        self.idsw += 1
                    pairs.append((gi, ti))
                    free_t.discard(ti)
        ones = sum(1 for g in gts if g[2] == 1)
        self.gt_boxes += ones
        tp = 0
        for gi, ti in pairs:
            if gts[gi][2] == 1:
                tp += 1
                self._prev[gts[gi][1]] = tracks[ti][1]
                self.ids.add(tracks[ti][1])
        self.tp += tp
        self.fn += ones - tp
        self.fp += len(free_t)

    @property
    def mota(self) -> float:
        return 1 - (self.fn + self.fp + self.idsw) / self.gt_boxes if self.gt_boxes else float("nan")


# --------------------------------------------------------------------------- running the pipeline


class RecordingDetector:
    """Varta's detector, remembering the last call's detections (for the raw configurations)."""

    def __init__(self, inner):
        self.inner = inner
        self.last: list = []
        self.calls = 0
        self.seconds = 0.0

    def detect(self, bgr, **kw):
        t = time.process_time()
        self.last = self.inner.detect(bgr, **kw)
        self.seconds += time.process_time() - t
        self.calls += 1
        return self.last


@dataclass
class Run:
    frames: dict[int, dict]  # gt frame number -> {"raw": [...] or None, "tracks": [...]}
    mot: str  # what write_mot wrote (all classes, as `varta analyze --mot`)
    decoded: int
    analysed: int
    motion_frames: int
    detections: int
    cpu_s: float
    wall_s: float
    backward: int  # analysed frames whose time is not after the previous one's


def container_rate(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        return float(c.streams.video[0].average_rate)


def run_pipeline(path: Path, detector, fps: float, gate: bool, repair_rate: float | None = None,
                 settings: dict | None = None) -> Run:
    """The loop of ``varta.analytics.offline.analyze_file``, keeping the raw detections and labels.

    ``repair_rate`` (a diagnostic, not what Varta does): give frame i the time i / rate instead
    of the decoder's timestamp, and pick the analysed frames by that time as FrameSource does.
    """
    cfg = parse_config({"enabled": True, **(settings or {})})
    rec = RecordingDetector(detector)
    pipeline = CameraPipeline(cfg, rec)
    pipeline.always_detect = not gate
    source = FrameSource(str(path), 0 if repair_rate else fps, live=False, start_us=0)
    out = io.StringIO()
    writer = MotWriter(out, keep=True)
    frames: dict[int, dict] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    last_t, backward, next_t = None, 0, None
    for frame in source.frames():
        if repair_rate:
            frame.t = frame.index / repair_rate
            frame.wall_us = int(frame.t * 1e6)
            if fps and next_t is not None and frame.t < next_t - 1e-6:
                continue
            if fps:
                step = 1.0 / fps
                next_t = frame.t + step if next_t is None or frame.t - next_t > step else next_t + step
        if last_t is not None and frame.t <= last_t:
            backward += 1
        last_t = frame.t
        before = rec.calls
        step = pipeline.process(frame.bgr, frame.t, frame.wall_us)
        raw = None
        if step.detected and rec.calls > before:
            raw = [d for d in rec.last if d.label == "person"]
        writer.write(frame.index + 1, pipeline.tracker.tracks(), frame.t)
        frames[frame.index + 1] = {"raw": raw, "tracks": []}
    writer.close()
    for frame_no, tid, box, sc, label in writer.rows:  # (box, score, id, label): observations only
        frames[frame_no]["tracks"].append((box, sc, tid, label))
    st = pipeline.stats
    return Run(frames, out.getvalue(), source.decoded, st.frames, st.motion_frames, st.detections_run,
               time.process_time() - c0, time.perf_counter() - t0, backward)


def verify_with_analyze_file(path: Path, detector, fps: float, gate: bool, expected: str) -> str:
    buf = io.StringIO()
    analyze_file(path, parse_config({"enabled": True}), detector, fps=fps, mot=buf, gate=gate)
    got = buf.getvalue()
    if got == expected:
        return f"identical ({got.count(chr(10))} lines)"
    return f"DIFFERENT: analyze_file {got.count(chr(10))} lines vs mirror {expected.count(chr(10))}"


def score(run: Run, gt: dict, seq: Sequence, what: str, frames_scored: set[int],
          labels: str = "person") -> tuple[Score, ClearMot]:
    """what: "raw" (detections) or "tracks" (what ``--mot`` writes)."""
    s, m = Score(), ClearMot()
    region = (REGION[0] * seq.scale, REGION[1] * seq.scale) if seq.region else None
    for f in sorted(frames_scored):
        item = run.frames.get(f)
        if item is None:
            continue
        if what == "raw":
            boxes = [(d.box, d.score, None) for d in (item["raw"] or [])]
        else:
            boxes = [(b, sc, tid) for b, sc, tid, lab in item["tracks"] if labels == "all" or lab == labels]
        gts = gt.get(f, [])
        s.add([(b, sc) for b, sc, _ in boxes], gts, region, MIN_H * seq.scale)
        if what != "raw":
            m.add([(b, tid) for b, _, tid in boxes], gts)
    return s, m


# --------------------------------------------------------------------------- main


def fmt(x: float, nd: int = 3) -> str:
    return "–" if x != x else f"{x:.{nd}f}"


def make_detectors(model: Path, variants: list[str]) -> tuple[dict, str]:
    """The reference (official square canvas, FP32) and each variant, made as Varta makes them."""
    import shutil
    import tempfile

    from varta.analytics.detector import YoloxDetector
    from varta.analytics.models import DEFAULT_MODEL, derive_int8, models_dir

    dets = {"reference": YoloxDetector(model, threads=1, square=True)}
    notes = []
    for v in variants:
        if v == "fp32":
            dets[v] = YoloxDetector(model, threads=1)
        elif v == "int8":
            home = Path(tempfile.mkdtemp(prefix="varta-acc-"))
            models_dir(home).mkdir(parents=True)
            shutil.copy(model, models_dir(home) / model.name)
            t = time.process_time()
            path = derive_int8(DEFAULT_MODEL, home)
            info = json.loads(path.with_suffix(".onnx.json").read_text())
            notes.append(f"INT8 made in {time.process_time() - t:.1f} s CPU from {info['frames']} frames of "
                         f"{', '.join(info['calibration'])} (sha256 {info['sha256'][:12]}…, ONNX Runtime "
                         f"{info['onnxruntime']})")
            dets[v] = YoloxDetector(path, threads=1)
        else:
            raise SystemExit(f"unknown variant {v}")
    return dets, "; ".join(notes)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="PETS09-S2L1 only")
    ap.add_argument("--sequences", default=None, help="comma-separated: pets,vtest,tud (default all)")
    ap.add_argument("--rates", default="0,5", help="analysis rates, frames/s; 0 = every frame (default 0,5)")
    ap.add_argument("--variants", default="fp32,int8", help="inference variants (default fp32,int8)")
    ap.add_argument("--no-verify", action="store_true", help="skip the analyze_file cross-check runs")
    ap.add_argument("--results", default=None, help="append the Markdown block here (default bench/out/accuracy.md)")
    a = ap.parse_args(argv)
    keys = (a.sequences or ("pets" if a.quick else "pets,vtest,tud")).split(",")
    rates = [float(x) for x in a.rates.split(",") if x.strip()]
    variants = [v for v in a.variants.split(",") if v]
    code0 = C.code_version()
    model = DATA / "models" / "yolox_nano.onnx"
    if not model.is_file():
        raise SystemExit(f"no detector model at {model} (set VARTA_TEST_DATA)")
    from varta.analytics.models import sha256_of

    dets, made = make_detectors(model, variants)
    load0 = os.getloadavg()
    t_start = time.monotonic()
    rows, notes, verify_rows, verdict = [], [], [], []
    for key in keys:
        seq = SEQUENCES[key]
        gt = load_gt(seq)
        path = DATA / seq.video
        print(f"\n== {LABELS[key]}", flush=True)
        for fps in rates:
            rate = "every frame" if not fps else f"{fps:g} fps"
            ref_run = run_pipeline(path, dets["reference"], fps, False)
            scored = {f for f in ref_run.frames if not seq.frames or f <= seq.frames}
            ref, _ = score(ref_run, gt, seq, "raw", scored)
            configs = [("reference", "(1) FP32, official 416x416 canvas, raw detections (reference)", ref_run, "raw")]
            for v in variants:
                runs = {}
                for gate in (False, True):
                    r = run_pipeline(path, dets[v], fps, gate)
                    runs[gate] = r
                    print(f"   {v} fps={fps:g} gate={gate}: {r.analysed}/{r.decoded} frames analysed, motion on "
                          f"{r.motion_frames}, detector on {r.detections}; {r.cpu_s:.1f} s CPU", flush=True)
                    if not a.no_verify:
                        vv = verify_with_analyze_file(path, dets[v], fps, gate, r.mot)
                        verify_rows.append([key, rate, v, "on" if gate else "off", vv])
                configs += [(v, f"(1v) {v}: raw detections", runs[False], "raw"),
                            (v, f"(2) {v}: detector every frame + tracker (`--mot`)", runs[False], "tracks"),
                            (v, f"(3) {v}: motion gate + tracker (Varta's pipeline)", runs[True], "tracks")]
            for v, name, r, what in configs:
                s, m = score(r, gt, seq, what, scored)
                tracked = what == "tracks"
                man = ""
                if v == "reference" and not fps and seq.manifest:
                    mt, mf, mn = seq.manifest
                    same = (s.tp, s.fp, s.fn) == seq.manifest
                    man = (f"MANIFEST {mt}/{mf}/{mn}: {'reproduced' if same else 'NOT reproduced'} "
                           f"(P {mt / (mt + mf):.3f}, R {mt / (mt + mn):.3f})")
                dp, dr = 100 * (s.precision - ref.precision), 100 * (s.recall - ref.recall)
                rows.append([key, rate, name, s.frames, f"{r.detections}/{r.analysed}", s.tp, s.fp, s.fn,
                             fmt(s.precision), fmt(s.recall),
                             f"{dp:+.1f} / {dr:+.1f}" if v != "reference" else "–",
                             fmt(s.precision_region) if seq.region else "–", fmt(s.precision_tall),
                             m.idsw if tracked else "–", fmt(m.mota) if tracked else "–",
                             len(m.ids) if tracked else "–", f"{r.cpu_s:.1f}", man])
                if name.startswith("(3)"):
                    ok = dp >= -1.0 and dr >= -1.0
                    verdict.append([key, rate, v, f"{dp:+.1f}", f"{dr:+.1f}", "**met**" if ok else "missed"])
                print(f"   {rate:>11} {name:<58} TP {s.tp:5d} FP {s.fp:5d} FN {s.fn:5d} P {fmt(s.precision)} "
                      f"R {fmt(s.recall)} P(region) {fmt(s.precision_region)} IDSW "
                      f"{m.idsw if tracked else '-'} MOTA {fmt(m.mota) if tracked else '-'} {man}", flush=True)
    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()
    code1 = C.code_version()
    changed = f"\n- the code changed during the run: {code0} at the start" if code1 != code0 else ""
    extra = (f"- data: {DATA} (model sha256 {sha256_of(model)[:12]}…); YOLOX-nano via Varta's YoloxDetector, "
             f"1 ONNX Runtime thread, score 0.3, NMS 0.45; default analytics settings (`parse_config({{}})`)\n"
             f"- {made or 'no INT8 variant'}\n"
             f"- {elapsed:.0f} s; load average at start {load0[0]:.2f}, at end {load1[0]:.2f}{changed}")
    block = C.header("Analytics accuracy: Varta's pipeline on annotated sequences (persons, IoU 0.5)", extra)
    block += "\n" + C.md_table(
        ["seq", "rate", "configuration", "frames scored", "detector runs / analysed", "TP", "FP", "FN",
         "precision", "recall", "ΔP / ΔR vs (1), points", "P, far region ignored", f"P, boxes ≥ {MIN_H:g} px",
         "IDSW", "MOTA", "person track ids", "CPU s", "reference"], rows)
    block += "\n\nTarget: Varta's pipeline (3) within 1 point of the reference (1) in precision and in recall, or better:\n\n"
    block += C.md_table(["seq", "rate", "variant", "ΔP", "ΔR", "target"], verdict)
    if verify_rows:
        block += "\n\n`varta analyze --mot` (analyze_file + MotWriter) vs the bench's mirror loop, MOT text:\n\n"
        block += C.md_table(["seq", "rate", "variant", "motion gate", "MOT output"], verify_rows)
    block += ("\n\nScoring as in the data's MANIFEST: greedy by score, IoU ≥ 0.5, flag-0 boxes neither TP nor FN. "
              "Tracks: what `--mot` writes, person label only: observations of confirmed tracks (never a "
              "predicted box). At 5 fps only the analysed frames are scored. IDSW and MOTA by the CLEAR-MOT rules "
              "(own code, motmetrics is not installed).")
    if notes:
        block += "\n\nNotes:\n" + "\n".join(f"- {x}" for x in notes)
    return C.emit(block, a.results, "accuracy.md")


if __name__ == "__main__":
    main()
