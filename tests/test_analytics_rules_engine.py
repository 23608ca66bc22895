"""The analytics rules engine (R3, R6, R8): hand-made tracks moving through hand-made scenes.

The picture is 1000 x 500 pixels (not square, so a normalised/pixel mix-up shows); tracks are
people and cars whose anchor (bottom centre of the box) we move step by step.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from varta.analytics.rules import (
    LineRule, RuleEngine, RuleError, StoppedRule, parse_rules, point_in_polygon, rules_to_json, segments_cross,
)
from varta.analytics.types import FrameInfo, Track

W, H = 1000, 500
KYIV = ZoneInfo("Europe/Kyiv")
RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]


def obj(tid: int, label: str = "person", score: float = 0.9) -> Track:
    return Track(id=tid, label=label, cls=0, score=score, box=(0, 0, 0, 0), first_t=0.0, last_t=0.0, confirmed=True)


def move(tr: Track, t: float, x: float, y: float) -> Track:
    """Put the track's anchor at (x, y) pixels at time t."""
    if not tr.path:
        tr.first_t = t
    tr.box = tr.seen_box = (x - 20, y - 80, x + 20, y)
    tr.last_t = t
    tr.path.append((t, x, y))
    return tr


def frame(t: float, local: datetime | None = None, tamper=frozenset()) -> FrameInfo:
    return FrameInfo(t=t, width=W, height=H, local=local, tamper=frozenset(tamper))


def keys(occs):
    return [o.key for o in occs]


# --- zone (intrusion) -----------------------------------------------------------------------


def test_intrusion_fires_after_dwell_not_before_and_closes_when_the_person_leaves():
    eng = RuleEngine([{"name": "Courtyard at night", "type": "zone", "zone": "courtyard",
                       "polygon": RIGHT_HALF, "min_dwell_s": 1.0, "classes": ["person"]}])
    walker, car = obj(7), obj(8, "car")
    log = {}
    for i in range(0, 71):  # walks right at 100 px/s, crosses x=500 between t=1.9 and t=2.0
        t = i / 10
        move(walker, t, 305 + 100 * t if t <= 4 else 705 - 100 * (t - 4), 300)
        move(car, t, 800, 400)  # a car parked in the zone: not one of the rule's classes
        log[t] = eng.step(frame(t), [walker, car])
    opened_at = [t for t, (o, _, _) in log.items() if o]
    closed_at = [t for t, (_, _, c) in log.items() if c]
    assert opened_at == [3.0]  # entered at 2.0, dwell 1.0; nothing at 2.9
    assert log[2.9] == ([], [], [])
    occ = log[3.0][0][0]
    assert occ.key == "Courtyard at night:track 7" and occ.kind == "zone" and occ.zone == "courtyard"
    assert occ.label == "person" and occ.track_id == 7 and occ.score == 0.9 and occ.box == walker_box(605, 300)
    assert occ.detail["direction"]["heading"] == "right" and occ.detail["severity"] == "alarm"
    assert occ.detail["since"] == 2.0 and not occ.instant
    assert keys(log[3.5][1]) == ["Courtyard at night:track 7"]  # ongoing while inside
    # Turns back at t=4 and walks out: x = 705 - 100 (t - 4) is 505 at t=6.0, 495 at t=6.1.
    assert closed_at == [6.1]
    closed = log[6.1][2][0]
    assert closed.key == occ.key and closed.t == 6.1 and closed.detail["end"] == "cleared"
    assert closed.box == walker_box(505, 300)  # the last known fields: where it was seen inside
    assert all(not o and not g for t, (o, g, _) in log.items() if t > 6.1)


def walker_box(x, y):
    return (x - 20, y - 80, x + 20, y)


def test_leaving_and_coming_back_waits_the_dwell_again():
    eng = RuleEngine([{"name": "yard", "type": "zone", "polygon": RIGHT_HALF, "min_dwell_s": 1.0}])
    p = obj(1)
    xs = {0.0: 800, 0.5: 800, 1.0: 800, 1.5: 800, 2.0: 300, 2.5: 800, 3.0: 800, 3.5: 800}
    got = {t: eng.step(frame(t), [move(p, t, x, 300)]) for t, x in xs.items()}
    assert [t for t, (o, _, _) in got.items() if o] == [1.0, 3.5]
    assert [t for t, (_, _, c) in got.items() if c] == [2.0]


