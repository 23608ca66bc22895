"""Just enough of ISO-BMFF (MP4) to cut and repair fragmented segments.

Varta writes fragmented MP4: ``ftyp moov`` (the *init section*), then ``moof mdat`` pairs,
one per GOP. A file cut short by kill -9 or power loss is therefore playable up to its last
complete ``moof mdat`` pair; everything after is a torn write. Walking the top-level box
headers (8 or 16 bytes each) finds that point without reading the media.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Box:
    type: str
    offset: int
    size: int  # whole box including header

    @property
    def end(self) -> int:
        return self.offset + self.size


def scan_boxes(path: Path) -> tuple[list[Box], int]:
    """Top-level boxes that are complete, and the file size.

    Stops at the first box that is truncated or malformed (size 0 = "to end of file" is
    only accepted for a final ``mdat`` that really reaches the end).
    """
    boxes: list[Box] = []
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            header = fh.read(16)
            box_size, raw_type = struct.unpack(">I4s", header[:8])
            try:
                box_type = raw_type.decode("ascii")
            except UnicodeDecodeError:
                break
            if box_size == 1:
                if len(header) < 16:
                    break
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8 or offset + box_size > size:
                break
            boxes.append(Box(box_type, offset, box_size))
            offset += box_size
    return boxes, size


def init_section_size(boxes: list[Box]) -> int:
    """Bytes of ``ftyp``+``moov`` (what HLS calls the init section / EXT-X-MAP)."""
    for box in boxes:
        if box.type == "moov":
            return box.end
    return 0


@dataclass(frozen=True)
class SegmentCheck:
    ok: bool  # complete and well formed, nothing to do
    valid_bytes: int  # length of the playable prefix (0 = nothing playable)
    file_bytes: int
    init_bytes: int
    fragments: int
    reason: str = ""


def check_segment(path: Path) -> SegmentCheck:
    boxes, size = scan_boxes(path)
    init = init_section_size(boxes)
    if not init:
        return SegmentCheck(False, 0, size, 0, 0, "no moov box: the file holds no playable media")
    fragments = 0
    valid = init
    pending_moof = False
    for box in boxes:
        if box.offset < init:
            continue
        if box.type == "moof":
            pending_moof = True
        elif box.type == "mdat" and pending_moof:
            fragments += 1
            pending_moof = False
            valid = box.end
        elif box.type in ("mfra", "free", "skip", "sidx", "styp", "prft", "emsg"):
            if not pending_moof:
                valid = box.end
    if fragments == 0:
        return SegmentCheck(False, 0, size, init, 0, "no complete fragment after the init section")
    if valid == size:
        return SegmentCheck(True, valid, size, init, fragments)
    return SegmentCheck(False, valid, size, init, fragments, f"{size - valid} torn bytes after the last complete fragment")


def truncate_to_valid(path: Path, check: SegmentCheck) -> None:
    """Cut a torn tail so the file ends on its last complete fragment."""
    with open(path, "r+b") as fh:
        fh.truncate(check.valid_bytes)
        fh.flush()
        os.fsync(fh.fileno())
