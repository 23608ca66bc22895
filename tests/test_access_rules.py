"""The access rules alone (no I/O): the order's matrix, direct/remote, lockout, TOTP."""

from __future__ import annotations

import pytest

from varta.access import credentials
from varta.access.network import Site
from varta.access.policy import ACTIONS, CONSOLE, DIRECT, REMOTE, ROLES, Policy, Principal, validate_restriction


def who(role, access=REMOTE, restricted=False, groups=("centre", "c"), scopes=None):
    return Principal(login=f"u-{role}", full_name="Test User", role=role, access=access,
                     restricted=restricted and access == DIRECT, camera_groups=tuple(groups), scopes=scopes)


# The order, restated from requirements.md independently of the code (A4.3, A4.4, A4.5, C4).
LEADERS = {"mayor", "first_deputy", "deputy_mayor"}
REMOTE_OK = LEADERS | {"department", "police"}
DIRECT_OK = {"department", "contractor"}


def test_the_orders_matrix():
    pol = Policy()
    for role in ROLES:
        # Remote sessions (A4.3); the contractor never (C4).
        assert bool(pol.decide(who(role), "session.remote")) == (role in REMOTE_OK), role
        assert bool(pol.decide(who(role, DIRECT), "session.direct")) == (role in DIRECT_OK | {"admin"}), role
        # Live video: remote for leaders, department, police; on site for department and contractor.
        assert bool(pol.decide(who(role), "live.view", "centre")) == (role in REMOTE_OK), role
        assert bool(pol.decide(who(role, DIRECT), "live.view", "centre")) == (role in DIRECT_OK), role
        # The archive: department and contractor only (A4.4), only in the restricted zone (A4.5).
        for action in ("archive.play", "archive.export"):
            assert bool(pol.decide(who(role, DIRECT, restricted=True), action, "c")) == (role in DIRECT_OK), role
            assert not pol.decide(who(role, DIRECT, restricted=False), action, "c"), role
            assert not pol.decide(who(role, REMOTE), action, "c"), role
        # Administration sees no video.
    assert not pol.decide(who("admin", DIRECT, restricted=True), "live.view", "c")
    assert not pol.decide(who("admin", DIRECT, restricted=True), "archive.play", "c")
    assert pol.decide(who("admin", DIRECT), "user.manage")
    assert not pol.decide(who("admin", REMOTE), "user.manage")


def test_refusals_say_why_with_the_clause():
    pol = Policy()
    d = pol.decide(who("department", DIRECT, restricted=False), "archive.play", "c")
    assert not d and "restricted-zone" in d.reason and "A4.5" in d.reason
    d = pol.decide(who("mayor", DIRECT, restricted=True), "archive.play", "c")
    assert not d and "A4.4" in d.reason
    d = pol.decide(who("contractor", REMOTE), "live.view", "c")
    assert not d and "C4" in d.reason


def test_police_see_only_their_camera_groups():
    pol = Policy()
    assert pol.decide(who("police", groups=["centre"]), "live.view", "centre")
    assert not pol.decide(who("police", groups=["centre"]), "live.view", "north")
    assert not pol.decide(who("police", groups=()), "live.view", "centre")  # none assigned: nothing
    assert pol.decide(who("mayor", groups=()), "live.view", "north")  # others: every camera unless limited
    assert not pol.decide(who("mayor", groups=["centre"]), "live.view", "north")


def test_the_city_may_tighten_but_never_loosen():
    pol = Policy(frozenset({("police", "live.view")}))
    assert not pol.decide(who("police", groups=["c"]), "live.view", "c")
    assert pol.decide(who("mayor"), "live.view", "c")
    validate_restriction("department", "archive.export")  # fine: the order grants it
    with pytest.raises(ValueError, match="nothing to withdraw"):
        validate_restriction("police", "archive.play")  # the order never granted it
    with pytest.raises(ValueError, match="unknown role"):
        validate_restriction("janitor", "live.view")
    with pytest.raises(ValueError, match="lock everyone out"):
        validate_restriction("admin", "session.direct")
    # Whatever the restrictions, nothing outside the order's matrix becomes allowed.
    everything = Policy(frozenset())
    for role in ROLES:
        for access in (DIRECT, REMOTE):
            for restricted in (False, True):
                p = who(role, access, restricted, groups=["c"])
                assert set(pol.allowed_actions(p)) <= set(everything.allowed_actions(p))


