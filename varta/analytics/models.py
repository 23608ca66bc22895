"""Detector models: where they live, how they are installed (with a checksum), how loaded.

Varta does not ship model weights in its package; ``varta model install yolox-nano``
downloads the official YOLOX-nano export once, checks its SHA-256 and keeps it in
``$VARTA_HOME/models``. Without a model Varta analyses motion only and says so.
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


def model_path(settings) -> Path:
    """The configured model, else the installed default."""
    if settings.detector_model:
        return Path(settings.detector_model)
    return models_dir(settings.home) / MODELS[DEFAULT_MODEL].filename


def load_detector(settings):
    """(detector or None, a sentence for the status and the log)."""
    path = model_path(settings)
    if not path.is_file():
        return None, (f"no detector model at {path}: analysing motion only "
                      f"(install one: varta model install {DEFAULT_MODEL})")
    from varta.analytics.detector import YoloxDetector

    try:
        det = YoloxDetector(path, providers=settings.detector_providers, threads=settings.detector_threads)
    except Exception as exc:  # a broken model must not stop motion analysis
        return None, f"detector model {path} could not be loaded ({exc}): analysing motion only"
    return det, f"detector {path.name} on {', '.join(det.session.get_providers())}"