def test_intrusion_closes_when_the_track_vanishes_and_counts_time_seen_in_the_path():
    eng = RuleEngine([{"name": "yard", "type": "zone", "polygon": RIGHT_HALF}])
    old_timer = obj(1)
    for t in (2.0, 3.0, 4.0, 4.5):  # inside for 3 s before the tracker confirmed it
        move(old_timer, t, 800, 300)
    newcomer = obj(2)
    move(newcomer, 3.0, 300, 300)  # outside, then inside from 4.5
    move(newcomer, 4.5, 700, 300)
    move(old_timer, 5.0, 800, 300)
    move(newcomer, 5.0, 700, 300)
    opened, _, _ = eng.step(frame(5.0), [old_timer, newcomer])
    assert keys(opened) == ["yard:track 1"]  # the path shows it has been inside since t=2
    assert opened[0].detail["since"] == 2.0
    move(old_timer, 5.5, 800, 300)
    move(newcomer, 5.5, 700, 300)
    opened, ongoing, _ = eng.step(frame(5.5), [old_timer, newcomer])
    assert keys(opened) == ["yard:track 2"] and keys(ongoing) == ["yard:track 1"]
    move(newcomer, 6.0, 700, 300)
    opened, ongoing, closed = eng.step(frame(6.0), [newcomer])  # track 1 lost by the tracker
    assert keys(closed) == ["yard:track 1"] and closed[0].detail["end"] == "track_lost"
    assert keys(ongoing) == ["yard:track 2"] and opened == []
    assert keys(eng.step(frame(6.5), [])[2]) == ["yard:track 2"]
    assert eng.step(frame(7.0), []) == ([], [], [])


# --- line crossing --------------------------------------------------------------------------

# Horizontal line across the middle, drawn left to right: side A above, side B below.
ACROSS = {"a": [0.1, 0.5], "b": [0.9, 0.5]}  # y = 250 px, x 100..900; hysteresis 0.01 * 1118 = 11 px


def zigzag(x: float) -> list[tuple[float, float]]:
    """Down across the line and back up, three times, jittering +-8 px around the line each time."""
    down = [150, 200, 243, 256, 245, 257, 242, 251, 300, 350]
    up = [350, 300, 257, 244, 255, 243, 258, 249, 200, 150]
    return [(x + 3 * (i % 2), y) for _ in range(3) for i, y in enumerate(down + up)]


