"""Single sign-on's claim mapping (varta/access/sso.py): pure functions, and the store of
the accounts the identity provider provisions (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from varta.access import credentials, sso
from varta.access.accounts import Accounts

ROLE_MAP = sso.parse_role_map("city-operators=department; city-police=police\ncity-leaders=mayor;"
                              " cn=admins,ou=groups,dc=city=admin")
GROUP_MAP = sso.parse_group_map("police-centre=centre,market; police-north=north; district-north=north")


def test_maps_are_parsed_in_order_and_checked():
    assert ROLE_MAP == (("city-operators", "department"), ("city-police", "police"), ("city-leaders", "mayor"),
                        ("cn=admins,ou=groups,dc=city", "admin"))  # an LDAP group name keeps its '='
    assert GROUP_MAP[0] == ("police-centre", ("centre", "market"))
    assert sso.parse_role_map("") == () and sso.parse_group_map(" ; ") == ()
    with pytest.raises(ValueError, match="not a Varta role"):
        sso.parse_role_map("city-operators=superuser")
    with pytest.raises(ValueError, match="not 'provider group=value'"):
        sso.parse_role_map("city-operators")
    with pytest.raises(ValueError, match="names no camera group"):
        sso.parse_group_map("police-centre= , ")


def test_settings_refuse_a_wrong_map():
    from pydantic import ValidationError

    from varta.config import Settings

    with pytest.raises(ValidationError, match="not a Varta role"):
        Settings(oidc_role_map="city-operators=root")
    s = Settings(oidc_role_map="city-operators=department", oidc_client_secret="hidden-value")
    assert "hidden-value" not in repr(s)


def test_one_role_from_the_groups_and_the_union_of_camera_groups():
    m = sso.map_claims({"groups": ["city-police", "police-centre", "police-north", "other"]}, "groups",
                       ROLE_MAP, GROUP_MAP)
    assert (m.role, m.camera_groups, m.problem) == ("police", ("centre", "market", "north"), "")
    m = sso.map_claims({"groups": ["city-operators"]}, "groups", ROLE_MAP, GROUP_MAP)
    assert (m.role, m.camera_groups) == ("department", ())  # no group entry: the role's default


def test_unknown_groups_and_two_roles_are_refused():
    m = sso.map_claims({"groups": ["finance", "police-centre"]}, "groups", ROLE_MAP, GROUP_MAP)
    assert m.role is None and "map to no Varta role" in m.problem and "finance" in m.problem
    m = sso.map_claims({"sub": "x"}, "groups", ROLE_MAP, GROUP_MAP)
    assert m.role is None and "no 'groups' claim" in m.problem
    m = sso.map_claims({"groups": ["city-police", "city-operators"]}, "groups", ROLE_MAP, GROUP_MAP)
    assert m.role is None and "more than one Varta role (department, police)" in m.problem


def test_claim_paths_strings_and_nested_roles():
    claims = {"realm_access": {"roles": ["city-leaders", 7, ""]}, "roles": "city-operators"}
    assert sso.claim_values(claims, "realm_access.roles") == ("city-leaders",)  # Keycloak's realm roles
    assert sso.claim_values(claims, "roles") == ("city-operators",)
    assert sso.claim_values(claims, "realm_access.missing") == ()
    assert sso.map_claims(claims, "realm_access.roles", ROLE_MAP, GROUP_MAP).role == "mayor"


def test_second_factor_only_from_listed_amr_or_acr():
    amr, acr = sso.words("mfa otp, hwk"), sso.words("urn:city:loa:high")
    assert sso.second_factor({"amr": ["pwd", "otp"]}, amr, acr) == "amr otp"
    assert sso.second_factor({"amr": ["pwd"]}, amr, acr) == ""
    assert sso.second_factor({"amr": "mfa"}, amr, acr) == "amr mfa"
    assert sso.second_factor({"acr": "urn:city:loa:high"}, amr, acr) == "acr urn:city:loa:high"
    assert sso.second_factor({"acr": "1", "amr": [{"x": 1}]}, amr, acr) == ""
    assert sso.second_factor({}, amr, frozenset()) == ""


def test_login_and_full_name_from_the_claims():
    assert sso.login_for({"preferred_username": "O.Shevchenko@city.gov.ua"}, "preferred_username") == "o.shevchenko"
    assert sso.login_for({"preferred_username": "Petro Koval"}, "preferred_username") == "petro.koval"
    # Cyrillic user names and none at all: a stable login from the subject.
    a = sso.login_for({"preferred_username": "олена", "sub": "abc"}, "preferred_username")
    assert a.startswith("sso-") and a == sso.login_for({"sub": "abc"}, "preferred_username")
    assert sso.login_for({"email": "ivan.p@city.gov.ua", "sub": "s"}, "upn") == "ivan.p"
    assert sso.full_name_for({"name": "Шевченко  Олена Петрівна"}, "x") == "Шевченко Олена Петрівна"
    assert sso.full_name_for({"family_name": "Коваль", "given_name": "Петро"}, "x") == "Коваль Петро"
    assert sso.full_name_for({"name": "Petro"}, "petro") == "Petro (SSO)"


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_provisioned_accounts_follow_the_provider_and_never_take_a_local_login(engine):
    accounts = Accounts(engine)
    local, _ = accounts.add("olena", "Local Olena Admin", "admin", password="break-glass-pass-1")
    store = sso.SsoAccounts(engine, accounts)
    iss = "https://id.city.example/realms/city"
    assert store.find(iss, "sub-1") is None
    acc = store.provision(iss, "sub-1", "olena", "Шевченко Олена Петрівна", "department", ["north"])
    # The local break-glass account keeps its login; the person from the provider gets another.
    assert acc.login == "olena-sso" and acc.id != local.id and not acc.must_change_password
    assert store.find(iss, "sub-1").id == acc.id and store.identity(acc.id) == (iss, "sub-1")
    assert store.find(iss, "sub-2") is None and store.find("https://other", "sub-1") is None
    # No usable local password.
    assert accounts.check_password("olena-sso", sso.NO_PASSWORD) is None
    assert not credentials.verify_password(sso.NO_PASSWORD, "")
    # Role and camera groups follow the claims; the change is reported.
    same, changes = store.follow(acc, acc.full_name, "department", ["north"])
    assert changes == [] and same.camera_groups == ("north",)
    moved, changes = store.follow(acc, "Шевченко Олена", "police", ["centre", "market"])
    assert moved.role == "police" and moved.camera_groups == ("centre", "market") and moved.full_name == "Шевченко Олена"
    assert changes == ["full name", "role department → police", "camera groups [north] → [centre, market]"]
    # A second person wanting the same login: login-<hash>.
    other = store.provision(iss, "sub-2", "olena", "Інша Олена Іванівна", "department", [])
    assert other.login.startswith("olena-") and other.login not in ("olena", "olena-sso")


def test_single_sign_on_is_off_without_an_issuer(tmp_path):
    from fastapi.testclient import TestClient

    from varta.config import Settings
    from varta.db.engine import open_database
    from varta.web.app import create_app

    settings = Settings(home=tmp_path)
    engine = open_database(settings.db_url)
    try:
        with TestClient(create_app(settings, engine)) as client:
            assert client.get("/api/auth/oidc").json() == {"enabled": False, "label": ""}
            assert client.get("/api/auth/oidc/start", follow_redirects=False).status_code == 404
            assert client.get("/api/auth/oidc/callback", params={"code": "x", "state": "y"}).status_code == 404
    finally:
        engine.dispose()
