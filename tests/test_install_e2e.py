"""A plain install (`pip install .`, no test extras) starts, with the alarm webhook and the
metrics configured (issue 19: the webhook once needed a library only the test extras
installed).

Building a second virtual environment from the package index would take minutes; instead
the test lays out exactly what a plain install holds — Varta and the closure of its runtime
requirements as its metadata declares them, no extras — from this environment's files, and
starts `varta serve` on the bare interpreter (`python -S`: the standard library and that
layout, nothing else).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from conftest import free_port, stop_gently

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> set[str]:
    """Every distribution `pip install .` brings (Varta's requirements without extras, and theirs)."""
    seen: set[tuple[str, frozenset]] = set()
    todo = [("varta", frozenset())]
    while todo:
        name, extras = todo.pop()
        key = (_norm(name), extras)
        if key in seen:
            continue
        seen.add(key)
        dist = distribution(name)
        for req in map(Requirement, dist.requires or []):
            env_extras = extras or frozenset({""})
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in env_extras):
                todo.append((req.name, frozenset(req.extras)))
    return {name for name, _ in seen}


def _layout(dest: Path, names: set[str]) -> None:
    """Symlink each distribution's top-level files into ``dest`` (a site-packages of its own)."""
    dest.mkdir()
    (dest / "varta").symlink_to(ROOT / "varta")
    for name in names - {"varta"}:
        dist = distribution(name)
        for f in dist.files or []:
            top = f.parts[0]
            if top.endswith(".dist-info") or top == ".." or top.startswith("__pycache__"):
                if top.endswith(".dist-info") and not (dest / top).exists():
                    (dest / top).symlink_to(Path(dist.locate_file(top)))
                continue
            src = Path(dist.locate_file(top))
            if src.exists() and not (dest / top).exists():
                (dest / top).symlink_to(src)


def test_a_plain_install_starts_with_a_webhook_and_metrics(tmp_path):
    names = runtime_closure()
    assert "httpx" in names and "prometheus-client" in names and "authlib" in names
    for test_only in ("pytest", "playwright", "moto", "schemathesis", "pytest-xdist"):
        assert test_only not in names, f"{test_only} is a runtime requirement?"
    site = tmp_path / "site-packages"
    _layout(site, names)
    home, port = tmp_path / "home", free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1",
           "VARTA_HOME": str(home), "VARTA_ALARM_WEBHOOK_URL": "http://127.0.0.1:9/alarms",
           "VARTA_ALARM_WEBHOOK_SECRET": "a-shared-secret-for-the-test", "VARTA_METRICS_LISTEN": "",
           "VARTA_ANALYTICS": "true"}
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    # -S: no site-packages but the layout (the test's own environment is out of reach).
    probe = subprocess.run([str(python), "-S", "-c", "import pytest"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0, "the test environment leaks into the plain install"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(python), "-S", "-m", "varta.cli", "serve", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/system/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("varta serve did not answer:\n" + (tmp_path / "serve.log").read_text())
        out = subprocess.run([str(python), "-S", "-m", "varta.cli", "check", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip().startswith(("[", "{")), out.stdout + out.stderr
    finally:
        stop_gently(proc)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "ModuleNotFoundError" not in text and "Traceback" not in text, text
