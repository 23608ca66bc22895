#!/usr/bin/env python3
"""YOLOX-nano on a GPU: inferences per second, for sizing a GPU analytics node (optional;
CI never has a GPU).

Varta's own graph (the official export made to take any canvas: ``detector.any_canvas``)
converted to PyTorch by ``onnx2torch`` and run with CUDA, because the GPU machine this was
measured on has no ONNX Runtime CUDA build (its wheel is larger than what can be carried
there). Batches of 1..64 canvases of 416x256 (a 16:9 picture), FP32 and FP16 (autocast),
CUDA-event timed after warm-up; the outputs are checked against ONNX Runtime on the CPU for
the same canvas (max abs difference of the scores). The figure is the network alone: Varta's
letterbox and decoding stay on the CPU (≈ 1 ms per picture, ``bench/detector_throughput.py``).

Usage (on the GPU machine; onnx2torch may be carried as a wheel)::

    python3 bench/gpu_throughput.py --model yolox_nano.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx2torch import convert

    from varta.analytics.detector import any_canvas

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", default="1,8,32,64")
    a = ap.parse_args()
    data = any_canvas(Path(a.model).read_bytes())
    net = convert(onnx.load_from_string(data)).eval().cuda()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    rng = np.random.default_rng(0)
    one = rng.integers(0, 255, (1, 3, 256, 416)).astype(np.float32)
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"images": one})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(one).cuda()).float().cpu().numpy()
    print(f"check vs ONNX Runtime CPU: max |Δ| of objectness × class scores "
          f"{np.abs(got[..., 4:] - ref[..., 4:]).max():.2e}", flush=True)
    print("\n| precision | batch | inferences/s | ms per batch |\n|---|---|---|---|")
    for half in (False, True):
        for b in (int(x) for x in a.batches.split(",")):
            x = torch.from_numpy(rng.integers(0, 255, (b, 3, 256, 416)).astype(np.float32)).cuda()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                for _ in range(10):
                    net(x)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                n = 50
                start.record()
                for _ in range(n):
                    net(x)
                end.record()
                torch.cuda.synchronize()
            ms = start.elapsed_time(end) / n
            print(f"| {'FP16' if half else 'FP32'} | {b} | {1000 * b / ms:.0f} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