def test_api_tokens_are_limited_to_their_scopes_and_the_role():
    pol = Policy()
    token = who("police", REMOTE, groups=["c"], scopes=frozenset({"camera.list"}))
    assert pol.decide(token, "camera.list", "c")
    assert not pol.decide(token, "live.view", "c")
    overreach = who("police", REMOTE, groups=["c"], scopes=frozenset({"archive.play"}))
    assert not pol.decide(overreach, "archive.play", "c")


def test_console_is_direct_and_everything_is_known():
    assert Policy().decide(Principal("os:root", "root", CONSOLE, DIRECT, True), "archive.export")
    assert not Policy().decide(who("department", DIRECT, True), "no.such.action")
    assert "live.view" in ACTIONS and "archive.play" in ACTIONS


def test_direct_or_remote_by_source_address():
    site = Site.from_settings(["10.20.0.0/24", "127.0.0.1"], ["10.20.0.10", "10.20.0.11/32"], ["10.99.0.1"])
    assert site.classify("10.20.0.10") == (DIRECT, True)
    assert site.classify("10.20.0.50") == (DIRECT, False)
    assert site.classify("::ffff:10.20.0.50") == (DIRECT, False)
    assert site.classify("203.0.113.7") == (REMOTE, False)
    assert site.classify("not-an-ip") == (REMOTE, False)
    # X-Forwarded-For is believed only from a trusted proxy, and its forgeable left part is not.
    assert site.client_address("203.0.113.7", "10.20.0.10") == "203.0.113.7"
    assert site.client_address("10.99.0.1", "10.20.0.10") == "10.20.0.10"
    assert site.client_address("10.99.0.1", "10.20.0.10, 198.51.100.2") == "198.51.100.2"
    with pytest.raises(ValueError, match="not inside the on-site networks"):
        Site.from_settings(["10.20.0.0/24"], ["10.30.0.5"])
    with pytest.raises(ValueError, match="not an IP address"):
        Site.from_settings(["dispatch-room"], [])


def test_a_remote_entrance_makes_any_arrival_remote_and_never_direct():
    site = Site.from_settings(["10.20.0.0/24", "127.0.0.1"], ["10.20.0.10"], [], ["172.16.5.1"])
    assert site.classify("10.20.0.10", "10.20.0.1") == (DIRECT, True)      # at the dispatch room's address
    assert site.classify("10.20.0.10", "172.16.5.1") == (REMOTE, False)    # the VPN-facing address
    assert site.classify("203.0.113.7", "10.20.0.1") == (REMOTE, False)    # never the other way round


def test_progressive_lockout():
    assert [credentials.lock_seconds(n) for n in range(1, 9)] == [0, 0, 0, 0, 30, 60, 120, 240]
    assert credentials.lock_seconds(40) == credentials.LOCKOUT_MAX_S


def test_totp_codes_are_good_once_and_drift_tolerant():
    secret = credentials.new_totp_secret()
    t = 1_795_000_000.0
    code = credentials.totp_code(secret, t)
    step = credentials.check_totp(secret, code, t, None)
    assert step == int(t) // 30
    assert credentials.check_totp(secret, code, t, last_step=step) is None  # replay
    assert credentials.check_totp(secret, code, t + 30, None) == step  # one step of drift
    assert credentials.check_totp(secret, code, t + 120, None) is None
    assert credentials.check_totp(secret, "12345x", t, None) is None


def test_passwords_are_argon2id_and_generated_ones_are_strong():
    h = credentials.hash_password("Wrench-Lantern-7")
    assert h.startswith("$argon2id$")
    assert credentials.verify_password(h, "Wrench-Lantern-7")
    assert not credentials.verify_password(h, "wrench-lantern-7")
    assert not credentials.verify_password(None, "anything")
    pw = credentials.generate_password()
    assert credentials.password_problem(pw) is None and len(pw.replace("-", "")) == 16
    assert credentials.password_problem("short") is not None
    assert credentials.password_problem("ivanenko-2026-pass", "ivanenko") is not None
