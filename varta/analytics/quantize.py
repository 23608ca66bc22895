"""An INT8 YOLOX-nano, made on this machine from the checked FP32 model.

Static quantization (ONNX Runtime's ``quantize_static``): weights INT8 per output channel,
activations UINT8 with ranges measured (99.99th percentile) on real indoor and car-park
footage — the Intel sample clips the demo ships (CC BY 4.0), one frame in
``CALIBRATION_EVERY``, letterboxed exactly as the detector letterboxes; the decoding head
after the last convolutions stays in float. QDQ format, opset 13 (per-channel needs it);
ONNX Runtime runs the result with its integer kernels (VNNI where the CPU has it).

What it buys and costs (bench/RESULTS.md §12): about a quarter less CPU per inference; on
the annotated sequences precision within a point of FP32 but recall 1–2 points lower, and
it moved by up to 4 points between calibrations (min/max ranges, fewer frames, other
canvases). That is why FP32 stays the default and INT8 is a setting.

Why made here, not downloaded: nobody publishes a calibrated INT8 export of these weights,
and Varta does not host files. The input (the FP32 model) is pinned by SHA-256; the output's
own SHA-256 is written beside it (``.json``) and checked whenever it is loaded, so a damaged
or substituted file is refused like a damaged download.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

CALIBRATION_EVERY = 5  # one frame in 5 (0.4–0.5 s of footage apart)
CALIBRATION_FRAMES = 240
PERCENTILE = 99.99  # activation ranges: a few outliers would coarsen every other value


def calibration_blobs(clips: list[Path], every: int = CALIBRATION_EVERY, limit: int = CALIBRATION_FRAMES) -> list[np.ndarray]:
    """Letterboxed input tensors from the clips, spread over all of them."""
    import av

    from varta.analytics.detector import letterbox

    if not clips:
        raise ValueError("no calibration footage")
    per_clip = max(1, limit // len(clips))
    blobs: list[np.ndarray] = []
    for clip in clips:
        taken = 0
        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % every:
                    continue
                # The percentile calibrator needs one shape: every clip is 16:9 (a 416x256 canvas).
                blobs.append(letterbox(frame.to_ndarray(format="bgr24"), square=False)[0])
                taken += 1
                if taken >= per_clip:
                    break
    if not blobs:
        raise ValueError(f"no frames could be read from {', '.join(str(c) for c in clips)}")
    return blobs


def quantize_int8(fp32: Path, target: Path, clips: list[Path]) -> dict:
    """Write the INT8 model to ``target`` (atomically) and its description beside it."""
    import onnx
    import onnxruntime
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from varta.analytics.detector import any_canvas
    from varta.analytics.models import sha256_of

    blobs = calibration_blobs(clips)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(blobs)

        def get_next(self):
            blob = next(self._it, None)
            return None if blob is None else {name: blob}

    model = onnx.load_from_string(any_canvas(Path(fp32).read_bytes()))
    name = model.graph.input[0].name
    if model.opset_import[0].version < 13:
        model = version_converter.convert_version(model, 13)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quant-") as tmp:
        src, pre, out = Path(tmp) / "src.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": PERCENTILE},
                        nodes_to_exclude=_head_tail(onnx.load(str(pre))))
        info = {"sha256": sha256_of(out), "source_sha256": sha256_of(fp32), "onnxruntime": onnxruntime.__version__,
                "calibration": [Path(c).name for c in clips], "frames": len(blobs),
                "method": f"static QDQ, weights int8 per channel, activations uint8 ({PERCENTILE} percentile), "
                          "the decoding head (Sigmoid, Reshape, Concat, Transpose after the last convolutions) in float"}
        out.replace(target)
    description(target).write_text(json.dumps(info, indent=1))
    return info


def _head_tail(model) -> list[str]:
    """The nodes between the last convolutions and the output (sigmoids of the scores, the
    reshapes and concatenations of the three scales): cheap, and where INT8 would round the
    very scores the threshold reads."""
    producer = {o: n for n in model.graph.node for o in n.output}
    tail, stack = set(), [model.graph.output[0].name]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.op_type == "Conv" or node.name in tail:
            continue
        tail.add(node.name)
        stack.extend(node.input)
    return sorted(tail)


def description(model: Path) -> Path:
    return model.with_suffix(model.suffix + ".json")


def verified(model: Path, source_sha256: str) -> bool:
    """The INT8 file is there, is the one written (checksum) and was made from this FP32."""
    from varta.analytics.models import sha256_of

    try:
        info = json.loads(description(model).read_text())
    except (OSError, ValueError):
        return False
    return model.is_file() and info.get("source_sha256") == source_sha256 and sha256_of(model) == info.get("sha256")
