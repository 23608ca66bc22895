"""R4: a full disk never stops recording. Real small file systems (tmpfs) fill up for real."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest

from conftest import have_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]


@pytest.fixture
def small_disk(tmp_path):
    def make(size_mb: int):
        mnt = tmp_path / "home0" / "recordings"
        mnt.mkdir(parents=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {res.stderr.strip()}")
        mounts.append(mnt)
        return mnt

    mounts = []
    yield make
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], check=False)


def _rows(v, cam):
    with sqlite3.connect(v.home / "varta.db") as db:
        return db.execute("select id, path, start_us, end_us from segments where camera_id=? order by start_us",
                          (cam,)).fetchall()


def _hold_first_segments(v, cam, n):
    rows = _rows(v, cam)[:n]
    with sqlite3.connect(v.home / "varta.db") as db:
        db.execute("insert into holds (camera_id, start_us, end_us, reason, created_us) values (?,?,?,?,?)",
                   (cam, rows[0][2], rows[-1][3], "kept by instruction", 0))
    return rows


def test_reserve_reached_frees_oldest_unheld_and_keeps_recording(varta, camsim, small_disk):
    mnt = small_disk(20)
    v = varta(min_free_mb=14, min_free_percent=0, janitor_interval_s=2)
    assert v.home / "recordings" == mnt
    for name in ("gen1", "gen2", "gen3"):
        v.run("camera", "add", f"mel-{name}", "--url", camsim.url(name))
    v.start()
    v.wait_for(lambda: len(_rows(v, "mel-gen1")) >= 2, 60, "first segments")
    held = _hold_first_segments(v, "mel-gen1", 2)
    with v.api() as c:
        v.wait_for(lambda: any(a["kind"] == "footage_freed_early" for a in c.get("/api/system/alarms").json()),
                   120, "a critical alarm about footage freed early")
        alarm = next(a for a in c.get("/api/system/alarms").json() if a["kind"] == "footage_freed_early")
        assert alarm["severity"] == "critical" and "before their retention ended" in alarm["message"]
        storage = c.get("/api/system/storage").json()
        assert storage["short"] is True  # 20 MB cannot hold 10 days: the forecast said so
        assert any(a["kind"] == "storage_forecast" for a in c.get("/api/system/alarms").json())
    paths = {r[1] for r in _rows(v, "mel-gen1")}
    assert all(h[1] in paths and (mnt / "mel-gen1" / h[1]).exists() for h in held), "held footage was deleted"
    # Recording never stopped: each camera kept producing segments throughout.
    for name in ("gen1", "gen2", "gen3"):
        newest = _rows(v, f"mel-{name}")[-1][3]
        v.wait_for(lambda: _rows(v, f"mel-{name}")[-1][3] > newest, 30, f"mel-{name} still recording")
        assert v.status(f"mel-{name}")["state"] == "recording"


def test_disk_actually_full_recovers_by_itself(varta, camsim, small_disk):
    """No reserve configured: ffmpeg hits ENOSPC, the recorder says so, space is freed, recording resumes."""
    small_disk(8)
    v = varta(min_free_mb=0, min_free_percent=0, janitor_interval_s=3600)
    v.run("camera", "add", "mel-full", "--url", camsim.url("gen1"))
    v.run("camera", "add", "mel-full2", "--url", camsim.url("gen2"))
    v.start()
    v.wait_for(lambda: len(_rows(v, "mel-full")) >= 2, 60, "first segments")
    held = _hold_first_segments(v, "mel-full", 1)
    import sqlite3 as sq

    def saw_disk_full():
        with sq.connect(v.home / "varta.db") as db:
            return db.execute("select count(*) from outages where reason='disk_full'").fetchone()[0]

    v.wait_for(saw_disk_full, 120, "ffmpeg reporting a full disk")
    with v.api() as c:
        v.wait_for(lambda: any(a["kind"] == "footage_freed_early" for a in c.get("/api/system/alarms").json()),
                   60, "space freed")
    time.sleep(1)
    newest = _rows(v, "mel-full")[-1][3]
    v.wait_for(lambda: _rows(v, "mel-full")[-1][3] > newest + 3_000_000, 60, "recording resumed after the disk was full")
    assert held[0][1] in {r[1] for r in _rows(v, "mel-full")}
