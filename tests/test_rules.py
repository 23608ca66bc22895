"""The pure rules, alone: schedules, retention, ranges and gaps, run timing, HLS, outage reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from varta.cameras.model import Camera, CameraError, redact_text, redact_url
from varta.cameras.schedule import Schedule, ScheduleError
from varta.clock import DAY_US, US, format_time, parse_time
from varta.playback.hls import vod_playlist
from varta.playback.ranges import Range, find_gaps, merge_ranges
from varta.recording import outage, retention
from varta.recording.timing import RunClock

KYIV = ZoneInfo("Europe/Kyiv")


@dataclass
class Seg:
    start_us: int
    end_us: int
    camera_id: str = "c"
    bytes: int = 100
    init_bytes: int = 10
    id: int = 0

    @property
    def duration_us(self):
        return self.end_us - self.start_us


@dataclass
class Out:
    start_us: int
    end_us: int | None
    reason: str
    detail: str = ""


def test_times_without_offset_are_city_time_and_output_carries_the_offset():
    summer = parse_time("2026-07-01T12:00", KYIV)
    winter = parse_time("2026-01-01T12:00", KYIV)
    assert format_time(summer) == "2026-07-01T09:00:00.000+00:00"
    assert format_time(winter) == "2026-01-01T10:00:00.000+00:00"
    assert format_time(summer, KYIV) == "2026-07-01T12:00:00.000+03:00"
    assert parse_time("2026-07-01T09:00:00Z", KYIV) == summer
    assert parse_time("2026-07-01T12:00:00+03:00", KYIV) == summer
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday", KYIV)


def test_schedule_rules_in_local_time_with_midnight_wrap():
    s = Schedule.from_json({"default": "continuous", "rules": [
        {"days": ["sat", "sun"], "from": "00:00", "to": "24:00", "mode": "off"},
        {"days": ["mon"], "from": "22:00", "to": "06:00", "mode": "off"},
    ]})
    assert s.mode_at(datetime(2026, 11, 21, 12, 0, tzinfo=KYIV)) == "off"  # Saturday
    assert s.mode_at(datetime(2026, 11, 23, 12, 0, tzinfo=KYIV)) == "continuous"  # Monday noon
    assert s.mode_at(datetime(2026, 11, 23, 23, 0, tzinfo=KYIV)) == "off"  # Monday night
    assert s.mode_at(datetime(2026, 11, 24, 5, 59, tzinfo=KYIV)) == "off"  # …into Tuesday morning
    assert s.mode_at(datetime(2026, 11, 24, 6, 0, tzinfo=KYIV)) == "continuous"
    assert Schedule.from_json(s.to_json()) == s
    with pytest.raises(ScheduleError, match="recording mode"):
        Schedule.from_json({"rules": [{"mode": "sometimes"}]})
    with pytest.raises(ScheduleError, match="unknown day"):
        Schedule.from_json({"rules": [{"days": ["funday"], "mode": "off"}]})


def test_camera_validation_messages():
    with pytest.raises(CameraError, match="at least 10 days"):
        Camera(id="mel-1", main_url="rtsp://h/x", retention_days=9).validated()
    with pytest.raises(CameraError, match="not valid"):
        Camera(id="Mel 1", main_url="rtsp://h/x").validated()
    with pytest.raises(CameraError, match="kind"):
        Camera(id="mel-1", main_url="rtsp://h/x", kind="moon").validated()
    with pytest.raises(CameraError, match="scheme"):
        Camera(id="mel-1", main_url="ftp://h/x").validated()
    with pytest.raises(CameraError, match="both latitude and longitude"):
        Camera(id="mel-1", main_url="rtsp://h/x", latitude=46.8).validated()
    with pytest.raises(CameraError, match="no host"):
        Camera(id="mel-1", main_url="rtsp:///x").validated()


def test_credentials_are_redacted():
    url = "rtsp://admin:p%40ss@10.0.0.5:554/Streaming/Channels/101"
    assert redact_url(url) == "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101"
    assert redact_url("rtsp://10.0.0.5/x") == "rtsp://10.0.0.5/x"
    text = f"{url}: 401 Unauthorized (password p%40ss)"
    cleaned = redact_text(text, [url])
    assert "p%40ss" not in cleaned and "admin:***@" in cleaned


def test_retention_keeps_held_segments_and_the_young():
    now = 100 * DAY_US
    segs = [Seg(now - d * DAY_US, now - d * DAY_US + 10 * US) for d in (12, 11, 10, 9)]
    hold = retention.Hold(segs[1].start_us + 5 * US, segs[1].start_us + 6 * US)  # inside segment 2
    doomed = retention.expired(segs, now, 10, [hold])
    assert doomed == [segs[0]]  # 11-day-old held; 10-day-old ended after the cutoff; 9-day-old young
    assert retention.cutoff_us(now, 10) == now - 10 * DAY_US


def test_free_space_takes_the_oldest_unheld_first():
    segs = [Seg(i * 10 * US, (i + 1) * 10 * US, camera_id="a" if i % 2 else "b", bytes=100) for i in range(10)]
    holds = {"b": [retention.Hold(0, 25 * US)]}  # b's first two segments (0 and 2) are held
    chosen = retention.choose_to_free(segs, 250, holds)
    assert [s.start_us // (10 * US) for s in chosen] == [1, 3, 4]
    assert retention.free_target_bytes(1000 * 2**20, 5, 10) == 50 * 2**20


def test_storage_forecast_warns_when_disk_holds_fewer_days_than_retention():
    bitrates = {"a": 4e6, "b": 4e6}  # 2 × 4 Mbit/s = 86.4 GB/day
    fc = retention.forecast(free_bytes=500 * 10**9, used_bytes=100 * 10**9, reserve_bytes=0,
                            bitrates_bps=bitrates, retention_days={"a": 10, "b": 14})
    assert fc.daily_bytes == pytest.approx(86.4e9)
    assert fc.days_capacity == pytest.approx(600 / 86.4)
    assert fc.short and fc.required_days == 14
    assert not retention.forecast(10**13, 0, 0, bitrates, {"a": 10}).short
    assert retention.forecast(10**9, 0, 0, {}, {"a": 10}).days_capacity is None


def test_ranges_merge_touching_segments_and_gaps_carry_reasons():
    s = [Seg(0, 10 * US), Seg(10 * US, 20 * US), Seg(20_500_000, 30 * US), Seg(50 * US, 60 * US)]
    ranges = merge_ranges(s, 0, 100 * US)
    assert ranges == [Range(0, 30 * US), Range(50 * US, 60 * US)]
    outages = [Out(30 * US, 40 * US, "refused", "Connection refused"), Out(40 * US, 50 * US, "recorder_down")]
    gaps = find_gaps(ranges, outages, 0, 100 * US, now=80 * US)
    assert [(g.start_us // US, g.end_us // US, g.reason) for g in gaps] == [
        (30, 40, "refused"), (40, 50, "recorder_down"), (60, 80, "no_recording")]
    assert gaps[0].detail == "Connection refused"
    # An open outage (still going on) explains the tail; a fresh tail while recording is in progress.
    gaps = find_gaps(ranges, [Out(60 * US, None, "timeout")], 0, 100 * US, now=90 * US)
    assert gaps[-1].reason == "timeout" and gaps[-1].end_us == 90 * US
    gaps = find_gaps([Range(0, 78 * US)], [], 0, 100 * US, now=80 * US, recording_now=True, tail_us=10 * US)
    assert [g.reason for g in gaps] == ["in_progress"]


def test_run_clock_keeps_segments_contiguous_and_reports_lag():
    clock = RunClock()
    t0 = 1_000 * US
    a = clock.place(0.0, 10.0, t0 + 10 * US + 30_000)  # arrives 30 ms after its end: the anchor
    b = clock.place(10.0, 20.0, t0 + 20 * US + 90_000)  # arrives a little later than expected
    assert a[1] == b[0]  # contiguous
    assert b[2] == pytest.approx(0.06)  # lag relative to the anchor
    c = clock.place(20.0, 30.0, t0 + 29 * US)  # camera clock runs fast: never date the future
    assert c[1] <= t0 + 29 * US and c[2] == 0
    assert c[0] == b[1]  # and the run stays contiguous


def test_hls_playlist_uses_byte_ranges_and_starts_at_the_asked_time():
    segs = [Seg(0, 10 * US, id=1, bytes=5000, init_bytes=700), Seg(10 * US, 20 * US, id=2, bytes=4000, init_bytes=700),
            Seg(30 * US, 40 * US, id=3, bytes=4000, init_bytes=700)]
    text = vod_playlist(segs, lambda s: f"/api/segments/{s.id}/file", start_us=12_500_000)
    assert "#EXT-X-START:TIME-OFFSET=12.500,PRECISE=YES" in text
    assert '#EXT-X-MAP:URI="/api/segments/1/file",BYTERANGE="700@0"' in text
    assert "#EXT-X-BYTERANGE:4300@700" in text
    assert text.count("#EXT-X-DISCONTINUITY") == 2 and text.rstrip().endswith("#EXT-X-ENDLIST")
    # A start inside a gap begins at the next footage.
    assert "TIME-OFFSET=20.000" in vod_playlist(segs, str, start_us=25 * US)


@pytest.mark.parametrize("text,code,reason", [
    ("rtsp://x: Connection refused", 1, "refused"),
    ("method DESCRIBE failed: 401 Unauthorized", 1, "auth"),
    ("method DESCRIBE failed: 404 Not Found", 1, "not_found"),
    ("rtsp://x: Connection timed out", 1, "timeout"),
    ("av_interleaved_write_frame(): No space left on device", 1, "disk_full"),
    ("", -9, "process_died"),
    ("", 0, "stream_ended"),
])
def test_outage_reasons_from_ffmpeg_output(text, code, reason):
    assert outage.classify(text, code) == reason
    assert outage.describe(reason)
