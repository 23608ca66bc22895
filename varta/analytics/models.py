"""Detector models: where they live, how they are installed (with a checksum), how loaded.

Varta does not ship model weights in its package; ``varta model install yolox-nano``
downloads the official YOLOX-nano export once, checks its SHA-256 and keeps it in
``$VARTA_HOME/models``. ``detector_variant`` chooses which form runs: ``fp32`` (the
default: the original weights) or ``int8``, made from them on this machine
(analytics/quantize.py, with ``--int8`` or when first loaded; its own checksum is kept
beside it): about a quarter less CPU per inference for up to two points less recall on the
annotated sequences (bench/RESULTS.md §12), so it is a choice for a city that needs more
cameras per server, not the default. Without a model Varta analyses motion only and says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("varta.analytics")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    filename: str
    url: str
    sha256: str
    size: int
    licence: str


MODELS = {
    "yolox-nano": ModelInfo(
        name="yolox-nano",
        filename="yolox_nano.onnx",
        # Megvii's official yolox_nano.pth (YOLOX 0.1.1rc0) exported to ONNX with YOLOX's own
        # tools/export_onnx.py, pinned by commit so the checksum never moves.
        url="https://raw.githubusercontent.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/"
            "3d4f1119d0694200671c08069ecb847aa0d8495a/model/yolox_nano.onnx",
        sha256="695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
        size=3_660_092,
        licence="Apache-2.0 (Megvii YOLOX weights)",
    ),
}
DEFAULT_MODEL = "yolox-nano"
VARIANTS = ("int8", "fp32")


def variant_file(info: ModelInfo, variant: str) -> str:
    """The file name of a model's variant: ``yolox_nano.onnx``, ``yolox_nano_int8.onnx``."""
    if variant == "fp32":
        return info.filename
    if variant not in VARIANTS:
        raise ModelError(f"unknown detector variant {variant!r}; known: {', '.join(VARIANTS)}")
    stem, dot, ext = info.filename.rpartition(".")
    return f"{stem}_{variant}{dot}{ext}"


def calibration_clips() -> list[Path]:
    """Real footage to calibrate the INT8 model on: the demo's Intel sample clips."""
    from importlib import resources

    folder = Path(str(resources.files("varta.demo") / "footage"))
    return sorted(p for p in folder.iterdir() if p.suffix in (".mp4", ".ts", ".mkv"))


def derive_int8(name: str, home: Path) -> Path:
    """Make (or re-make) the INT8 variant of an installed, checked model."""
    from varta.analytics.quantize import quantize_int8

    info = MODELS[name]
    fp32 = models_dir(home) / info.filename
    if not fp32.is_file() or sha256_of(fp32) != info.sha256:
        raise ModelError(f"{name}: the original model is not installed or damaged (varta model install {name})")
    clips = calibration_clips()
    if not clips:
        raise ModelError("the calibration footage (varta/demo/footage) is missing from this installation")
    target = models_dir(home) / variant_file(info, "int8")
    try:
        quantize_int8(fp32, target, clips)
    except Exception as exc:  # an old onnxruntime, a broken clip: the FP32 model still works
        raise ModelError(f"{name}: the INT8 variant could not be made ({exc})") from exc
    return target


class ModelError(RuntimeError):
    pass


def models_dir(home: Path) -> Path:
    return Path(home) / "models"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def install(name: str, home: Path, url: str | None = None, from_file: Path | None = None,
            timeout_s: float = 60.0) -> Path:
    """Fetch (or copy) the model, check its SHA-256, and move it into place atomically.

    A file that does not match the checksum is deleted and refused: a damaged or
    substituted model would silently miss people.
    """
    info = MODELS.get(name)
    if info is None:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    target = models_dir(home) / info.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if from_file is not None:
                with open(from_file, "rb") as src:
                    _copy(src, out, info.size)
            else:
                source = url or info.url
                try:
                    with urllib.request.urlopen(source, timeout=timeout_s) as resp:  # noqa: S310 (https or a given URL)
                        _copy(resp, out, info.size)
                except OSError as exc:
                    raise ModelError(f"cannot download {name} from {source}: {exc}") from None
        digest = sha256_of(tmp)
        if digest != info.sha256:
            raise ModelError(f"{name}: checksum mismatch (got {digest}, expected {info.sha256}); "
                             "the file was not installed")
        tmp.replace(target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def _copy(src, out, expected: int) -> None:
    total = 0
    while True:
        block = src.read(1 << 16)
        if not block:
            break
        total += len(block)
        if total > expected * 2:
            raise ModelError(f"the download is much larger than the model ({expected} bytes): refused")
        out.write(block)


def model_path(settings, variant: str | None = None) -> Path:
    """The configured model file, else the installed default's chosen variant."""
    if settings.detector_model:
        return Path(settings.detector_model)
    info = MODELS[DEFAULT_MODEL]
    return models_dir(settings.home) / variant_file(info, variant or settings.detector_variant)


def _checked_variant(settings) -> tuple[Path, str]:
    """The file to load and, where it is not the chosen one, why."""
    path = model_path(settings)
    if settings.detector_model or settings.detector_variant == "fp32":
        return path, ""
    from varta.analytics.quantize import verified

    info = MODELS[DEFAULT_MODEL]
    fp32 = models_dir(settings.home) / info.filename
    if not fp32.is_file():
        return path, ""
    if verified(path, info.sha256):
        return path, ""
    try:  # installed before variants existed, or the INT8 file is damaged: (re)make it
        log.warning("detector: making the INT8 variant of %s (once, about 10 s)", fp32.name)
        return derive_int8(DEFAULT_MODEL, settings.home), ""
    except ModelError as exc:
        return fp32, f" (INT8 variant unavailable: {exc}; using FP32)"


def load_detector(settings):
    """(detector or None, a sentence for the status and the log)."""
    path, why = _checked_variant(settings)
    if not path.is_file():
        return None, (f"no detector model at {path}: analysing motion only "
                      f"(install one: varta model install {DEFAULT_MODEL})")
    from varta.analytics.detector import YoloxDetector

    try:
        det = YoloxDetector(path, providers=settings.detector_providers, threads=settings.detector_threads)
    except Exception as exc:  # a broken model must not stop motion analysis
        return None, f"detector model {path} could not be loaded ({exc}): analysing motion only"
    return det, f"detector {path.name} on {', '.join(det.session.get_providers())}{why}"
