"""Start-up reconciliation of disk and index (crash safety).

After kill -9 or power loss three things can be out of step, and each is repaired:

* a finished (or torn) segment file that never reached the index → its torn tail, if any,
  is cut at the last complete fragment, it is probed and indexed (status ``repaired``
  when cut); a file with no playable fragment at all is moved to quarantine and an alarm
  is raised;
* an index row whose file has vanished → marked ``missing`` and its interval recorded
  as an outage ``file_missing``, so the gap has a reason;
* nothing else is touched: reconciliation never deletes footage.

In a cluster it is strictly about this node's own disk: only files in its folder and index
rows naming this node (a camera that moved keeps its other node's rows untouched), never a
file some process still has open for writing (a recording in progress, whatever started
it), and a recovered file whose time is already covered by another node's footage is set
aside in quarantine rather than indexed twice.

Only the most recent days are scanned by default (files can only be left unindexed in
the moments before a crash); ``full=True`` scans everything.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from varta.clock import DAY_US, US, from_datetime
from varta.cluster.leases import Fence
from varta.db.schema import segments as segments_table
from varta.events.system_alarms import SystemAlarms
from varta.recording.ffmpeg import start_from_name
from varta.recording.index import ArchiveIndex
from varta.recording.mp4box import check_segment, truncate_to_valid
from varta.recording.probe import ProbeError, probe_segment

log = logging.getLogger("varta.reconcile")

# A recovered segment whose name-time is this close to the previous segment's end is
# taken as contiguous with it (the name has one-second precision).
SNAP_US = 1_500_000


@dataclass
class ReconcileReport:
    indexed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.indexed)} indexed, {len(self.repaired)} repaired, "
                f"{len(self.quarantined)} quarantined, {len(self.missing)} missing")


# A recovered file overlapping indexed footage by more than this is a duplicate.
OVERLAP_TOLERANCE_US = 1_000_000


def files_open_for_writing(root: Path) -> set[str]:
    """Paths under ``root`` that some process has open for writing (Linux ``/proc``): a
    recorder's segment in progress, in this process or any other."""
    root_s = str(Path(root).resolve())
    busy: set[str] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return busy
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if not target.startswith(root_s):
                continue
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = next((int(ln.split()[1], 8) for ln in info if ln.startswith("flags:")), 0)
            except (OSError, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                busy.add(target)
    return busy


def reconcile_camera(index: ArchiveIndex, alarms: SystemAlarms, recordings_dir: Path, quarantine_dir: Path,
                     camera_id: str, recorder: str, days: int | None = 2, fence: Fence | None = None,
                     busy: set[str] | None = None) -> ReconcileReport:
    """Reconcile this node's (``recorder``'s) files and rows of one camera."""
    report = ReconcileReport()
    cam_dir = recordings_dir / camera_id
    if busy is None:
        busy = files_open_for_writing(cam_dir) if cam_dir.is_dir() else set()
    if days is None:
        since = 0
        day_dirs = sorted(p for p in cam_dir.glob("*/*/*") if p.is_dir())
    else:
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        dates = [today - timedelta(days=i) for i in range(days, -2, -1)]
        since = from_datetime(dates[0])
        day_dirs = [cam_dir / d.strftime("%Y/%m/%d") for d in dates]
    known = index.paths_since(camera_id, since - DAY_US, recorder=recorder)

    # 1. Files on disk that the index does not know.
    for day_dir in day_dirs:
        if not day_dir.is_dir():
            continue
        for entry in sorted(os.scandir(day_dir), key=lambda e: e.name):
            if not entry.name.endswith(".mp4") or not entry.is_file():
                continue
            rel = str(Path(entry.path).relative_to(cam_dir))
            if rel in known or str(Path(entry.path).resolve()) in busy:
                continue
            _recover_file(index, alarms, Path(entry.path), rel, cam_dir, quarantine_dir, camera_id, recorder, report,
                          fence)

    # 2. Index rows whose file has vanished.
    q = select(segments_table.c.id, segments_table.c.path, segments_table.c.start_us, segments_table.c.end_us).where(
        segments_table.c.camera_id == camera_id, segments_table.c.status != "missing",
        segments_table.c.start_us >= since, segments_table.c.recorder == recorder,
        segments_table.c.stored != "s3",  # only in the archive bucket: no local file is expected
    )
    with index.engine.connect() as conn:
        rows = conn.execute(q).all()
    for row in rows:
        if not (cam_dir / row.path).exists():
            index.set_segment_status(row.id, "missing")
            index.record_outage(camera_id, row.start_us, row.end_us, "file_missing", row.path, recorder)
            report.missing.append(row.path)
    if report.missing:
        alarms.raise_alarm("segments_missing", "critical",
                           f"camera {camera_id}: {len(report.missing)} recorded file(s) vanished from disk "
                           f"(first: {report.missing[0]})", camera_id)
    if any((report.indexed, report.repaired, report.quarantined, report.missing)):
        log.warning("camera %s reconciled: %s", camera_id, report.summary())
    return report


def _quarantine(alarms, path: Path, rel: str, quarantine_dir: Path, camera_id: str, why: str,
                report: ReconcileReport) -> None:
    target = quarantine_dir / camera_id / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    report.quarantined.append(rel)
    alarms.raise_alarm("segment_quarantined", "warning",
                       f"camera {camera_id}: {rel} set aside in quarantine: {why}", camera_id)


def _recover_file(index, alarms, path: Path, rel: str, cam_dir: Path, quarantine_dir: Path, camera_id: str,
                  recorder: str, report: ReconcileReport, fence: Fence | None = None) -> None:
    check = check_segment(path)
    name_start = start_from_name(path.name)
    if check.fragments == 0 or name_start is None:
        why = check.reason if check.fragments == 0 else "its name carries no start time"
        _quarantine(alarms, path, rel, quarantine_dir, camera_id, why, report)
        return
    status = "ok"
    if not check.ok:
        truncate_to_valid(path, check)
        status = "repaired"
        report.repaired.append(rel)
    try:
        info = probe_segment(path)
    except ProbeError as exc:
        _quarantine(alarms, path, rel, quarantine_dir, camera_id, str(exc), report)
        return
    start = name_start
    prev = index.segments_between(camera_id, name_start - 20 * US, name_start + SNAP_US)
    prev = [s for s in prev if s.start_us < name_start]
    if prev and abs(prev[-1].end_us - name_start) <= SNAP_US:
        start = prev[-1].end_us
    end = start + int(info.duration_s * US)
    dup = index.overlaps(camera_id, start, end, OVERLAP_TOLERANCE_US)
    if dup:
        _quarantine(alarms, path, rel, quarantine_dir, camera_id,
                    f"its time is already recorded (by node {dup[0].recorder}); not indexed twice", report)
        return
    run_id = path.stem.rsplit("-", 1)[-1]
    index.add_segment(
        fence=fence, camera_id=camera_id, start_us=start, end_us=end, path=rel,
        bytes=path.stat().st_size, init_bytes=check.init_bytes, codec=info.codec, width=info.width,
        height=info.height, fps=info.fps, run_id=run_id, recorder=recorder, status=status,
    )
    report.indexed.append(rel)
