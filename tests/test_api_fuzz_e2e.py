"""Fuzz the HTTP API with schemathesis: no request, however odd, may make a server error.

A real ``varta serve`` (SQLite, no cameras to reach) is driven over ``/api/openapi.json``
with two API tokens: a Responsible Department account's and an administrator's, each
scoped for every action (the role still decides what it may do). Every generated request
must be answered with a 2xx, 3xx or 4xx; a 5xx is a bug in the route (validate the input
and say what is wrong). Streaming endpoints (live video, Server-Sent Events, WebSockets)
are left out: they never end by themselves.

The run is bounded (``MAX_EXAMPLES`` per operation, a fixed seed, a time limit) so the
whole test takes at most about three minutes; ``VARTA_FUZZ_EXAMPLES`` raises the bound for
a longer hunt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

MAX_EXAMPLES = int(os.environ.get("VARTA_FUZZ_EXAMPLES", "10"))
SEED = 19
EXCLUDE = r"stream|/live$|/ws|/api/onvif/discover$"
BUDGET_S = 170  # both tokens together stay within three minutes


def _st() -> str:
    exe = Path(sys.executable).with_name("st")
    if exe.exists():
        return str(exe)
    found = shutil.which("st")
    if not found:
        pytest.skip("schemathesis (st) is not installed: pip install -e '.[test]'")
    return found


def _hypothesis_fits() -> None:
    """hypothesis-jsonschema 0.23 (what schemathesis 3.x draws bodies with) calls an internal
    of Hypothesis that Hypothesis 6.170 replaced: every body would be an error, not a test."""
    from hypothesis.internal.conjecture.utils import many

    if not hasattr(many, "more"):
        import hypothesis

        pytest.fail(f"Hypothesis {hypothesis.__version__} is too new for hypothesis-jsonschema under "
                    "schemathesis 3.x: install hypothesis<6.170 (pip install 'hypothesis<6.170')")


def _token(v, login: str, role: str) -> str:
    from varta.access.policy import ACTIONS

    v.account(login, role)
    scopes = [x for a in ACTIONS for x in ("--scope", a)]
    out = v.run("token", "create", login, "--name", f"fuzz {role}", *scopes).stdout
    return out.strip().splitlines()[-1].strip()


def _fuzz(v, token: str, seconds: float, report: Path) -> subprocess.CompletedProcess:
    cmd = [_st(), "run", f"{v.base_url}/api/openapi.json", "--base-url", v.base_url,
           "-H", f"Authorization: Bearer {token}",
           "--experimental", "openapi-3.1",  # FastAPI publishes OpenAPI 3.1
           "--checks", "not_a_server_error",
           "--exclude-path-regex", EXCLUDE,
           "--hypothesis-max-examples", str(MAX_EXAMPLES),
           "--hypothesis-seed", str(SEED),
           "--hypothesis-deadline", "None",
           "--hypothesis-phases", "explicit,generate",
           "--hypothesis-database", "none",
           "--request-timeout", "20000",
           "--generation-codec", "utf-8",
           "--workers", "2",
           "--junit-xml", str(report)]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds, env=env)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"the fuzzing run took more than {seconds:.0f} s:\n{out[-6000:]}") from None


def test_no_request_makes_a_server_error(varta, tmp_path):
    _st()
    _hypothesis_fits()
    v = varta(token_rate_per_min=0, cookie_secure="false", analytics="false")
    v.run("camera", "add", "fuzz-cam", "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off")
    v.start()
    tokens = {"department": _token(v, "fuzz.dept", "department"),
              "admin": _token(v, "fuzz.admin", "admin")}
    started = time.monotonic()
    failures = []
    for role, token in tokens.items():
        left = BUDGET_S - (time.monotonic() - started)
        assert left > 20, "no time left to fuzz as the administrator"
        res = _fuzz(v, token, left, tmp_path / f"fuzz-{role}.xml")
        if res.returncode != 0:
            failures.append(f"--- as {role} (exit {res.returncode}) ---\n{res.stdout[-8000:]}\n{res.stderr[-2000:]}")
    assert v.proc is not None and v.proc.poll() is None, "varta serve died under fuzzing:\n" + v.log_path.read_text()[-4000:]
    assert not failures, "server errors found by schemathesis:\n" + "\n".join(failures) + \
        "\n--- serve log ---\n" + v.log_path.read_text()[-6000:]