def test_line_counts_each_crossing_once_despite_jitter_and_only_in_its_direction():
    eng = RuleEngine([
        {"name": "in", "type": "line", **ACROSS, "direction": "a_to_b"},
        {"name": "out", "type": "line", **ACROSS, "direction": "b_to_a", "classes": ["person"]},
        {"name": "any", "type": "line", **ACROSS},  # default: both
    ])
    p, fidget, outside = obj(1), obj(2), obj(3)
    fidget_ys = [240, 258, 244, 255, 247, 256]  # jitters within 10 px of the line: never counts
    opened_all, others = [], []
    for i, (x, y) in enumerate(zigzag(500)):
        t = i * 0.1
        move(p, t, x, y)
        move(fidget, t, 300, fidget_ys[i % len(fidget_ys)])
        move(outside, t, 950, 150 if (i // 10) % 2 == 0 else 350)  # beyond the end b: no crossing
        o, g, c = eng.step(frame(t), [p, fidget, outside])
        opened_all += o
        others += g + c
    assert eng.counts() == {"in": 3, "out": 3, "any": 6}
    assert eng.counts_by_direction()["in"] == {"a_to_b": 3, "b_to_a": 3}
    assert others == []  # crossings are instant: never ongoing, never closed
    assert all(o.instant and o.kind == "line" and o.track_id == 1 for o in opened_all)
    ins = [o for o in opened_all if o.rule == "in"]
    assert [o.detail["crossing"] for o in ins] == ["a_to_b"] * 3
    assert [o.detail["count"] for o in ins] == [1, 2, 3]
    assert keys(ins) == ["in:track 1:crossing 1", "in:track 1:crossing 2", "in:track 1:crossing 3"]
    assert ins[0].detail["direction"]["heading"] == "down"  # towards the camera
    assert {o.detail["crossing"] for o in opened_all if o.rule == "out"} == {"b_to_a"}
    assert len(set(keys(opened_all))) == len(opened_all) == 12


def test_line_sides_a_and_b_as_documented():
    across = parse_rules([{"name": "x", "type": "line", **ACROSS}])[0]
    assert isinstance(across, LineRule)
    assert across.side_of((0.5, 0.2)) == "A" and across.side_of((0.5, 0.8)) == "B"  # A above
    down = parse_rules([{"name": "y", "type": "line", "a": [0.5, 0.1], "b": [0.5, 0.9]}])[0]
    assert down.side_of((0.8, 0.5)) == "A" and down.side_of((0.2, 0.5)) == "B"  # A on the right
    # ... and the engine agrees: right-to-left across the top-to-bottom line is a_to_b.
    eng = RuleEngine([{"name": "r2l", "type": "line", "a": [0.5, 0.1], "b": [0.5, 0.9], "direction": "a_to_b"}])
    walker = obj(4)
    for i, x in enumerate([700, 600, 400, 300, 400, 600, 700]):
        o, _, _ = eng.step(frame(float(i)), [move(walker, float(i), x, 250)])
        if x == 400 and i == 2:
            assert [occ.detail["crossing"] for occ in o] == ["a_to_b"]
    assert eng.counts() == {"r2l": 1}


def test_line_going_round_the_end_does_not_count_but_a_crossing_before_confirmation_does():
    eng = RuleEngine([{"name": "gate", "type": "line", **ACROSS}])
    rounder = obj(1)
    for i, (x, y) in enumerate([(500, 150), (950, 150), (950, 350), (500, 350)]):
        eng.step(frame(float(i)), [move(rounder, float(i), x, y)])
    assert eng.counts() == {"gate": 0}
    late = obj(2)  # crossed while the tracker was still confirming it: its path shows it
    for t, y in ((2.0, 150), (2.5, 200), (3.0, 320)):
        move(late, t, 400, y)
    o, _, _ = eng.step(frame(3.0), [move(rounder, 3.0, 500, 350), late])
    assert keys(o) == ["gate:track 2:crossing 1"] and o[0].detail["crossing"] == "a_to_b"
    o, _, _ = eng.step(frame(3.5), [move(rounder, 3.5, 500, 350), move(late, 3.5, 400, 340)])
    assert o == [] and eng.counts() == {"gate": 1}


# --- loitering ------------------------------------------------------------------------------


def test_loitering_fires_after_dwell_s_for_people_only_and_inside_its_polygon():
    eng = RuleEngine([
        {"name": "atm", "type": "loiter"},  # whole picture, person, 30 s
        {"name": "door", "type": "loiter", "polygon": LEFT_HALF, "dwell_s": 10},
    ])
    lurker, car, passer = obj(1), obj(2, "car"), obj(3)
    first = {}
    rng = np.random.default_rng(0)
    for i in range(0, 41):
        t = float(i)
        move(lurker, t, 700 + rng.uniform(-60, 60), 300 + rng.uniform(-30, 30))  # right half, wandering
        move(car, t, 200, 400)
        move(passer, t, 100 + 20 * t, 450)  # left half until x = 500 at t = 20
        opened, _, _ = eng.step(frame(t), [lurker, car, passer])
        for o in opened:
            first.setdefault(o.key, t)
    assert first == {"atm:track 1": 30.0, "atm:track 3": 30.0, "door:track 3": 10.0}
    assert not any(k.endswith("track 2") for k in first)  # the car does not loiter


# --- crowd ----------------------------------------------------------------------------------


def test_crowd_fires_above_max_count_after_min_duration_and_closes_when_it_thins():
    eng = RuleEngine([{"name": "square", "type": "crowd", "polygon": LEFT_HALF, "max_count": 3}])
    people = [obj(i) for i in range(1, 6)]
    bystander, car = obj(9), obj(10, "car")
    log = {}
    for i in range(0, 21):
        t = i / 2
        inside = 3 + (t >= 1) + (t >= 5) - 2 * (t >= 8)  # 3, 4 from t=1, 5 from t=5, 3 from t=8
        tracks = [move(p, t, 100 + 60 * k, 300) for k, p in enumerate(people[:inside])]
        tracks += [move(bystander, t, 800, 300), move(car, t, 150, 450)]
        log[t] = eng.step(frame(t), tracks)
    opened = [(t, o) for t, (os_, _, _) in log.items() for o in os_]
    assert [(t, o.key) for t, o in opened] == [(4.0, "square:crowd")]  # 4 from t=1, held 3 s
    o = opened[0][1]
    assert o.kind == "crowd" and o.label == "person" and o.detail["count"] == 4 and o.detail["since"] == 1.0
    assert o.box == (80.0, 220.0, 300.0, 300.0)  # around the four counted people
    assert (log[6.0][1][0].detail["count"], log[6.0][1][0].detail["peak"]) == (5, 5)
    assert log[7.5][1][0].detail["count"] == 5
    closed = [(t, c) for t, (_, _, cs) in log.items() for c in cs]
    assert [(t, c.key) for t, c in closed] == [(8.0, "square:crowd")]
    assert closed[0][1].detail["peak"] == 5 and closed[0][1].detail["end"] == "cleared"


# --- stopped vehicle ------------------------------------------------------------------------


def test_stopped_vehicle_fires_for_a_parked_car_not_a_moving_car_nor_a_standing_person():
    eng = RuleEngine([{"name": "no stopping", "type": "stopped", "severity": "warning"}])
    parked, crawler, pedestrian = obj(1, "car"), obj(2, "truck"), obj(3, "person")
    rng = np.random.default_rng(1)
    log = {}
    for i in range(0, 51):
        t = float(i)
        x = 600 + rng.uniform(-2, 2) if t < 40 else 600 + 40 * (t - 39)  # drives off at t = 40
        move(parked, t, x, 400 + rng.uniform(-2, 2))
        move(crawler, t, 50 + 18 * t, 200)  # slow but steady: 18 px/s
        move(pedestrian, t, 300, 300)
        log[t] = eng.step(frame(t), [parked, crawler, pedestrian])
    opened = [(t, o) for t, (os_, _, _) in log.items() for o in os_]
    assert [(t, o.key) for t, o in opened] == [(30.0, "no stopping:track 1")]
    o = opened[0][1]
    assert o.kind == "stopped" and o.label == "car" and o.detail["severity"] == "warning"
    assert o.detail["stopped_s"] == 30.0 and o.detail["direction"] is None  # standing: no heading
    closed = [(t, c.key) for t, (_, _, cs) in log.items() for c in cs]
    assert closed == [(40.0, "no stopping:track 1")]  # moved 40 px > 0.02 * 1118 px


# --- tamper ---------------------------------------------------------------------------------


def test_tamper_kinds_map_to_occurrences():
    eng = RuleEngine([
        {"name": "lens", "type": "tamper", "kinds": ["covered", "moved"], "min_duration_s": 2},
        {"name": "any tamper", "type": "tamper", "severity": "warning"},
    ])
    opened, ongoing, closed = eng.step(frame(0.0, tamper={"covered", "blinded"}), [])
    assert sorted(keys(opened)) == ["any tamper:blinded", "any tamper:covered"]
    assert eng.step(frame(1.0, tamper={"covered", "blinded"}), [])[0] == []
    opened, ongoing, _ = eng.step(frame(2.0, tamper={"covered", "blinded"}), [])
    assert keys(opened) == ["lens:covered"] and sorted(keys(ongoing)) == ["any tamper:blinded", "any tamper:covered"]
    assert opened[0].kind == "tamper" and opened[0].detail["tamper"] == "covered" and opened[0].track_id is None
    opened, ongoing, closed = eng.step(frame(3.0, tamper={"blinded", "video_lost"}), [])
    assert keys(opened) == ["any tamper:video_lost"] and keys(ongoing) == ["any tamper:blinded"]
    assert sorted(keys(closed)) == ["any tamper:covered", "lens:covered"]


# --- schedules (R8) -------------------------------------------------------------------------


def test_schedule_off_suppresses_and_closes_what_was_open():
    nights = {"default": "off", "rules": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                           "from": "22:00", "to": "06:00", "mode": "on"}]}
    eng = RuleEngine([
        {"name": "night yard", "type": "zone", "polygon": RIGHT_HALF, "schedule": nights},
        {"name": "day count", "type": "line", **ACROSS,
         "schedule": {"rules": [{"from": "22:00", "to": "06:00", "mode": "off"}]}},
    ])
    start = datetime(2026, 1, 5, 21, 59, 50, tzinfo=KYIV)  # a Monday evening
    guard, walker = obj(1), obj(2)
    log = {}
    for i in range(0, 41):
        t = float(i)
        local = start + timedelta(seconds=t)
        move(guard, t, 800, 300)
        move(walker, t, 300, 150 if i % 4 < 2 else 350)  # crosses the line every 2 s
        log[local.strftime("%H:%M:%S")] = eng.step(frame(t, local), [guard, walker])
    zone_opened = [k for k, (o, _, _) in log.items() for occ in o if occ.rule == "night yard"]
    assert zone_opened == ["22:00:00"]  # armed at 22:00; the guard had been standing there since 21:59:50
    crossings = sorted({k for k, (o, _, _) in log.items() for occ in o if occ.rule == "day count"})
    assert crossings and max(crossings) < "22:00:00"  # the line is off at night
    counted = eng.counts()["day count"]
    assert counted == len(crossings) == 4  # at 21:59:52, :54, :56, :58
    # Morning: the night rule disarms at 06:00 and closes its open occurrence.
    morning = datetime(2026, 1, 6, 5, 59, 58, tzinfo=KYIV)
    for i in range(41, 46):
        t = float(i)
        local = morning + timedelta(seconds=i - 41)
        # The walker crossed to side B while the line was off: re-armed at 06:00, that is no crossing.
        o, g, c = eng.step(frame(t, local), [move(guard, t, 800, 300), move(walker, t, 300, 350)])
        if local.strftime("%H:%M:%S") < "06:00:00":
            assert keys(g) == ["night yard:track 1"] and not c
        elif local.strftime("%H:%M:%S") == "06:00:00":
            assert keys(c) == ["night yard:track 1"] and c[0].detail["end"] == "disarmed"
        else:
            assert (o, g, c) == ([], [], [])
    assert eng.counts()["day count"] == 4


