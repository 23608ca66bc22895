"""Single sign-on with OpenID Connect, end to end, against a real OpenID provider.

The provider is panva's ``oidc-provider`` (OpenID Certified; tests/oidc, installed by
``make test`` with ``npm ci``) run by Node.js on loopback; Varta is a real ``varta serve``.
In headless Chromium a person clicks the sign-in button, signs in on the provider's own
page and lands in the console with the role and camera groups the provider's groups map
to; someone whose groups map to no role is refused with a clear message; both are in the
access journal. Over HTTP from a remote address: a provider that asserts a second factor
gives a full remote session, one that does not leads to Varta's own TOTP (enrolment, then
the code at each sign-in).
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from urllib.parse import urljoin

import httpx
import pyotp
import pytest

from conftest import ROOT, VartaHome, free_port, login_client, stop_gently
from test_console_e2e import browser, shot  # noqa: F401 - the Chromium fixture and screenshots
from test_console_language_e2e import _VISIBLE, foreign_words

pytestmark = [pytest.mark.e2e]

OIDC_DIR = ROOT / "tests" / "oidc"
REMOTE = "127.0.0.3"
SECRET = secrets.token_urlsafe(24)
PEOPLE = {
    # A department operator of the northern district (on site, in Chromium).
    "olena": {"name": "Шевченко Олена Петрівна", "groups": ["city-operators", "district-north"], "amr": ["pwd"]},
    # Nobody Varta knows: finance.
    "ivan": {"name": "Іваненко Іван Іванович", "groups": ["finance"], "amr": ["pwd"]},
    # A police officer of the centre, from outside; the provider checked a one-time code.
    "petro": {"name": "Коваль Петро Андрійович", "groups": ["city-police", "police-centre"], "amr": ["pwd", "otp"]},
    # The mayor, from outside, with a password only at the provider.
    "roman": {"name": "Романенко Роман Олегович", "groups": ["city-leaders"], "amr": ["pwd"]},
}
for _p in PEOPLE.values():
    _p["password"] = f"idp-{secrets.token_hex(6)}"


def _node_modules() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        pytest.skip("Node.js is not installed (apt-get install nodejs npm): the test OpenID provider needs it")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        if not npm:
            pytest.skip("npm is not installed: cannot install the test OpenID provider (make test does)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, capture_output=True,
                       timeout=300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A running OpenID provider and a Varta that signs in through it."""
    _node_modules()
    home = tmp_path_factory.mktemp("oidc")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    v = VartaHome(home / "varta", onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32",
                  oidc_issuer=issuer, oidc_client_id="varta", oidc_client_secret=SECRET,
                  oidc_scopes="openid profile email groups", oidc_role_claim="groups",
                  oidc_role_map="city-operators=department; city-police=police; city-leaders=mayor",
                  oidc_group_map="district-north=north; police-centre=centre",
                  oidc_button_label="Міський портал")
    config = {"port": port, "client_id": "varta", "client_secret": SECRET,
              "redirect_uris": [f"{v.base_url}/api/auth/oidc/callback"], "people": PEOPLE}
    log = open(home / "provider.log", "wb")
    idp = subprocess.Popen([shutil.which("node"), "provider.js"], cwd=OIDC_DIR, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if idp.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the OpenID provider did not start:\n{(home / 'provider.log').read_text()}")
            time.sleep(0.2)
        v.start()
        for cam, group in (("mel-n1", "north"), ("mel-n2", "north"), ("mel-c1", "centre")):
            v.run("camera", "add", cam, "--url", f"rtsp://127.0.0.1:9/{cam}", "--group", group, "--schedule", "off")
        v.issuer = issuer
        yield v
    finally:
        v.stop()
        stop_gently(idp, 10)
        log.close()
        if v._engine is not None:
            v._engine.dispose()


def _cookies(resp: httpx.Response) -> dict:
    out = {}
    for line in resp.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def sso_http(v: VartaHome, login: str, local_address: str | None = None):
    """The whole sign-in as a browser does it, over HTTP: Varta → the provider's login page →
    back to Varta's callback. Returns (where the console is sent, Varta's cookies).

    Varta's cookies are Secure, which httpx keeps off http://, so they are carried by hand;
    the provider's (its own session) stay in the provider client's jar."""
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    with httpx.Client(base_url=v.base_url, transport=transport, timeout=30) as varta, \
            httpx.Client(timeout=30) as idp:
        r = varta.get("/api/auth/oidc/start")
        assert r.status_code == 303, r.text
        flow = _cookies(r)["varta_oidc"]
        url = r.headers["location"]
        assert "code_challenge_method=S256" in url and "nonce=" in url and "state=" in url
        r = idp.get(url)
        while r.is_redirect:
            r = idp.get(urljoin(str(r.url), r.headers["location"]))
        action = re.search(r'action="(/interaction/[^"]+/login)"', r.text).group(1)
        r = idp.post(urljoin(str(r.url), action), data={"login": login, "password": PEOPLE[login]["password"]})
        while r.is_redirect and not r.headers["location"].startswith(v.base_url):
            r = idp.get(urljoin(str(r.url), r.headers["location"]))
        callback = r.headers["location"]
        assert callback.startswith(f"{v.base_url}/api/auth/oidc/callback?"), callback
        r = varta.get(callback.removeprefix(v.base_url), headers={"Cookie": f"varta_oidc={flow}"})
        target = html.unescape(re.search(r'content="0;url=([^"]+)"', r.text).group(1))
        return target, _cookies(r), r.status_code


def session_client(v: VartaHome, cookies: dict, local_address: str | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    c = httpx.Client(base_url=v.base_url, transport=transport, timeout=30)
    c.headers["Cookie"] = f"varta_session={cookies['varta_session']}"
    c.headers["X-CSRF-Token"] = cookies["varta_csrf"]
    return c


def journal(v: VartaHome, **params) -> list[dict]:
    with v.api("auditor", "department") as c:
        return c.get("/api/journal", params={"action": "session.login", **params}).json()["lines"]


def test_sign_in_in_chromium_maps_the_role_and_refuses_an_unknown_group(stack, browser):  # noqa: F811
    v = stack
    via = f"via OpenID Connect (issuer {v.issuer})"
    assert httpx.get(f"{v.base_url}/api/auth/oidc").json() == {"enabled": True, "label": "Міський портал"}

    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.wait_for_selector("#login #sso")
    assert page.inner_text("#login #sso") == "Увійти через Міський портал"
    assert foreign_words(page.evaluate(_VISIBLE), "uk") == []
    shot(page, "sso-login")
    page.click("#login #sso")
    page.wait_for_selector("#idp-login")  # the provider's own page, on its own address
    assert page.url.startswith(v.issuer + "/interaction/")
    page.fill("#idp-user", "olena")
    page.fill("#idp-password", PEOPLE["olena"]["password"])
    shot(page, "sso-provider")
    page.click("#idp-submit")
    # Back in the console, signed in: the page names the person and the mapped role.
    page.wait_for_selector("#who:not(:empty)", timeout=20000)
    assert page.url.startswith(v.base_url)
    who = page.inner_text("#who")
    assert "Шевченко Олена Петрівна" in who and "Відповідальний підрозділ" in who, who
    shot(page, "sso-signed-in")
    me = page.evaluate("async () => (await fetch('/api/auth/me')).json()")
    assert (me["login"], me["role"], me["camera_groups"], me["access"], me["stage"]) == \
        ("olena", "department", ["north"], "direct", "full")
    cams = page.evaluate("async () => (await fetch('/api/cameras')).json()")
    assert sorted(c["id"] for c in cams) == ["mel-n1", "mel-n2"]  # the mapped group's cameras only
    # The account was provisioned by the provider: no password signs into it.
    login_client(v.base_url, "olena", PEOPLE["olena"]["password"], expect=401)
    ctx.close()

    # Someone whose groups map to no Varta role: refused, told why in the page's language.
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.click("#login #sso")
    page.wait_for_selector("#idp-login")
    page.fill("#idp-user", "ivan")
    page.fill("#idp-password", PEOPLE["ivan"]["password"])
    page.click("#idp-submit")
    page.wait_for_selector("#login-error:not(:empty)", timeout=20000)
    assert page.inner_text("#login-error") == ("Вхід відхилено: вашим групам у службі єдиного входу не відповідає "
                                               "жодна роль у «Варті». Зверніться до адміністратора")
    assert "sso_error" not in page.url  # the address is cleaned
    assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 401
    assert foreign_words(page.evaluate(_VISIBLE), "uk") == []
    shot(page, "sso-refused")
    # The same in English (the provider's name is the city's own).
    page.evaluate("() => localStorage.setItem('varta.lang', 'en')")
    page.goto(v.base_url + "/?sso_error=no_role")
    page.wait_for_selector("#login #sso")
    assert page.inner_text("#login #sso") == "Sign in with Міський портал"
    assert page.inner_text("#login-error").startswith("Sign-in refused: your groups at the identity provider map to "
                                                      "no role in Varta")
    assert foreign_words(page.evaluate(_VISIBLE).replace("Міський портал", " "), "en") == []
    ctx.close()

    # The journal: the sign-in and the refusal, as for local sign-ins, saying how.
    lines = journal(v, account="olena")
    ok = [ln for ln in lines if ln["result"] == "ok"]
    assert ok and ok[-1]["role"] == "department" and ok[-1]["access"] == "direct"
    assert ok[-1]["full_name"] == "Шевченко Олена Петрівна" and ok[-1]["detail"].endswith(via)
    assert "stage full" in ok[-1]["detail"]
    refused = [ln for ln in journal(v, account="ivan") if ln["result"] == "refused"]
    assert refused and "map to no Varta role" in refused[-1]["detail"] and "finance" in refused[-1]["detail"]
    assert refused[-1]["detail"].endswith(via) and refused[-1]["object"] == "user:ivan"
    with v.api("auditor", "department") as c:
        made = c.get("/api/journal", params={"action": "user.manage", "account": "olena"}).json()["lines"]
    assert any("account created: role department, camera groups [north]" in ln["detail"] for ln in made)
    # Nothing secret in the journal or the server's log.
    assert SECRET not in json.dumps(lines) and SECRET not in v.log_path.read_text()
    # The local accounts remain (break-glass).
    with v.api("breakglass", "admin") as c:
        assert c.get("/api/auth/me").json()["role"] == "admin"


def test_remote_sign_in_needs_a_second_factor_from_the_provider_or_varta(stack, browser):  # noqa: F811
    v = stack
    via = f"via OpenID Connect (issuer {v.issuer})"
    # The police officer: the provider asserted a one-time code (amr otp): a full remote session,
    # limited to the centre's cameras.
    target, cookies, _ = sso_http(v, "petro", REMOTE)
    assert target == "/"
    with session_client(v, cookies, REMOTE) as c:
        me = c.get("/api/auth/me").json()
        assert (me["role"], me["access"], me["stage"], me["camera_groups"]) == ("police", "remote", "full", ["centre"])
        assert [cam["id"] for cam in c.get("/api/cameras").json()] == ["mel-c1"]
    line = [ln for ln in journal(v, account="petro") if ln["result"] == "ok"][-1]
    assert line["access"] == "remote" and "second factor by the identity provider (amr otp)" in line["detail"]

    # The mayor: a password only at the provider, so Varta's own second factor: first enrolment…
    target, cookies, _ = sso_http(v, "roman", REMOTE)
    with session_client(v, cookies, REMOTE) as c:
        me = c.get("/api/auth/me").json()
        assert (me["role"], me["access"], me["stage"]) == ("mayor", "remote", "totp_enrol")
        assert c.get("/api/requests").status_code == 403  # nothing else until then
        setup = c.post("/api/auth/totp/setup").json()
        c.post("/api/auth/totp/confirm", json={"secret": setup["secret"],
                                               "otp": pyotp.TOTP(setup["secret"]).now()}).raise_for_status()
        assert c.get("/api/auth/me").json()["stage"] == "full"
    # …then the code at every remote sign-in through the provider: the session can do
    # nothing else until it is given.
    target, cookies, _ = sso_http(v, "roman", REMOTE)
    with session_client(v, cookies, REMOTE) as c:
        r = c.get("/api/auth/me")
        assert r.status_code == 403 and r.json()["detail"]["code"] == "oidc_otp"
        assert c.get("/api/requests").status_code == 403
        r = c.post("/api/auth/oidc/otp", json={"otp": "000000"})
        assert r.status_code == 401 and r.json()["code"] == "otp_invalid"
        bare = httpx.post(f"{v.base_url}/api/auth/oidc/otp", json={"otp": "123456"},
                          headers={"Cookie": f"varta_session={cookies['varta_session']}"})
        assert bare.status_code == 403  # no CSRF token: refused
    # The console asks for the code (the session keeps the place it was made from: remote).
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.add_cookies([{"name": n, "value": cookies[n], "url": v.base_url} for n in ("varta_session", "varta_csrf")])
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.wait_for_selector("#sso-otp")
    assert foreign_words(page.evaluate(_VISIBLE), "uk") == []
    shot(page, "sso-otp")
    page.fill("#sso-otp input[name=otp]", "000000")
    page.click("#sso-otp button[type=submit]")
    page.wait_for_selector("#sso-otp .error:not(:empty)")
    assert page.inner_text("#sso-otp .error") == "Код автентифікатора невірний або застарів"
    # The next step's code (enrolment used this one; ±1 step of drift is accepted).
    page.fill("#sso-otp input[name=otp]", pyotp.TOTP(setup["secret"]).at(time.time() + 30))
    page.click("#sso-otp button[type=submit]")
    page.wait_for_selector("#who:not(:empty)", timeout=20000)
    assert "Романенко Роман Олегович · Міський голова · " in page.inner_text("#who")
    me = page.evaluate("async () => (await fetch('/api/auth/me')).json()")
    assert (me["stage"], me["role"], me["access"]) == ("full", "mayor", "remote")
    ctx.close()
    lines = journal(v, account="roman")
    assert any(ln["result"] == "failed" and "wrong second-factor code" in ln["detail"] and ln["detail"].endswith(via)
               for ln in lines)
    last = [ln for ln in lines if ln["result"] == "ok"][-1]
    assert last["access"] == "remote" and "second factor; stage full" in last["detail"]


def test_a_forged_or_stale_answer_is_refused(stack):
    v = stack
    # A callback with no sign-in started in this browser (no state cookie): refused and journaled.
    r = httpx.get(f"{v.base_url}/api/auth/oidc/callback", params={"code": "x", "state": "forged"})
    assert r.status_code == 400 and "/?sso_error=expired" in r.text
    # A callback whose state differs from the one this browser started with.
    with httpx.Client(base_url=v.base_url) as c:
        flow = _cookies(c.get("/api/auth/oidc/start"))["varta_oidc"]
        r = c.get("/api/auth/oidc/callback", params={"code": "x", "state": "another"},
                  headers={"Cookie": f"varta_oidc={flow}"})
        assert r.status_code == 400 and "varta_session" not in _cookies(r)
        r = c.get("/api/auth/oidc/callback", params={"code": "x", "state": "стан"},
                  headers={"Cookie": f"varta_oidc={flow}"})
        assert r.status_code == 400  # not a 500
        # An answer naming another issuer (RFC 9207: a provider mix-up).
        r = c.get("/api/auth/oidc/callback", params={"code": "x", "state": "x", "iss": "https://elsewhere.example"},
                  headers={"Cookie": f"varta_oidc={flow}"})
        assert r.status_code == 400 and "/?sso_error=failed" in r.text
        # The person cancelled at the provider.
        r = c.get("/api/auth/oidc/callback", params={"error": "access_denied"}, headers={"Cookie": f"varta_oidc={flow}"})
        assert "/?sso_error=cancelled" in r.text
    lines = journal(v, account="?")
    assert any(ln["result"] == "failed" and "without a matching sign-in" in ln["detail"] for ln in lines)
    assert any("answered access_denied" in ln["detail"] for ln in lines)
