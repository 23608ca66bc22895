"""Object detection with ONNX Runtime; the default model is YOLOX-nano (COCO-80, Apache-2.0).

Preprocessing is the official YOLOX (>= 0.1.1rc0, "no legacy") one, which the model was
exported for: BGR uint8, resize keeping the aspect ratio so the long side is 416, paste at
the top-left of a canvas of grey 114, CHW float32 with values 0..255 (no scaling, no
mean/std). Outputs are grid offsets (decoded here) with sigmoid already applied to the
objectness and class scores. Per-class NMS at IoU 0.45.

The canvas is 416x416 in the official export, but a 16:9 sub-stream fills only 416x234 of
it: the rest is grey padding the network convolves for nothing. The export's only
shape-bound nodes are three ``Reshape(1, 85, -1)``; with those made ``(0, 85, -1)`` and the
input's dimensions named, the same weights take any canvas whose sides are multiples of 32,
so Varta pads only up to the next multiple (416x256 for 16:9): 38 % less work for the same
detections (bench/RESULTS.md §12). ``square=True`` keeps the official canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# COCO indices of the classes a city cares about (R3): the rest are ignored by default.
CLASSES_OF_INTEREST = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
INPUT = 416
STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Detection:
    x: float  # left, in source pixels
    y: float  # top
    w: float
    h: float
    score: float
    cls: int
    label: str

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


def _grids(height: int = INPUT, width: int = INPUT) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for s in STRIDES:
        ny, nx = height // s, width // s
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((ny * nx, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def canvas_size(h: int, w: int, square: bool = False) -> tuple[int, int, float]:
    """(canvas height, width, scale) for a picture of h x w: the long side to INPUT, the
    canvas the official square or just the next multiple of the largest stride."""
    r = min(INPUT / h, INPUT / w)
    if square:
        return INPUT, INPUT, r
    step = STRIDES[-1]
    return -(-int(h * r) // step) * step, -(-int(w * r) // step) * step, r


def letterbox(bgr: np.ndarray, square: bool = True) -> tuple[np.ndarray, float]:
    import cv2

    h, w = bgr.shape[:2]
    ch, cw, r = canvas_size(h, w, square)
    resized = cv2.resize(bgr, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((ch, cw, 3), 114, dtype=np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), r


def _canvas(bgr: np.ndarray, r: float) -> np.ndarray:
    """``bgr`` scaled by ``r`` on the smallest canvas of whole strides (grey 114 right and below)."""
    import cv2

    h, w = bgr.shape[:2]
    rw, rh = max(1, int(w * r)), max(1, int(h * r))
    step = STRIDES[-1]
    canvas = np.full((-(-rh // step) * step, -(-rw // step) * step, 3), 114, dtype=np.uint8)
    canvas[:rh, :rw] = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32)


def any_canvas(model: bytes) -> bytes:
    """The official YOLOX export (static 1x3x416x416) made to take any canvas and batch:
    its three ``Reshape(1, 85, -1)`` become ``Reshape(0, 85, -1)`` and the input's and
    output's dimensions get names. A model that is already dynamic comes back unchanged."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load_from_string(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or all(d.dim_param for d in (dims[0], dims[2], dims[3])):
        return model
    for node in m.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            a = numpy_helper.to_array(node.attribute[0].t)
            if a.shape == (3,) and a.tolist() == [1, 85, -1]:
                node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([0, 85, -1], dtype=a.dtype)))
    dims[0].dim_param, dims[2].dim_param, dims[3].dim_param = "batch", "height", "width"
    out = m.graph.output[0].type.tensor_type.shape.dim
    if len(out) == 3:
        out[0].dim_param, out[1].dim_param = "batch", "anchors"
    del m.graph.value_info[:]  # shapes inferred for 416x416: wrong for other canvases
    return m.SerializeToString()


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; boxes as x1, y1, x2, y2."""
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        over = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][over <= iou]
    return keep


class YoloxDetector:
    """YOLOX on ONNX Runtime. Thread-safe: ``detect`` may run on several threads at once
    (ONNX Runtime sessions are; with one intra-op thread each call computes on its caller's
    thread, so N callers use at most N cores: the worker's pool bounds N)."""

    def __init__(self, model: Path, labels: list[str] | None = None, providers: list[str] | None = None,
                 threads: int = 0, score: float = 0.3, iou: float = 0.45, classes: dict[int, str] | None = None,
                 square: bool = False):
        import onnxruntime as ort

        if not Path(model).is_file():
            raise FileNotFoundError(f"detector model {model} not found (install it: varta model install yolox-nano)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        available = ort.get_available_providers()
        wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        if not wanted:
            raise ValueError(f"none of the execution providers {providers} is installed; available: {available}")
        self.path = Path(model)
        data = self.path.read_bytes()
        self.square = square
        if not square:
            data = any_canvas(data)
        self.session = ort.InferenceSession(data, opts, providers=wanted)
        self.input = self.session.get_inputs()[0].name
        self.labels = labels or []
        self.score, self.iou = score, iou
        self.classes = CLASSES_OF_INTEREST if classes is None else classes
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        g = self._grids.get((h, w))
        if g is None:
            g = self._grids[(h, w)] = _grids(h, w)
        return g

    def detect(self, bgr: np.ndarray, region: tuple[int, int, int, int] | None = None,
               score: float | None = None) -> list[Detection]:
        """Objects in the picture, boxes in its pixels. ``region`` (x1, y1, x2, y2): look only
        there, at the scale the whole picture would be looked at (the same objects at the same
        size, for the share of the work the region is of the picture). ``score``: a threshold
        above the detector's own."""
        if region is not None and not self.square:
            x0, y0, x1, y1 = region
            h, w = bgr.shape[:2]
            r = min(INPUT / h, INPUT / w)
            blob = _canvas(bgr[y0:y1, x0:x1], r)
        else:
            x0 = y0 = 0
            blob, r = letterbox(bgr, self.square)
        dets = self._decode(self.session.run(None, {self.input: blob})[0][0], blob.shape[2], blob.shape[3], r,
                            max(self.score, score or 0.0))
        if x0 or y0:
            dets = [Detection(d.x + x0, d.y + y0, d.w, d.h, d.score, d.cls, d.label) for d in dets]
        return dets

    def _decode(self, out: np.ndarray, ch: int, cw: int, r: float, threshold: float) -> list[Detection]:
        grid, stride = self._grid(ch, cw)
        xy = (out[:, :2] + grid) * stride
        wh = np.exp(out[:, 2:4]) * stride
        cls = out[:, 5:].argmax(axis=1)
        scores = out[:, 4] * out[np.arange(len(out)), 5 + cls]
        keep = scores > threshold
        if self.classes:
            keep &= np.isin(cls, list(self.classes))
        if not keep.any():
            return []
        xy, wh, cls, scores = xy[keep] / r, wh[keep] / r, cls[keep], scores[keep]
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
        dets = []
        for c in np.unique(cls):
            idx = np.where(cls == c)[0]
            for i in nms(boxes[idx], scores[idx], self.iou):
                j = idx[i]
                x1, y1, x2, y2 = boxes[j]
                label = self.classes.get(int(c)) or (self.labels[c] if c < len(self.labels) else str(c))
                dets.append(Detection(float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(scores[j]), int(c), label))
        return sorted(dets, key=lambda d: -d.score)
