"""Object detection with ONNX Runtime; the default model is YOLOX-nano (COCO-80, Apache-2.0).

Preprocessing is the official YOLOX (>= 0.1.1rc0, "no legacy") one, which the model was
exported for: BGR uint8, resize keeping the aspect ratio so the long side is 416, paste at
the top-left of a 416x416 canvas of grey 114, CHW float32 with values 0..255 (no scaling,
no mean/std). Outputs are grid offsets (decoded here) with sigmoid already applied to the
objectness and class scores. Per-class NMS at IoU 0.45.
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


def _grids() -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for s in STRIDES:
        n = INPUT // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def letterbox(bgr: np.ndarray) -> tuple[np.ndarray, float]:
    import cv2

    h, w = bgr.shape[:2]
    r = min(INPUT / h, INPUT / w)
    resized = cv2.resize(bgr, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((INPUT, INPUT, 3), 114, dtype=np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), r


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
    def __init__(self, model: Path, labels: list[str] | None = None, providers: list[str] | None = None,
                 threads: int = 0, score: float = 0.3, iou: float = 0.45, classes: dict[int, str] | None = None):
        import onnxruntime as ort

        if not Path(model).is_file():
            raise FileNotFoundError(f"detector model {model} not found (install it: varta model install yolox-nano)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        available = ort.get_available_providers()
        wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        if not wanted:
            raise ValueError(f"none of the execution providers {providers} is installed; available: {available}")
        self.session = ort.InferenceSession(str(model), opts, providers=wanted)
        self.input = self.session.get_inputs()[0].name
        self.labels = labels or []
        self.score, self.iou = score, iou
        self.classes = CLASSES_OF_INTEREST if classes is None else classes
        self._grid, self._stride = _grids()

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        blob, r = letterbox(bgr)
        out = self.session.run(None, {self.input: blob})[0][0]
        xy = (out[:, :2] + self._grid) * self._stride
        wh = np.exp(out[:, 2:4]) * self._stride
        cls = out[:, 5:].argmax(axis=1)
        scores = out[:, 4] * out[np.arange(len(out)), 5 + cls]
        keep = scores > self.score
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
