#!/usr/bin/env python3
"""Tracker choice by measurement: Varta's tracker vs ByteTrack and OC-SORT (Roboflow ``trackers``).

Issue 14: keep Varta's own SORT-style tracker (``varta.analytics.tracker.Tracker``) or adopt a
maintained one, if that one is better on identity switches and precision.

Method
------
1. Detections, once: Varta's ``YoloxDetector`` (``yolox_nano.onnx`` from the test data, one ONNX
   Runtime thread, Varta's defaults: score 0.3, NMS 0.45, the classes of interest) runs on the
   frames ``FrameSource(path, fps, live=False, start_us=0)`` yields, at ``fps=5`` (Varta's
   analysis rate) and ``fps=0`` (every frame), on PETS09-S2L1 (the annotated mp4, frames
   1-300), ``video/vtest.avi`` (the same scene re-encoded, ground truth x 0.625) and TUD-Campus.
   The per-frame detections (all classes, as the detector returns them) are cached in a
   ``.npz`` under the temp directory (``--cache DIR``); re-runs only track and score.
2. The SAME detections go to each tracker, frame by frame:

   - ``varta``: ``Tracker()`` (default arguments), ``update(dets, t)`` with the frame's stream
     time. Reported on a frame: confirmed tracks matched on that frame (``last_t == t``) with
     the matched detection's box (``track.box``); a box the tracker only predicted is never
     reported (and, unlike ``--mot``, earlier observations are not back-filled on confirmation).
   - ``bytetrack`` / ``ocsort``: ``trackers.ByteTrackTracker`` / ``trackers.OCSORTTracker``
     (Roboflow ``trackers``), every argument at its documented default except ``frame_rate``,
     set to the analysed rate (5, or the container's rate when every frame is analysed);
     ``update(sv.Detections)`` without timestamps (the library's default fixed-rate mode;
     ``--timestamps`` passes the frame's time instead). Their ``update`` returns only the
     frame's input detections, each with the ``tracker_id`` of the track it was associated
     with, or -1 (unassociated, immature, or below the confidence threshold): the rows with
     an id are reported, so they too report only observations, with the detection's box.

   Diagnostic rows (``--no-diagnostic`` drops them), to tell the tracker from the confidence
   filter the library defaults imply (ByteTrack associates first, and OC-SORT only, detections
   scoring >= 0.6; ByteTrack starts tracks only at >= 0.7, Varta's detector reports >= 0.3):
   the raw person detections scoring >= 0.6, and ``varta-hi``, Varta's tracker fed only the
   detections scoring >= 0.6 (not a default: a measurement, not a proposal).

   Each tracker gets all classes (Varta matches a detection to a track of the same label
   only; the library trackers are class-agnostic and carry ``class_id`` through); person
   boxes are scored.
3. Scoring is the accuracy bench's own (``bench/accuracy_bench.py``: ``load_gt``, ``Score``,
   ``ClearMot``): person boxes, greedy by score, IoU >= 0.5, flag-0 ground truth neither TP nor
   FN; "P, far region ignored" and "P, h >= 40 px" as there; IDSW and MOTA by the CLEAR-MOT
   rules. The raw person detections are the reference row (precision and recall only). "ids"
   is the number of distinct person track ids a tracker reported, "ids on gt" those matched
   to a ground-truth person at least once, against the number of ground-truth people (flag 1)
   in the scored frames. "CPU ms/frame": ``time.process_time`` around each ``update`` call
   only (not the conversion to ``sv.Detections``), averaged over the analysed frames.

Usage::

    .venv/bin/python bench/tracker_bench.py [--sequences pets,vtest,tud] [--rates 5,0]
                                            [--timestamps] [--cache DIR] [--results FILE]

Needs ``trackers`` (PyPI, 2.6.1 measured; it pulls ``supervision``) in the venv for the bench
only; it is not a Varta dependency. Writes the Markdown block to bench/out/tracker.md
(``--results`` elsewhere), replacing what was there.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2-vCPU machine: no BLAS thread pools

import argparse
import hashlib
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # also puts the project root on sys.path
import accuracy_bench as A  # the sequences, ground truth and scorers

from varta.analytics.detector import Detection
from varta.analytics.source import FrameSource
from varta.analytics.tracker import Tracker

PERSON = 0
HIGH = 0.6  # the library trackers' default high_conf_det_threshold (ByteTrack also spawns only at >= 0.7)


# --------------------------------------------------------------------------- detections, cached


def _cache_file(cache: Path, path: Path, fps: float, model: Path) -> Path:
    h = hashlib.sha256()
    for part in (str(path), str(path.stat().st_size), str(int(path.stat().st_mtime)), str(fps), str(model),
                 str(model.stat().st_size)):
        h.update(part.encode())
    return cache / f"{path.stem}-fps{fps:g}-{h.hexdigest()[:12]}.npz"


def detections(path: Path, fps: float, model: Path, cache: Path) -> tuple[list, dict[int, str], float]:
    """[(frame number 1-based, t, [Detection])] for the frames FrameSource yields; labels; detector CPU s."""
    from varta.analytics.detector import YoloxDetector

    f = _cache_file(cache, path, fps, model)
    if f.is_file():
        z = np.load(f, allow_pickle=False)
        labels = dict(zip(z["label_cls"].tolist(), z["label_names"].tolist()))
        rows = z["dets"]
        by_frame: dict[int, list] = {}
        for fi, x, y, w, h, s, c in rows.tolist():
            by_frame.setdefault(int(fi), []).append(Detection(x, y, w, h, s, int(c), labels[int(c)]))
        out = [(int(n), float(t), by_frame.get(int(n), [])) for n, t in z["frames"].tolist()]
        return out, labels, float(z["cpu_s"])
    det = YoloxDetector(model, threads=1)
    out, rows, labels = [], [], {}
    c0 = time.process_time()
    for frame in FrameSource(str(path), fps, live=False, start_us=0).frames():
        ds = det.detect(frame.bgr)
        n = frame.index + 1
        out.append((n, frame.t, ds))
        for d in ds:
            labels[d.cls] = d.label
            rows.append((n, d.x, d.y, d.w, d.h, d.score, d.cls))
    cpu = time.process_time() - c0
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, frames=np.array([(n, t) for n, t, _ in out], dtype=np.float64).reshape(-1, 2),
             dets=np.array(rows, dtype=np.float64).reshape(-1, 7),
             label_cls=np.array(sorted(labels), dtype=np.int64),
             label_names=np.array([labels[c] for c in sorted(labels)], dtype=str), cpu_s=cpu)
    return out, labels, cpu


# --------------------------------------------------------------------------- trackers


def run_varta(frames: list) -> tuple[dict[int, list], float]:
    """frame -> [(box, score, id)] person observations of confirmed tracks; CPU s in update."""
    tr = Tracker()
    out: dict[int, list] = {}
    cpu = 0.0
    for n, t, ds in frames:
        c = time.process_time()
        tr.update(ds, t)
        cpu += time.process_time() - c
        out[n] = [(k.box, k.seen_score, k.id) for k in tr.tracks()
                  if k.confirmed and k.last_t == t and k.cls == PERSON]
    return out, cpu


def run_library(frames: list, name: str, rate: float, timestamps: bool) -> tuple[dict[int, list], float]:
    import supervision as sv
    import trackers

    cls = {"bytetrack": trackers.ByteTrackTracker, "ocsort": trackers.OCSORTTracker}[name]
    tr = cls(frame_rate=rate)
    out: dict[int, list] = {}
    cpu = 0.0
    for n, t, ds in frames:
        if ds:
            d = sv.Detections(xyxy=np.array([x.box for x in ds], dtype=np.float32),
                              confidence=np.array([x.score for x in ds], dtype=np.float32),
                              class_id=np.array([x.cls for x in ds], dtype=int))
        else:
            d = sv.Detections.empty()
        c = time.process_time()
        r = tr.update(d, timestamp=t if timestamps else None)
        cpu += time.process_time() - c
        out[n] = [(tuple(map(float, b)), float(s), int(i))
                  for b, s, k, i in zip(r.xyxy, r.confidence if r.confidence is not None else [1.0] * len(r),
                                        r.class_id if r.class_id is not None else [PERSON] * len(r), r.tracker_id)
                  if i != -1 and k == PERSON]
    return out, cpu


# --------------------------------------------------------------------------- scoring


def score(obs: dict[int, list], gt: dict, seq, scored: list[int], tracked: bool):
    s, m = A.Score(), A.ClearMot()
    region = (A.REGION[0] * seq.scale, A.REGION[1] * seq.scale) if seq.region else None
    ids = set()
    for f in scored:
        boxes = obs.get(f, [])
        gts = gt.get(f, [])
        s.add([(b, sc) for b, sc, _ in boxes], gts, region, A.MIN_H * seq.scale)
        if tracked:
            m.add([(b, i) for b, _, i in boxes], gts)
            ids.update(i for _, _, i in boxes)
    return s, m, ids


def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", default="pets,vtest,tud", help="comma-separated: pets,vtest,tud")
    ap.add_argument("--rates", default="5,0", help="analysis rates, frames/s; 0 = every frame (default 5,0)")
    ap.add_argument("--timestamps", action="store_true", help="pass frame times to the library trackers")
    ap.add_argument("--no-diagnostic", dest="diagnostic", action="store_false",
                    help="leave out the diagnostic rows (score >= 0.6 detections, raw and through Varta's tracker)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "varta-tracker-bench"),
                    help="detection cache folder")
    ap.add_argument("--results", default=None, help="write the Markdown block here (default bench/out/tracker.md)")
    a = ap.parse_args(argv)
    model = A.DATA / "models" / "yolox_nano.onnx"
    if not model.is_file():
        raise SystemExit(f"no detector model at {model} (set VARTA_TEST_DATA)")
    try:
        import trackers  # noqa: F401
    except ImportError:
        raise SystemExit("the library trackers need `trackers`: .venv/bin/pip install trackers (bench only)")
    names = ["varta", "bytetrack", "ocsort"] + (["varta-hi"] if a.diagnostic else [])
    rows, det_cpu = [], []
    t_start = time.monotonic()
    for key in a.sequences.split(","):
        seq = A.SEQUENCES[key]
        gt = A.load_gt(seq)
        path = A.DATA / seq.video
        people = {g[1] for fr in gt.values() for g in fr if g[2] == 1}
        for fps in (float(x) for x in a.rates.split(",") if x.strip()):
            frames, _labels, dcpu = detections(path, fps, model, Path(a.cache))
            rate = fps or A.container_rate(path)
            rate_s = f"{fps:g} fps" if fps else f"every frame ({rate:g} fps)"
            scored = [n for n, _, _ in frames if not seq.frames or n <= seq.frames]
            det_cpu.append(f"{key} {rate_s}: {len(frames)} frames, {1000 * dcpu / max(1, len(frames)):.1f} ms/frame")
            raw = {n: [(d.box, d.score, None) for d in ds if d.cls == PERSON] for n, _, ds in frames}
            s, _, _ = score(raw, gt, seq, scored, False)
            ref_p = s.precision
            rows.append([key, rate_s, "raw detections (reference)", len(scored), s.tp, s.fp, s.fn,
                         A.fmt(s.precision), A.fmt(s.recall), "–",
                         A.fmt(s.precision_region) if seq.region else "–", A.fmt(s.precision_tall),
                         "–", "–", "–", "–", len(people), "–"])
            hi = {n: [x for x in v if x[1] >= HIGH] for n, v in raw.items()}
            s2, _, _ = score(hi, gt, seq, scored, False)
            rows.append([key, rate_s, f"raw detections, score ≥ {HIGH:g} (diagnostic)", len(scored), s2.tp, s2.fp,
                         s2.fn, A.fmt(s2.precision), A.fmt(s2.recall), f"{100 * (s2.precision - ref_p):+.1f}",
                         A.fmt(s2.precision_region) if seq.region else "–", A.fmt(s2.precision_tall),
                         "–", "–", "–", "–", len(people), "–"])
            for name in names:
                if name == "varta":
                    obs, cpu = run_varta(frames)
                elif name == "varta-hi":
                    obs, cpu = run_varta([(n, t, [d for d in ds if d.score >= HIGH]) for n, t, ds in frames])
                else:
                    obs, cpu = run_library(frames, name, rate, a.timestamps)
                s, m, ids = score(obs, gt, seq, scored, True)
                rows.append([key, rate_s, name, len(scored), s.tp, s.fp, s.fn, A.fmt(s.precision), A.fmt(s.recall),
                             f"{100 * (s.precision - ref_p):+.1f}",
                             A.fmt(s.precision_region) if seq.region else "–", A.fmt(s.precision_tall),
                             m.idsw, A.fmt(m.mota), len(ids), len(m.ids), len(people),
                             f"{1000 * cpu / max(1, len(frames)):.3f}"])
                print(f"{key:6} {rate_s:22} {name:10} TP {s.tp:5d} FP {s.fp:5d} FN {s.fn:5d} "
                      f"P {A.fmt(s.precision)} R {A.fmt(s.recall)} IDSW {m.idsw:3d} MOTA {A.fmt(m.mota)} "
                      f"ids {len(ids)}/{len(m.ids)}/{len(people)} {1000 * cpu / max(1, len(frames)):.3f} ms",
                      flush=True)
    extra = (f"- trackers {version('trackers')} (Roboflow), supervision {version('supervision')}, "
             f"numpy {version('numpy')}, scipy {version('scipy')}; library trackers at documented defaults, "
             f"frame_rate = analysed rate, {'timestamps passed' if a.timestamps else 'no timestamps (fixed-rate mode)'}\n"
             f"- detections: Varta's YoloxDetector (1 thread) on {A.DATA / 'models' / model.name}, cached in "
             f"{a.cache}; detector CPU when computed: {'; '.join(det_cpu)}\n"
             f"- {time.monotonic() - t_start:.0f} s")
    block = C.header("Trackers on the same detections: Varta vs ByteTrack vs OC-SORT (persons, IoU 0.5)", extra)
    block += "\n" + C.md_table(
        ["seq", "rate", "tracker", "frames", "TP", "FP", "FN", "precision", "recall", "ΔP vs raw, points",
         "P, far region ignored", f"P, boxes ≥ {A.MIN_H:g} px", "IDSW", "MOTA", "ids", "ids on gt",
         "gt people", "CPU ms/frame (update)"], rows)
    block += ("\n\nReported boxes: observations only (a detection associated with a confirmed track on that frame, "
              "with the detection's box); predicted boxes are never reported. Scoring: accuracy_bench's Score and "
              "ClearMot (greedy by score, IoU ≥ 0.5, flag-0 neither TP nor FN; CLEAR-MOT IDSW and MOTA). "
              "ids: distinct person ids reported; ids on gt: of those, matched to a ground-truth person.")
    print()
    print(block)
    out = Path(a.results) if a.results else C.OUT / "tracker.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(block.rstrip() + "\n", encoding="utf-8")
    print(f"(written to {out})")
    return block


if __name__ == "__main__":
    main()
