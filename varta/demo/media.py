"""Footage for simulated cameras: synthetic test streams and prepared real clips.

Everything here produces a *loopable, video-only H.264 MPEG-TS file* that
``camsim.py`` can serve with ``multifilesrc loop=true ! tsdemux``:

* H.264 (yuv420p, Main profile; Constrained Baseline with x264's ``ultrafast``
  preset) without B-frames (``-bf 0``) so PTS == DTS and a recorder never has to
  reorder frames, like most IP cameras' streams.
* A fixed GOP (``-g G -keyint_min G -sc_threshold 0``, or forced key frames every
  2 s for real footage) so every segment boundary lands on a predictable key frame.
* MPEG-TS whose timestamps start at 0 (``-muxdelay 0 -muxpreload 0``): ``tsdemux``
  rebases timestamps when ``multifilesrc`` wraps the file, so RTP timestamps keep
  increasing across loops. (Raw ``.h264`` has no PTS; MP4 cannot be looped this way.)

We encode straight into MPEG-TS with those muxer options instead of encoding and then
remuxing with ``-c copy``: the result is the same (PTS starting at 0) in one pass.

Encoding happens once; results are cached next to the output in ``<out>.json``
(a sidecar recording the parameters) and reused while the parameters match.

Synthetic streams carry a machine-readable frame counter: a row of 16 black/white
blocks along the top edge encoding the frame number (binary, MSB first, white = 1),
which :func:`read_frame_counter` reads back from a decoded frame without OCR.

Stdlib only (numpy/PIL/PyAV are used by :func:`read_frame_counter` only if the caller
passes such objects).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "COUNTER_BITS",
    "FfmpegError",
    "counter_geometry",
    "ffmpeg_exe",
    "make_test_stream",
    "prepare_from_file",
    "read_frame_counter",
]

#: Number of blocks (bits) in the frame counter row; the counter wraps at 2**16 frames.
COUNTER_BITS = 16

# Bump when the encoding recipe changes so that cached files are regenerated.
_RECIPE_VERSION = 1


class FfmpegError(RuntimeError):
    """ffmpeg was missing or failed; the message carries the tail of its stderr."""


# --------------------------------------------------------------------------- ffmpeg


@lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary: ``ffmpeg`` on PATH, else imageio-ffmpeg's bundled one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError, or its binary could not be found
        raise FfmpegError(
            "ffmpeg not found: install the ffmpeg package or the imageio-ffmpeg wheel"
        ) from exc


@lru_cache(maxsize=None)
def _has_filter(name: str) -> bool:
    """Whether this ffmpeg build has filter *name* (drawtext needs libfreetype)."""
    try:
        out = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-filters"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [name] for line in out.splitlines())


def _run_ffmpeg(args: list[str], out_tmp: Path) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out_tmp.unlink(missing_ok=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise FfmpegError(f"ffmpeg failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


# --------------------------------------------------------------------------- caching


def _sidecar(out_ts: Path) -> Path:
    return out_ts.with_name(out_ts.name + ".json")


def _cached(out_ts: Path, params: dict[str, Any]) -> bool:
    try:
        recorded = json.loads(_sidecar(out_ts).read_text())
    except (OSError, ValueError):
        return False
    return out_ts.is_file() and out_ts.stat().st_size > 0 and recorded == params


def _encode_cached(out_ts: Path, params: dict[str, Any], args_for: Any) -> Path:
    """Run ffmpeg with ``args_for(tmp_path)`` unless *out_ts* is cached for *params*.

    Writes to a temporary name and renames, so an interrupted run never leaves a
    truncated file that a later call would mistake for a cached one.
    """
    out_ts = Path(out_ts)
    if _cached(out_ts, params):
        return out_ts
    out_ts.parent.mkdir(parents=True, exist_ok=True)
    # Drop the old sidecar first: a crash after the rename below must not leave a
    # sidecar that vouches for the previous parameters.
    _sidecar(out_ts).unlink(missing_ok=True)
    tmp = out_ts.with_name(f".{out_ts.name}.{os.getpid()}.tmp")
    _run_ffmpeg(args_for(tmp), tmp)
    os.replace(tmp, out_ts)
    _sidecar(out_ts).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    return out_ts


# ts muxer options: PTS start at 0 so the file loops cleanly under tsdemux.
_TS_MUX = ["-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts"]


def _x264_args(gop: int | None, bitrate: str | None, preset: str) -> list[str]:
    args = [
        "-c:v", "libx264", "-preset", preset, "-profile:v", "main",
        "-pix_fmt", "yuv420p", "-bf", "0", "-sc_threshold", "0",
    ]
    if gop is not None:
        args += ["-g", str(gop), "-keyint_min", str(gop)]
    if bitrate is not None:
        # Capped rate control like a camera's CBR/VBR-with-ceiling setting.
        args += ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", str(2 * _bits(bitrate))]
    return args


def _bits(rate: str | int) -> int:
    """'2M' -> 2000000, '512k' -> 512000, '4000000' -> 4000000."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(rate))
    if not m:
        raise ValueError(f"bad bitrate {rate!r}; use e.g. '2M', '512k' or 4000000")
    mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