def test_disabled_rule_produces_nothing():
    eng = RuleEngine([{"name": "off", "type": "zone", "polygon": RIGHT_HALF, "enabled": False, "min_dwell_s": 0}])
    p = obj(1)
    assert all(eng.step(frame(float(t)), [move(p, float(t), 800, 300)]) == ([], [], []) for t in range(5))


# --- definitions and validation -------------------------------------------------------------

EXAMPLES = [
    {"name": "Courtyard", "type": "zone", "zone": "courtyard", "polygon": [[0.5, 0.4], [0.95, 0.4], [0.95, 0.95], [0.5, 0.95]],
     "classes": ["person"], "min_dwell_s": 2,
     "schedule": {"default": "off", "rules": [{"days": ["mon", "tue"], "from": "22:00", "to": "06:00", "mode": "on"}]}},
    {"name": "Entrance", "type": "line", "a": [0.1, 0.6], "b": [0.9, 0.6], "direction": "a_to_b", "severity": "info"},
    {"name": "ATM", "type": "loiter", "polygon": [[0, 0], [0.3, 0], [0.3, 1]], "dwell_s": 60},
    {"name": "Square", "type": "crowd", "max_count": 20},
    {"name": "Bus stop", "type": "stopped", "still_s": 120, "classes": "car, truck"},
    {"name": "Lens", "type": "tamper", "kinds": ["covered", "moved"], "enabled": False},
]


