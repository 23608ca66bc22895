"""Shared fixtures: real ffmpeg, a real GStreamer RTSP server, real SQLite/PostgreSQL.

Settings that tests read:
* ``VARTA_TEST_DATA`` — the shared test assets (default ``../shared/data``); tests that
  need footage skip with a clear message where the folder is absent.
* ``VARTA_TEST_POSTGRES_URL`` — an admin URL of a PostgreSQL server; each test gets a fresh
  database on it. Absent: PostgreSQL tests skip, except in CI (``CI=true``) where they fail.

In CI (``CI=true``) every skip is a failure (``pytest_runtest_makereport`` below).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(os.environ.get("VARTA_TEST_DATA", ROOT.parent / "shared" / "data"))
MEDIA_CACHE = Path(os.environ.get("VARTA_TEST_MEDIA_CACHE", ROOT / ".cache" / "test-media"))

FPS = 25
GOP = 25  # one keyframe a second: 2-second segments in tests
SEGMENT_SECONDS = 2


# --- under CI nothing may be skipped ----------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI=true``) a test that would skip for want of a tool, a server or data fails
    instead: a green run must mean everything ran."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("CI") == "true" and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = f"skipped under CI, which must run everything: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (``importorskip`` or
    ``pytest.skip(allow_module_level=True)`` at the top of a file): under CI it fails."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("CI") == "true" and rep.skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{collector.nodeid}: skipped under CI, which must run everything: {reason}"


# --- test tiers: `pytest -m "not e2e"` (make test-fast) is the pure tier -----------------
# A test is end-to-end (``e2e``) when it starts processes: Varta itself, ffmpeg/ffprobe, the
# RTSP camera simulator, Chromium, the moto S3 server, PostgreSQL clients in subprocesses.
# Marked here, in one place, so that a new test cannot forget it:
# * its module's name ends in ``_e2e``;
# * it uses a fixture that starts processes (the closure: a fixture used by a fixture counts);
# * its own body starts one (``subprocess``/``Popen`` in the test function's source).
PROCESS_FIXTURES = {
    "camsim": "GStreamer RTSP server (conftest)",
    "media": "ffmpeg makes the camera streams (conftest)",
    "footage": "ffmpeg prepares the shared footage (conftest)",
    "varta": "`varta` commands and `varta serve` processes (conftest)",
    "browser": "Chromium through Playwright (test_console_e2e)",
    "s3_server": "moto's S3 server process (s3server.py)",
    "server": "`varta serve` (test_access_http, test_auth_http, test_evidence_http)",
    "gst_ok": "the RTSP simulator (test_camsim)",
    "streams": "ffmpeg (test_camsim)",
    "sim": "the RTSP simulator (test_camsim)",
    "archive": "ffmpeg records the footage packaged (test_evidence_package)",
    "built": "ffmpeg cuts the package (test_evidence_package)",
    "clips": "ffmpeg cuts the footage (test_redaction)",
    "cluster": "`varta` nodes (test_cluster_e2e)",
    # Not a process, but minutes of CPU: the INT8 variant is made from the detector model
    # (`varta model install`'s own work, onnxruntime's static quantization with calibration).
    "models": "derives the INT8 detector like `varta model install` (test_analytics_capacity)",
}
# What in a test's own source (or in a helper of its module it calls) starts a process.
_STARTS_PROCESS = ("subprocess.", "Popen(", "S3Server(", "CameraSimulator(", "VartaHome(", "make_test_stream(",
                   "prepare_from_file(", "sync_playwright")


def _own_code(item):
    """The test function and the functions of its module it calls by name (one level)."""
    fn = getattr(item, "function", None)
    if fn is None:
        return
    yield fn
    mod = getattr(item, "module", None)
    for name in getattr(getattr(fn, "__code__", None), "co_names", ()):
        obj = getattr(mod, name, None)
        if callable(obj) and getattr(obj, "__module__", None) == getattr(mod, "__name__", "") \
                and hasattr(obj, "__code__"):
            yield obj


def _starts_a_process(item) -> str | None:
    """Why ``item`` is end-to-end, or None for a test of the pure tier."""
    import inspect

    module = getattr(item, "module", None)
    if module is not None and module.__name__.rsplit(".", 1)[-1].endswith("_e2e"):
        return "module *_e2e"
    for name in getattr(item, "fixturenames", ()):
        if name in PROCESS_FIXTURES:
            return f"fixture {name}: {PROCESS_FIXTURES[name]}"
    for fn in _own_code(item):
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        hit = next((s for s in _STARTS_PROCESS if s in src), None)
        if hit:
            return f"{fn.__name__} calls {hit}"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("e2e") is None and _starts_a_process(item):
            item.add_marker(pytest.mark.e2e)


# --- test assets -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def test_data() -> Path:
    if not (TEST_DATA / "video").is_dir():
        pytest.skip(f"shared test data not found at {TEST_DATA} (set VARTA_TEST_DATA)")
    return TEST_DATA


@pytest.fixture(scope="session")
def media() -> dict[str, Path]:
    """Generated camera streams: 640x360, 25 fps, 1 s GOP, 20 s loops, frame counter burned in."""
    from varta.demo.media import make_test_stream

    MEDIA_CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, pattern in (("gen1", "testsrc2"), ("gen2", "smptebars"), ("gen3", "testsrc")):
        out[name] = make_test_stream(MEDIA_CACHE / f"{name}.ts", width=640, height=360, fps=FPS, seconds=20,
                                     gop=GOP, bitrate="800k", label=name, pattern=pattern, preset="ultrafast")
    return out


@pytest.fixture(scope="session")
def footage(test_data: Path) -> dict[str, Path]:
    """Real surveillance footage from the shared data, made loopable for the RTSP server."""
    from varta.demo.media import prepare_from_file

    MEDIA_CACHE.mkdir(parents=True, exist_ok=True)
    return {"vtest": prepare_from_file(test_data / "video" / "vtest.avi", MEDIA_CACHE / "vtest.ts", gop=10)}


def _require_gst() -> None:
    from varta.demo.simulator import gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(f"RTSP camera simulator unavailable: {why}")


@pytest.fixture
def camsim(media):
    """A fresh RTSP server per test (tests stop and restart it to simulate outages)."""
    from varta.demo.simulator import CameraSimulator

    _require_gst()
    sim = CameraSimulator(media)
    sim.start()
    yield sim
    sim.stop()


# --- databases -------------------------------------------------------------------------
def _pg_admin_url() -> str | None:
    url = os.environ.get("VARTA_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI") == "true":
        pytest.fail("VARTA_TEST_POSTGRES_URL is not set in CI: PostgreSQL must be tested there")
    return url


@pytest.fixture
def postgres_url():
    admin = _pg_admin_url()
    if not admin:
        pytest.skip("PostgreSQL not configured (set VARTA_TEST_POSTGRES_URL)")
    import sqlalchemy as sa

    from varta.db.engine import make_engine

    name = f"varta_test_{secrets.token_hex(4)}"
    eng = make_engine(admin).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with eng.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'varta.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(db_url, tmp_path):
    from varta.db.engine import open_database

    eng = open_database(db_url, keys_dir=tmp_path / "keys")
    yield eng
    eng.dispose()


# --- running Varta as a real process ---------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_gently(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Ctrl-C as a person would, then kill if it does not stop in ``timeout`` seconds."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class VartaHome:
    """A data folder plus helpers to run ``varta`` commands and a ``varta serve`` process."""

    def __init__(self, home: Path, db_url: str | None = None, **settings):
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_")}
        self.env.update({
            "VARTA_HOME": str(home),
            "VARTA_SEGMENT_SECONDS": str(SEGMENT_SECONDS),
            "VARTA_RTSP_TIMEOUT_S": "4",
            "VARTA_RECONNECT_MAX_BACKOFF_S": "2",
            "VARTA_JANITOR_INTERVAL_S": "5",
            "VARTA_NODE_NAME": "test-node",
            "VARTA_TEST_DATA": str(TEST_DATA),
        })
        if db_url:
            self.env["VARTA_DATABASE_URL"] = db_url
        for k, v in settings.items():
            self.env[f"VARTA_{k.upper()}"] = str(v)
        self.proc: subprocess.Popen | None = None
        self._engine = None
        self._passwords: dict[str, str] = {}
        self.port = free_port()
        self.log_path = home / "serve.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "varta.cli", *args], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"varta {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def json(self, *args: str):
        return json.loads(self.run(*args).stdout)

    def start(self, command: str = "serve") -> None:
        """Run ``varta serve`` (or ``recorder``, ``web``: a node of a cluster) and wait until it answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "varta.cli", command, "--listen", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"varta {command} exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/api/system/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"varta {command} did not come up:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_gently(self.proc)
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def node_id(self) -> str:
        return json.loads((self.home / "node.json").read_text())["id"]

    def engine(self):
        from varta.db.engine import open_database

        if self._engine is None:
            self._engine = open_database(self.env.get("VARTA_DATABASE_URL") or f"sqlite:///{self.home / 'varta.db'}",
                                         keys_dir=self.home / "keys")
        return self._engine

    def account(self, login: str, role: str, groups=(), totp: bool = False) -> tuple[str, str | None]:
        """An account with a known password (and TOTP secret), made straight in the database."""
        from varta.access.accounts import Accounts
        from varta.access.credentials import new_totp_secret

        accounts = Accounts(self.engine())
        password = f"pw-{secrets.token_hex(8)}"
        if accounts.get(login) is None:
            accounts.add(login, f"Test {login.title()} User", role, camera_groups=groups, password=password)
        else:
            accounts.change_password(login, password)
        secret = new_totp_secret() if totp else None
        if totp:
            accounts.set_totp(login, secret)
        return password, secret

    def api(self, login: str = "tech", role: str = "contractor", **kw) -> httpx.Client:
        """A signed-in client (by default a contractor on the server itself: direct access
        from a restricted-zone workstation, allowed to manage cameras and see the archive)."""
        if login not in self._passwords:
            self._passwords[login] = self.account(login, role)[0]
        return login_client(self.base_url, login, self._passwords[login], **kw)

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition", interval: float = 0.5):
        log = self.log_path
        return wait_until(predicate, timeout, what, interval,
                          lambda: "--- serve log ---\n" + (log.read_text()[-4000:] if log.exists() else ""))

    def status(self, camera_id: str) -> dict:
        with self.api() as c:
            return c.get(f"/api/cameras/{camera_id}/status").json()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5, context=lambda: ""):
    """Poll ``predicate`` until it returns something true (returned), or fail saying what."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{context()}")


async def watch_live(url: str, cookie: str, seconds: float, origin: str | None = None) -> list:
    """What a browser receives on a live-view WebSocket in ``seconds`` (text and binary messages)."""
    import asyncio

    import websockets

    headers = {"Cookie": cookie}
    if origin:
        headers["Origin"] = origin
    msgs = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                msgs.append(await asyncio.wait_for(ws.recv(), timeout=max(0.1, end - loop.time())))
            except asyncio.TimeoutError:
                break
    return msgs


def login_client(base_url: str, login: str, password: str, otp: str | None = None,
                 local_address: str | None = None, expect: int = 200) -> httpx.Client:
    """Sign in over HTTP like a browser: the session cookie plus the CSRF header.

    The cookie is Secure, so httpx would not send it back over http://; the client sends
    it explicitly instead. ``local_address`` picks the source address (127.0.0.x), which
    decides direct/remote and the restricted zone.
    """
    def transport():
        return httpx.HTTPTransport(local_address=local_address) if local_address else None

    with httpx.Client(base_url=base_url, timeout=30, transport=transport()) as first:
        r = first.post("/api/auth/login", json={"login": login, "password": password, "otp": otp})
    if r.status_code != expect:
        raise AssertionError(f"sign-in of {login} gave {r.status_code}: {r.text}")
    c = httpx.Client(base_url=base_url, timeout=30, transport=transport())
    c.me = r.json()
    if r.status_code == 200:
        c.headers["Cookie"] = f"varta_session={r.cookies['varta_session']}"
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


@pytest.fixture
def varta(tmp_path):
    homes: list[VartaHome] = []

    def make(db_url: str | None = None, **settings) -> VartaHome:
        h = VartaHome(tmp_path / f"home{len(homes)}", db_url, **settings)
        homes.append(h)
        return h

    yield make
    for h in homes:
        h.stop()
        if h._engine is not None:
            h._engine.dispose()


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
