"""Lockdown's rules and bulk viewing (pure): what is shut for whom, the two-person rule,
the viewing window."""

from __future__ import annotations

import pytest

from varta.access.bulkview import BulkWatch, validate_limit
from varta.access.policy import CONSOLE, Principal
from varta.lockdown import rules
from varta.lockdown.rules import LockdownError, LockState

SENSITIVE = LockState(1, "sensitive", "air-raid alert", "console", 0, "root", None)
ALL = LockState(2, "all", "attack on the grid", "web", 0, "op", "mayor")
REMOTE = Principal("pol", "Police Officer", "police", access="remote")
ZONE = Principal("op", "Operator", "department", access="direct", restricted=True)
TOKEN_IN_ZONE = Principal("op", "Operator", "department", access="direct", restricted=True,
                          scopes=frozenset({"live.view"}))


def test_what_a_lockdown_shuts_and_for_whom():
    assert rules.refusal(None, REMOTE, "live.view", "sensitive") is None
    assert "restricted-zone" in rules.refusal(SENSITIVE, REMOTE, "live.view", "sensitive")
    assert rules.refusal(SENSITIVE, REMOTE, "live.view", "normal") is None  # out of scope
    assert rules.refusal(ALL, REMOTE, "live.view", "normal") is not None
    assert rules.refusal(SENSITIVE, ZONE, "live.view", "sensitive") is None
    assert "token" in rules.refusal(SENSITIVE, TOKEN_IN_ZONE, "live.view", "sensitive")
    assert rules.refusal(SENSITIVE, Principal("root", "", CONSOLE), "archive.export", "sensitive") is None
    assert rules.refusal(SENSITIVE, REMOTE, "camera.list", "sensitive") is None  # not video
    assert rules.refusal(SENSITIVE, REMOTE, "event.picture", "sensitive") is not None
    assert rules.picture_withheld(SENSITIVE, "sensitive") and not rules.picture_withheld(SENSITIVE, "normal")


def test_moves_are_checked():
    rules.check_move("on", "sensitive", "air-raid alert", None)
    with pytest.raises(LockdownError, match="scope"):
        rules.check_move("on", "most", "air-raid alert", None)
    with pytest.raises(LockdownError, match="reason"):
        rules.check_move("on", "all", "  ", None)
    with pytest.raises(LockdownError, match="already in force"):
        rules.check_move("on", "sensitive", "again please", SENSITIVE)
    rules.check_move("on", "all", "widen it to all", SENSITIVE)  # widening replaces it
    with pytest.raises(LockdownError, match="no lockdown"):
        rules.check_move("off", None, "all clear now", None)


def test_the_two_person_rule():
    exp = 10_000
    assert "second person" in rules.confirm_refusal("op", "pending", exp, "op", 5)
    assert rules.confirm_refusal("op", "pending", exp, "mayor", 5) is None
    assert "expired" in rules.confirm_refusal("op", "pending", exp, "mayor", exp + 1)
    assert "done" in rules.confirm_refusal("op", "done", exp, "mayor", 5)


def test_bulk_viewing_counts_different_cameras_in_the_window():
    w = BulkWatch()
    assert [w.seen("tok", f"c{i}", float(i), 3, 60) for i in range(3)] == [None, None, None]
    assert w.seen("tok", "c0", 3.0, 3, 60) is None  # the same camera again: still three
    assert w.seen("tok", "c3", 4.0, 3, 60) == 4  # the fourth: flagged
    assert w.seen("tok", "c4", 5.0, 3, 60) is None  # once a window
    assert w.seen("other", "c9", 5.0, 3, 60) is None  # per viewer
    assert w.seen("tok", "c5", 200.0, 3, 60) is None  # the window moved on: one camera
    with pytest.raises(ValueError, match="between"):
        validate_limit("bulk_view_cameras", 1)
    with pytest.raises(ValueError, match="unknown limit"):
        validate_limit("bulk_view", 5)