def test_rules_round_trip_with_defaults_written_out():
    rules = parse_rules(EXAMPLES)
    assert parse_rules(rules_to_json(rules)) == rules
    js = {r["name"]: r for r in rules_to_json(rules)}
    assert js["Square"]["classes"] == ["person"] and js["Square"]["min_duration_s"] == 3.0
    assert js["Square"]["schedule"] == {"default": "on", "rules": []}
    assert js["Bus stop"]["classes"] == ["car", "truck"] and js["Bus stop"]["max_move"] == 0.02
    assert js["Entrance"]["classes"] == ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
    assert js["Entrance"]["hysteresis"] == 0.01 and js["Courtyard"]["zone"] == "courtyard"
    assert js["Lens"]["enabled"] is False and "classes" not in js["Lens"] and js["Lens"]["min_duration_s"] == 0
    assert js["ATM"]["polygon"] == [[0.0, 0.0], [0.3, 0.0], [0.3, 1.0]] and "polygon" not in js["Square"]
    assert isinstance(parse_rules([{"name": "s", "type": "stopped"}])[0], StoppedRule)
    assert parse_rules([{"name": "s", "type": "stopped"}])[0].classes == ("car", "bus", "truck", "motorcycle")
    nights = rules[0].schedule
    assert nights.mode_at(datetime(2026, 1, 6, 3, 0, tzinfo=KYIV)) == "on"  # Mon night, Tue morning
    assert nights.mode_at(datetime(2026, 1, 7, 23, 0, tzinfo=KYIV)) == "off"  # a Wednesday


ZONE = {"name": "yard", "type": "zone", "polygon": RIGHT_HALF}


