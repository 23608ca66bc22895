"""The journal has one line per viewed interval of the archive, not one per 10-s segment
(issue 15, A4.3): a real recording played segment by segment over HTTP, a jump elsewhere in
it, a pause, a sign-out, and a ``varta serve`` killed with -9 while someone is watching."""

from __future__ import annotations

import pytest

from conftest import have_ffmpeg, login_client
from varta.access.viewings import continues

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed")]


def test_continues_is_the_next_segment_an_overlap_or_a_prefetch_not_a_jump():
    s = 10_000_000  # a 10-s segment, µs
    assert continues(0, s, s, 2 * s, 2 * s)               # the next one
    assert continues(0, 3 * s, s, 2 * s, 2 * s)           # played again inside the interval
    assert continues(0, s, 2 * s, 3 * s, 2 * s)           # one ahead (prefetch, a short gap)
    assert not continues(0, s, 4 * s, 5 * s, 2 * s)       # a jump forward
    assert not continues(10 * s, 11 * s, 0, s, 2 * s)     # a jump back


def _plays(v, seq_from: int) -> list[dict]:
    with v.api("auditor", "admin") as c:
        lines = c.get("/api/journal", params={"from": "now-1h", "to": "now+1m", "action": "archive.play",
                                              "order": "oldest"}).json()["lines"]
    return [ln for ln in lines if ln["seq"] > seq_from]


def _head(v) -> int:
    with v.api("auditor", "admin") as c:
        lines = c.get("/api/journal", params={"from": "now-1h", "to": "now+1m", "order": "newest"}).json()["lines"]
    return lines[0]["seq"] if lines else 0


def test_one_journal_line_per_viewed_interval(varta, camsim):
    v = varta(archive_view_idle_s=3)
    v.run("camera", "add", "mel-view", "--url", camsim.url("gen1"))
    v.start()
    segs = v.wait_for(lambda: (lambda s: s if len(s) >= 9 else None)(
        v.api().get("/api/cameras/mel-view/segments", params={"from": "now-1h", "to": "now+1m"}).json()),
        timeout=90, what="nine recorded segments")
    password, _ = v.account("olena", "department")
    viewer = login_client(v.base_url, "olena", password)  # 127.0.0.1: a restricted-zone workstation
    start = _head(v)

    # Five segments in a row, each fetched in two range requests (as a player does): one interval.
    for s in segs[:5]:
        for rng in ("bytes=0-999", "bytes=1000-"):
            assert viewer.get(s["url"], headers={"Range": rng}).status_code == 206
    assert _plays(v, start) == [], "a line was written while the interval is still being viewed"
    # A jump to the end of the recording: the first interval ends now, as one line.
    assert viewer.get(segs[8]["url"]).status_code == 200
    lines = v.wait_for(lambda: _plays(v, start) or None, timeout=10, what="the first interval's line")
    assert len(lines) == 1
    first = lines[0]
    assert first["account"] == "olena" and first["object"] == "camera:mel-view" and first["result"] == "ok"
    assert segs[0]["start"][11:19] in first["detail"] and segs[4]["end"][11:19] in first["detail"], first["detail"]
    assert "(5 segments)" in first["detail"]
    # The player pauses: after archive_view_idle_s the second interval is journaled by the sweep.
    lines = v.wait_for(lambda: (lambda ls: ls if len(ls) == 2 else None)(_plays(v, start)), timeout=20,
                       what="the paused interval's line")
    assert "(1 segment)" in lines[1]["detail"] and segs[8]["start"][11:19] in lines[1]["detail"]

    # Playing, then signing out: the line is there when the sign-out is.
    mark = _head(v)
    assert viewer.get(segs[6]["url"]).status_code == 200
    assert viewer.post("/api/auth/logout").status_code == 200
    assert len(_plays(v, mark)) == 1

    # A node killed with -9 while someone watches: the viewing was stored before the video
    # left, and the restarted node journals it.
    mark = _head(v)
    viewer = login_client(v.base_url, "olena", password)
    assert viewer.get(segs[2]["url"]).status_code == 200
    assert viewer.get(segs[3]["url"]).status_code == 200
    v.kill9()
    v.start()
    lines = v.wait_for(lambda: _plays(v, mark) or None, timeout=30, what="the interrupted viewing's line")
    assert len(lines) == 1 and "(2 segments)" in lines[0]["detail"], lines
