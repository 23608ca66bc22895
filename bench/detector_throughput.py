#!/usr/bin/env python3
"""Detector throughput: inferences per second through Varta's ``YoloxDetector`` (letterbox +
run + decode + NMS), by execution provider and by the number of inferences run at once (the
worker's ``DetectorPool``), beside the bare ``InferenceSession.run`` of the same model on the
same canvas (the floor).

For a machine other than the usual 2-core one: a GPU node's CUDA execution provider, or a
many-core analytics server. Each (provider, pool) cell runs ``--seconds`` of inferences on
one real picture (768x432, the Intel clips' size: a 416x256 canvas), ``pool`` threads sharing
one session, and reports inferences/s, process CPU per inference and the wall time of one.

Usage::

    .venv/bin/python bench/detector_throughput.py [--model FILE] [--image FILE] [--pools 1,2,4]
                                                 [--providers CPUExecutionProvider,CUDAExecutionProvider]

Default model ``$VARTA_TEST_DATA/models/yolox_nano.onnx``, default image the first PETS09-S2L1
frame resized to 768x432. Providers not installed are listed and skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(os.environ.get("VARTA_TEST_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def measure(det, picture, pool: int, seconds: float) -> tuple[float, float, float]:
    """(inferences/s, CPU ms per inference, wall ms per inference on one thread's view)."""
    for _ in range(5):
        det.detect(picture)
    done = [0] * pool
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        while time.monotonic() < stop:
            det.detect(picture)
            done[i] += 1

    c0, w0 = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(pool)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu, n = time.monotonic() - w0, time.process_time() - c0, sum(done)
    return n / wall, 1000 * cpu / max(n, 1), 1000 * wall * pool / max(n, 1)


def bare(det, picture, runs: int = 50) -> float:
    from varta.analytics.detector import letterbox

    blob, _ = letterbox(picture, square=det.square)
    for _ in range(5):
        det.session.run(None, {det.input: blob})
    w0 = time.perf_counter()
    for _ in range(runs):
        det.session.run(None, {det.input: blob})
    return 1000 * (time.perf_counter() - w0) / runs


def main(argv: list[str] | None = None) -> None:
    import cv2
    import onnxruntime as ort

    from varta.analytics.detector import YoloxDetector

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DATA / "models" / "yolox_nano.onnx"))
    ap.add_argument("--image", default=str(DATA / "annotated" / "PETS09-S2L1" / "img1" / "000001.jpg"))
    ap.add_argument("--pools", default="1,2")
    ap.add_argument("--providers", default="CPUExecutionProvider,CUDAExecutionProvider,TensorrtExecutionProvider")
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args(argv)
    picture = cv2.resize(cv2.imread(a.image), (768, 432), interpolation=cv2.INTER_AREA)
    available = ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}; available providers: {', '.join(available)}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for provider in a.providers.split(","):
        if provider not in available:
            print(f"{provider}: not installed here, skipped", flush=True)
            continue
        det = YoloxDetector(Path(a.model), providers=[provider], threads=1)
        floor = bare(det, picture)
        for pool in (int(x) for x in a.pools.split(",")):
            rate, cpu_ms, wall_ms = measure(det, picture, pool, a.seconds)
            rows.append((provider, pool, rate, cpu_ms, wall_ms, floor))
            print(f"{provider:<28} pool {pool:>2}: {rate:7.1f} inferences/s, {cpu_ms:6.2f} ms CPU each, "
                  f"{wall_ms:6.2f} ms wall each; bare run alone {floor:.2f} ms = {1000 / floor:.0f}/s", flush=True)
    print("\n| provider | inferences at once | inferences/s | CPU ms per inference | wall ms per inference "
          "| bare `run` alone, ms (floor) |\n|---|---|---|---|---|---|")
    for provider, pool, rate, cpu_ms, wall_ms, floor in rows:
        print(f"| {provider} | {pool} | {rate:.1f} | {cpu_ms:.2f} | {wall_ms:.2f} | {floor:.2f} ({1000 / floor:.0f}/s) |")


if __name__ == "__main__":
    main()
