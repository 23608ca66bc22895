"""Synthetic scenes with known ground truth, built from real footage.

A real pedestrian (cut from PETS09-S2L1 frame 1 by its annotated box) walks over the
empty plaza (the temporal median of the sequence: people removed) along paths we choose,
so a test knows exactly where, when and in which direction the object moved. Tampering
scenes append black (covered lens) frames. Encoded once with ffmpeg to a loopable
MPEG-TS (cached) for the RTSP camera simulator, or to MP4 for ``varta analyze``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

W, H = 640, 480  # PETS is 768x576 (4:3)
SCALE = W / 768


@dataclass(frozen=True)
class Walk:
    start: tuple[float, float]  # normalised position of the walker's feet
    end: tuple[float, float]
    seconds: float
    pause_after: float = 1.5  # empty scene between walks


def _plaza_and_walker(test_data: Path):
    import cv2

    seq = test_data / "annotated" / "PETS09-S2L1"
    frames = [cv2.imread(str(seq / "img1" / f"{i:06d}.jpg")) for i in range(1, 300, 10)]
    plaza = np.median(np.stack(frames), axis=0).astype(np.uint8)
    # Person id 15 in frame 1: x 258, y 219, 33x89 px, with a small margin of plaza.
    first = cv2.imread(str(seq / "img1" / "000001.jpg"))
    x, y, w, h = 258, 219, 33, 89
    m = 4
    person = first[y - m:y + h + m, x - m:x + w + m].astype(np.float32)
    back = plaza[y - m:y + h + m, x - m:x + w + m].astype(np.float32)
    # Alpha from the difference to the empty plaza: the person, not their rectangle.
    alpha = np.clip((np.abs(person - back).sum(axis=2) - 25) / 40, 0, 1)
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)[..., None]
    plaza = cv2.resize(plaza, (W, H), interpolation=cv2.INTER_AREA)
    scale = 2.0 * SCALE  # a walker near the camera: about 140 px tall in 480
    person = cv2.resize(person, None, fx=scale, fy=scale)
    alpha = cv2.resize(alpha, None, fx=scale, fy=scale)[..., None]
    return plaza, person, alpha


def _paste(img: np.ndarray, person: np.ndarray, alpha: np.ndarray, fx: float, fy: float) -> None:
    ph, pw = person.shape[:2]
    x0, y0 = int(round(fx - pw / 2)), int(round(fy - ph))
    x1, y1 = max(x0, 0), max(y0, 0)
    x2, y2 = min(x0 + pw, img.shape[1]), min(y0 + ph, img.shape[0])
    if x2 <= x1 or y2 <= y1:
        return
    p = person[y1 - y0:y2 - y0, x1 - x0:x2 - x0]
    a = alpha[y1 - y0:y2 - y0, x1 - x0:x2 - x0]
    region = img[y1:y2, x1:x2].astype(np.float32)
    img[y1:y2, x1:x2] = (a * p + (1 - a) * region).astype(np.uint8)


def render(test_data: Path, walks: list[Walk], fps: int = 10, black_s: float = 0.0, lead_s: float = 2.0):
    """Frames (BGR) and the ground truth: [(t_start, t_end, start_px, end_px)], and the
    time the lens is covered (black frames) when ``black_s`` > 0."""
    plaza, person, alpha = _plaza_and_walker(test_data)
    rng = np.random.default_rng(7)
    frames, truth = [], []

    def still(seconds: float):
        for _ in range(int(round(seconds * fps))):
            noise = rng.normal(0, 2.0, plaza.shape)
            frames.append(np.clip(plaza + noise, 0, 255).astype(np.uint8))

    still(lead_s)
    for walk in walks:
        t0 = len(frames) / fps
        n = int(round(walk.seconds * fps))
        sx, sy = walk.start[0] * W, walk.start[1] * H
        ex, ey = walk.end[0] * W, walk.end[1] * H
        for i in range(n):
            k = i / max(n - 1, 1)
            img = np.clip(plaza + rng.normal(0, 2.0, plaza.shape), 0, 255).astype(np.uint8)
            _paste(img, person, alpha, sx + (ex - sx) * k, sy + (ey - sy) * k)
            frames.append(img)
        truth.append((t0, len(frames) / fps, (sx, sy), (ex, ey)))
        still(walk.pause_after)
    covered = None
    if black_s:
        covered = len(frames) / fps
        for _ in range(int(round(black_s * fps))):
            frames.append(np.clip(rng.normal(6, 2.0, plaza.shape), 0, 255).astype(np.uint8))
        still(3.0)
    return frames, truth, covered


def encode(frames: list[np.ndarray], out: Path, fps: int = 10, gop: int = 10) -> Path:
    """H.264 without B-frames; MPEG-TS (for the RTSP server) or MP4 by the suffix."""
    from varta.demo.media import ffmpeg_exe

    h, w = frames[0].shape[:2]
    tmp = out.with_suffix(".part" + out.suffix)
    fmt = ["-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0"] if out.suffix == ".ts" else ["-movflags", "+faststart"]
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(gop),
           "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", *fmt, str(tmp)]
    proc = subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg could not encode the scene: {proc.stderr.decode()[-500:]}")
    tmp.replace(out)
    return out


def scene(test_data: Path, cache: Path, name: str, walks: list[Walk], suffix: str = ".ts", fps: int = 10,
          black_s: float = 0.0):
    """The encoded scene (cached by its recipe) and its ground truth."""
    recipe = json.dumps({"walks": [w.__dict__ for w in walks], "fps": fps, "black": black_s, "v": 1}, sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    out = cache / f"{name}-{key}{suffix}"
    frames, truth, covered = render(test_data, walks, fps, black_s)
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        encode(frames, out, fps)
    return out, truth, covered, len(frames) / fps
