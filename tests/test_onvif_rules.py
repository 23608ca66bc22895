"""ONVIF rules without a device (varta/onvif/model.py, ptzlock.py): profile choice, the
stream address with credentials, scopes, firmware minimums, clock drift, the PTZ lock."""

from __future__ import annotations

import pytest

from varta.onvif import model as m
from varta.onvif.ptzlock import Lock, decide

P = [m.Profile("p_sub", "Sub", "rtsp://10.0.0.5/sub", 640, 360, "H264", 15),
     m.Profile("p_main", "Main", "rtsp://10.0.0.5/main", 1920, 1080, "H264", 25),
     m.Profile("p_mid", "Mid", "rtsp://10.0.0.5/mid", 1280, 720, "H265", 25)]


def test_main_is_the_largest_picture_and_sub_the_smallest_unless_named():
    main, sub = m.choose(P)
    assert (main.token, sub.token) == ("p_main", "p_sub")
    main, sub = m.choose(P, "p_mid", "p_sub")
    assert (main.token, sub.token) == ("p_mid", "p_sub")
    assert m.choose(P[:1]) == (P[0], None)
    with pytest.raises(m.OnvifError, match="no profile 'x'"):
        m.choose(P, "x")
    with pytest.raises(m.OnvifError, match="different profiles"):
        m.choose(P, "p_main", "p_main")
    with pytest.raises(m.OnvifError, match="no media profiles"):
        m.choose([])


def test_stream_address_carries_the_credentials_escaped():
    assert m.with_credentials("rtsp://10.0.0.5:554/Streaming/101?x=1", "admin", "p@ss:w/rd") == \
        "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5:554/Streaming/101?x=1"
    assert m.without_credentials("rtsp://a:b@10.0.0.5/x") == "rtsp://10.0.0.5/x"
    with pytest.raises(m.OnvifError, match="not RTSP"):
        m.with_credentials("http://10.0.0.5/mjpeg", "a", "b")


def test_scopes_firmware_and_clock():
    assert m.scope_values(["onvif://www.onvif.org/hardware/DS-2CD2143", "onvif://www.onvif.org/name/Dome%20A",
                           "onvif://www.onvif.org/Profile/Streaming"]) == {
        "hardware": "DS-2CD2143", "name": "Dome A", "Profile": "Streaming"}
    rules = "Hikvision DS-2CD2143=5.7.3; Hikvision=5.5; *=1.0"
    assert m.minimum_for(rules, "Hikvision", "DS-2CD2143") == "5.7.3"
    assert m.minimum_for(rules, "Hikvision", "DS-2CD1023") == "5.5"
    assert m.minimum_for(rules, "Dahua", "IPC") == "1.0"
    assert m.firmware_below("V5.7.1 build 220101", "5.7.3") and not m.firmware_below("5.10.0", "5.7.3")
    assert not m.firmware_below("5.7.3", "") and not m.firmware_below("", "5.7")
    assert m.drifted(-12.0, 10) and not m.drifted(9.5, 10) and not m.drifted(None, 10)
    assert m.changed_streams({"main_uri": "rtsp://a/1", "sub_uri": "rtsp://a/2"},
                             {"main_uri": "rtsp://a/1", "sub_uri": "rtsp://a/22"}) == ["sub_uri"]


def test_one_operator_steers_a_higher_role_takes_over():
    now = 1_000_000_000
    held = Lock("olena", "Olena K.", "department", now + 30_000_000)
    assert decide(None, "ivan", "police", now).granted
    assert decide(held, "olena", "department", now).granted  # the holder goes on
    v = decide(held, "petro", "department", now)
    assert not v.granted and "Olena K. (olena)" in v.reason and "30 s" in v.reason
    assert not decide(held, "ivan", "police", now).granted
    v = decide(held, "mayor1", "mayor", now)
    assert v.granted and v.taken_over == "olena"
    assert decide(held, "petro", "department", now + 31_000_000).granted  # the hold ran out