@pytest.mark.parametrize("rules, message", [
    ([{"name": "yard", "type": "zone"}], "rule 'yard': polygon: is required"),
    ([{**ZONE, "polygon": [[0.1, 0.1], [0.2, 0.2]]}], "rule 'yard': polygon: needs at least 3 points"),
    ([{**ZONE, "polygon": [[0.1, 0.1], [1.5, 0.2], [0.3, 0.9]]}],
     "rule 'yard': polygon: point 2 [1.5, 0.2] is outside the picture"),
    ([{**ZONE, "polygon": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}], "rule 'yard': polygon: has no area"),
    ([{**ZONE, "classes": ["person", "cat"]}], "rule 'yard': classes: unknown class 'cat'"),
    ([ZONE, {**ZONE, "name": "Yard "}], "rule 'Yard': name: duplicate rule name"),
    ([ZONE, {"type": "zone", "polygon": RIGHT_HALF}], "rule #2: name: is required"),
    ([{**ZONE, "type": "fence"}], "rule 'yard': type: 'fence' is not one of zone, line"),
    ([{**ZONE, "min_dwel_s": 3}], "rule 'yard': min_dwel_s: unknown field for a zone rule"),
    ([{**ZONE, "min_dwell_s": -1}], "rule 'yard': min_dwell_s: must be at least 0"),
    ([{**ZONE, "enabled": "yes"}], "rule 'yard': enabled: must be true or false"),
    ([{**ZONE, "severity": "panic"}], "rule 'yard': severity: 'panic' is not one of info, warning, alarm"),
    ([{**ZONE, "schedule": {"default": "continuous"}}], "rule 'yard': schedule: mode 'continuous' is not one of on, off"),
    ([{**ZONE, "schedule": {"rules": [{"days": ["funday"], "mode": "on"}]}}], "rule 'yard': schedule: rule 1: unknown day"),
    ([{"name": "sq", "type": "crowd"}], "rule 'sq': max_count: is required"),
    ([{"name": "sq", "type": "crowd", "max_count": 2.5}], "rule 'sq': max_count: must be a whole number"),
    ([{"name": "gate", "type": "line", "a": [0.1, 0.5]}], "rule 'gate': b: is required"),
    ([{"name": "gate", "type": "line", "a": [0.1, 0.5], "b": [0.1, 0.5]}], "rule 'gate': b: is the same point as a"),
    ([{"name": "gate", "type": "line", **ACROSS, "direction": "in"}], "rule 'gate': direction: 'in' is not one of"),
    ([{"name": "gate", "type": "line", "a": [0.1, -0.5], "b": [0.9, 0.5]}], "rule 'gate': a: [0.1, -0.5] is outside"),
    ([{"name": "lens", "type": "tamper", "classes": ["person"]}], "rule 'lens': classes: unknown field for a tamper"),
    ([{"name": "lens", "type": "tamper", "kinds": ["smashed"]}], "rule 'lens': kinds: unknown tamper kind 'smashed'"),
    ([{"name": "park", "type": "stopped", "max_move": 0}], "rule 'park': max_move: must be more than 0"),
])
def test_validation_errors_name_the_rule_and_the_field(rules, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rules(rules)
    with pytest.raises(RuleError, match=re.escape(message)):
        RuleEngine(rules)


def test_engine_takes_parsed_rules_and_refuses_duplicates_among_them():
    rules = parse_rules([ZONE])
    assert RuleEngine(rules).rules == rules
    with pytest.raises(RuleError, match="duplicate"):
        RuleEngine(rules + rules)


# --- geometry helpers -----------------------------------------------------------------------


def test_point_in_polygon_is_vectorised_and_handles_concave_shapes():
    ell = [(0, 0), (10, 0), (10, 3), (3, 3), (3, 10), (0, 10)]  # an L
    pts = np.array([(1, 1), (8, 1), (8, 8), (1, 8), (5, 5), (-1, 1)])
    assert point_in_polygon(pts, ell).tolist() == [True, True, False, True, False, False]
    assert point_in_polygon((1, 1), ell) is True and point_in_polygon((8, 8), ell) is False


def test_segments_cross_single_and_vectorised():
    assert segments_cross((0, 0), (2, 2), (0, 2), (2, 0)) is True
    assert segments_cross((0, 0), (1, 1), (2, 0), (3, -1)) is False
    assert segments_cross((0, 0), (2, 0), (1, 0), (1, 5)) is True  # touching counts
    p1 = np.array([(0, -1), (5, -1), (0, 1)])
    p2 = np.array([(0, 1), (5, 1), (0, 2)])
    assert segments_cross(p1, p2, (-1, 0), (1, 0)).tolist() == [True, False, False]
