"""Where the archive keeps things, and the rules of its local cache (pure, no I/O).

A segment's ``stored`` column says where its bytes are:

* ``local`` — only on the disk of the node that recorded it (``segments.recorder``): not
  shipped yet, or the city has no bucket;
* ``both`` — shipped and verified (its SHA-256 in the index and in the object's
  metadata), and the recording node still keeps a copy as a cache;
* ``s3`` — only in the bucket (the local copy was released after the cache time).

Object keys spread cameras over 256 prefixes (two hex digits of a hash of the camera id),
so a store that partitions by key prefix (AWS S3, Ceph RGW) never has one hot prefix.
"""

from __future__ import annotations

import hashlib

from varta.clock import US

LOCAL, BOTH, S3 = "local", "both", "s3"
IN_BUCKET = (BOTH, S3)


def fanout(camera_id: str) -> str:
    return hashlib.sha1(camera_id.encode(), usedforsecurity=False).hexdigest()[:2]


def segment_key(camera_id: str, path: str) -> str:
    """The object key of a segment under the archive's prefix (its path is the recording
    folder's relative path, ``YYYY/MM/DD/<start>-<run>.mp4``)."""
    if not camera_id or ".." in path or path.startswith("/"):
        raise ValueError(f"bad segment path {camera_id}/{path}")
    return f"segments/{fanout(camera_id)}/{camera_id}/{path}"


AREAS_IN_BUCKET = ("events", "exports", "packages")


def file_key(area: str, rel: str) -> str:
    """The object key of a file other than a segment (an alarm picture, an export, an
    evidence package) under the archive's prefix: the same relative path as on the disk of
    the node that wrote it."""
    if area not in AREAS_IN_BUCKET or not rel or ".." in rel.split("/") or rel.startswith("/"):
        raise ValueError(f"bad file path {area}/{rel}")
    return f"files/{area}/{rel}"


# Never released younger than this, whatever the cache time: a planned move may still trim
# the newest segment of a camera on the disk (recording/trim.py) a few seconds after it closed.
MIN_CACHE_US = 30 * US


def cache_cutoff_us(now_us: int, cache_hours: float) -> int:
    """Shipped segments that ended before this may lose their local copy."""
    return now_us - max(int(cache_hours * 3600 * US), MIN_CACHE_US)


def backlog_seconds(oldest_unshipped_end_us: int | None, now_us: int) -> float:
    """How far shipping is behind: the age of the oldest segment not yet in the bucket."""
    if oldest_unshipped_end_us is None:
        return 0.0
    return max(0.0, (now_us - oldest_unshipped_end_us) / US)