# --------------------------------------------------------------------------- frame counter


def counter_geometry(width: int, height: int | None = None) -> tuple[int, int]:
    """(block_width, block_height) of the frame-counter blocks for a frame *width* wide.

    32x16 px blocks when they fit (16 blocks = 512 px), else 16x16 (frames >= 256 px
    wide), else whatever fits. Multiples of 16 keep each block aligned to H.264
    macroblocks, so compression does not smear black into white.
    """
    if width >= 32 * COUNTER_BITS:
        return 32, 16
    if width >= 16 * COUNTER_BITS:
        return 16, 16
    bw = max(2, width // COUNTER_BITS)
    bh = 16 if height is None else max(2, min(16, height // 8))
    return bw, bh


def _counter_filters(width: int, height: int) -> list[str]:
    """drawbox filters painting frame number ``n`` as 16 blocks along the top edge.

    A black strip, then one white box per bit enabled (timeline ``enable``) when that
    bit of ``n`` is set. Far cheaper than a per-pixel ``geq`` expression.
    """
    bw, bh = counter_geometry(width, height)
    filters = [f"drawbox=x=0:y=0:w={bw * COUNTER_BITS}:h={bh}:color=black:t=fill"]
    for i in range(COUNTER_BITS):
        bit = COUNTER_BITS - 1 - i  # MSB first (leftmost block)
        filters.append(
            f"drawbox=x={i * bw}:y=0:w={bw}:h={bh}:color=white:t=fill"
            f":enable='mod(floor(n/{1 << bit}),2)'"
        )
    return filters


def _gray_sampler(image: Any) -> tuple[int, int, Any]:
    """Return (width, height, mean(x0, y0, x1, y1) -> float) for a supported image type."""
    # PyAV VideoFrame: convert to 8-bit gray and read plane bytes (no numpy needed).
    if hasattr(image, "reformat") and hasattr(image, "planes"):
        gray = image.reformat(format="gray")
        plane = gray.planes[0]
        buf, stride = bytes(plane), plane.line_size

        def mean_av(x0: int, y0: int, x1: int, y1: int) -> float:
            vals = [buf[y * stride + x] for y in range(y0, y1) for x in range(x0, x1)]
            return sum(vals) / len(vals)

        return gray.width, gray.height, mean_av

    # numpy array (H, W) gray or (H, W, C) RGB/RGBA/BGR: average the colour channels.
    if hasattr(image, "shape") and hasattr(image, "ndim"):
        arr = image
        if arr.ndim == 3:
            arr = arr[:, :, :3].mean(axis=2)
        elif arr.ndim != 2:
            raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {image.shape}")

        def mean_np(x0: int, y0: int, x1: int, y1: int) -> float:
            return float(arr[y0:y1, x0:x1].mean())

        return int(arr.shape[1]), int(arr.shape[0]), mean_np

    # PIL.Image
    if hasattr(image, "convert") and hasattr(image, "getpixel"):
        gray = image.convert("L")

        def mean_pil(x0: int, y0: int, x1: int, y1: int) -> float:
            vals = [gray.getpixel((x, y)) for y in range(y0, y1) for x in range(x0, x1)]
            return sum(vals) / len(vals)

        return gray.size[0], gray.size[1], mean_pil

    raise TypeError(f"unsupported image type {type(image).__name__}")


def read_frame_counter(image: Any) -> int:
    """Frame number encoded by the block row of a decoded frame from :func:`make_test_stream`.

    *image* is a numpy array, (H, W) gray or (H, W, 3/4) colour, a PIL image or a PyAV
    ``VideoFrame``, at the stream's original resolution (block size depends on width).
    Each block is sampled over its central half and thresholded at 128.
    The number restarts at 0 each time the served file loops.
    """
    width, height, mean = _gray_sampler(image)
    bw, bh = counter_geometry(width, height)
    if bw * COUNTER_BITS > width or bh > height:
        raise ValueError(f"frame {width}x{height} too small for the counter blocks")
    value = 0
    y0, y1 = bh // 4, max(bh // 4 + 1, bh - bh // 4)
    for i in range(COUNTER_BITS):
        x0 = i * bw + bw // 4
        x1 = max(x0 + 1, (i + 1) * bw - bw // 4)
        value = (value << 1) | (1 if mean(x0, y0, x1, y1) >= 128 else 0)
    return value


# --------------------------------------------------------------------------- generators


def _drawtext_safe(label: str) -> str:
    """Keep labels to characters that need no escaping in a filtergraph/drawtext."""
    return re.sub(r"[^A-Za-z0-9 _.#/@+=-]", "_", label)[:60]


def _text_filters(label: str, width: int, height: int, y0: int) -> list[str]:
    size = max(12, height // 22)
    text = f"{_drawtext_safe(label) + '  ' if label else ''}frame %{{n}}  %{{pts\\:hms}}"
    font = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
    font_opt = f"fontfile={font}" if Path(font).is_file() else "font=Mono"
    return [
        f"drawtext={font_opt}:text='{text}':x={size // 2}:y={y0 + size // 2}"
        f":fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4"
    ]


def make_test_stream(
    out_ts: Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    seconds: float = 20,
    gop: int | None = None,
    bitrate: str = "2M",
    noise: bool = True,
    label: str = "",
    pattern: str = "testsrc2",
    preset: str = "ultrafast",
) -> Path:
    """Generate (or reuse) a synthetic loopable H.264 MPEG-TS camera stream.

    *pattern* is an ffmpeg lavfi video source (``testsrc2``, ``testsrc``, ``smptebars``,
    ``rgbtestsrc``...). *noise* adds temporal noise so that x264 really spends
    *bitrate* (``testsrc2`` alone compresses to a fraction of a real camera's rate).
    The frame shows *label*, the frame number and PTS as text (when ffmpeg has
    ``drawtext``) and the machine-readable block counter along the top edge.
    *gop* defaults to ``2 * fps`` frames. *preset* ``ultrafast`` (Constrained Baseline,
    about twice as fast as ``veryfast``) is plenty for noise and colour bars.
    Returns *out_ts*.
    """
    out_ts = Path(out_ts)
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if not re.fullmatch(r"[a-z0-9_]+", pattern):
        raise ValueError(f"bad lavfi pattern {pattern!r}")
    gop = int(gop or 2 * fps)
    with_text = _has_filter("drawtext")
    params = {
        "kind": "test_stream", "recipe": _RECIPE_VERSION, "width": width, "height": height,
        "fps": fps, "seconds": seconds, "gop": gop, "bitrate": bitrate, "noise": noise,
        "label": label, "pattern": pattern, "preset": preset, "text": with_text,
    }

    filters: list[str] = []
    if noise:
        # Noise first, so the counter blocks stay clean black/white.
        filters.append("noise=alls=6:allf=t+u")
    filters += _counter_filters(width, height)
    if with_text:
        filters += _text_filters(label, width, height, counter_geometry(width, height)[1])

    def args_for(tmp: Path) -> list[str]:
        return [
            "-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={fps}:duration={seconds}",
            "-vf", ",".join(filters),
            *_x264_args(gop, bitrate, preset), *_TS_MUX, str(tmp),
        ]

    return _encode_cached(out_ts, params, args_for)


def prepare_from_file(
    src: Path,
    out_ts: Path,
    *,
    gop: int | None = None,
    max_seconds: float | None = None,
    bitrate: str | None = None,
    preset: str = "veryfast",
) -> Path:
    """Re-encode real footage into a loopable, video-only H.264 MPEG-TS (cached).

    Audio is dropped, B-frames disabled. *gop* is in frames; by default a key frame is
    forced every 2 seconds, which works for any frame rate (12.5, 23.976...) without
    probing it. *max_seconds* trims the clip; *bitrate* (e.g. ``"2M"``) caps the rate,
    otherwise x264's default quality (CRF 23) is used. Returns *out_ts*.
    """
    src, out_ts = Path(src), Path(out_ts)
    if not src.is_file():
        raise FileNotFoundError(src)
    st = src.stat()
    params = {
        "kind": "prepared", "recipe": _RECIPE_VERSION, "src": str(src.resolve()),
        "src_size": st.st_size, "src_mtime_ns": st.st_mtime_ns, "gop": gop,
        "max_seconds": max_seconds, "bitrate": bitrate, "preset": preset,
    }
    if gop is not None:
        keyframes: list[str] = []
    else:
        # Time-based key frames every 2 s; -g only as an upper bound.
        keyframes = ["-force_key_frames", "expr:gte(t,n_forced*2)"]

    def args_for(tmp: Path) -> list[str]:
        trim = ["-t", str(max_seconds)] if max_seconds else []
        return [
            "-i", str(src), *trim, "-map", "0:v:0", "-an", "-sn", "-dn",
            # setpts: the file must start at PTS 0 (vtest.avi's video starts at 0.2 s);
            # scale: yuv420p needs even dimensions.
            "-vf", "setpts=PTS-STARTPTS,scale=trunc(iw/2)*2:trunc(ih/2)*2",
            *_x264_args(gop if gop is not None else 600, bitrate, preset), *keyframes,
            *_TS_MUX, str(tmp),
        ]

    return _encode_cached(out_ts, params, args_for)
