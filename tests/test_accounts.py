"""The account store's own rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from varta.access.accounts import AccountError, Accounts


def test_the_last_active_administrator_cannot_be_disabled_or_demoted(engine):
    accounts = Accounts(engine)
    accounts.add("root", "Адмін Перший", "admin", password="Wrench-Lantern-7")
    with pytest.raises(AccountError, match="last active administrator"):
        accounts.set_active("root", False)
    with pytest.raises(AccountError, match="last active administrator"):
        accounts.update("root", role="department")
    accounts.add("root2", "Адмін Другий", "admin", password="Wrench-Lantern-8")
    assert not accounts.set_active("root", False).active  # another one remains
    with pytest.raises(AccountError, match="last active administrator"):
        accounts.update("root2", role="police")


def test_resetting_the_second_factor_ends_the_sessions(engine):
    from varta.access.sessions import FULL, Sessions

    accounts = Accounts(engine)
    acc, _ = accounts.add("olena", "Шевченко Олена", "department", password="Wrench-Lantern-7")
    accounts.set_totp("olena", "JBSWY3DPEHPK3PXP", 1)
    token, _ = Sessions(engine, 60, 600).create(acc.id, FULL, "remote", False, "203.0.113.9")
    accounts.reset_totp("olena")
    assert not accounts.get("olena").totp_enabled
    assert Sessions(engine, 60, 600).resolve(token)[0] is None


def test_a_totp_code_of_the_wrong_length_or_a_broken_secret_is_simply_wrong():
    from varta.access import credentials

    secret = credentials.new_totp_secret()
    assert credentials.check_totp(secret, "123456789012345", 1_700_000_000, None) is None
    assert credentials.check_totp("0189!!notbase32", "123456", 1_700_000_000, None) is None
