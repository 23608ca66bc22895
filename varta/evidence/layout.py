"""The package's fixed names, shared by the builder and the checker (which must stay light:
``varta verify`` runs where only Varta's Python code is installed, no ffmpeg, no database)."""

from __future__ import annotations

import os
from pathlib import Path

FORMAT = "varta-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY = "instance-public-key.pem"
README = "README.txt"
SUMS = "SHA256SUMS"
VIDEO_DIR = "video"
CHUNK = 1 << 20


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a power cut must not lose evidence)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
