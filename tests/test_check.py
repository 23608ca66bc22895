"""`varta check`: the installer's checks, run as a real command on a real data folder.

A good set-up passes (exit 0); each broken thing — a bad setting, a file where a folder must
be, a folder that cannot be made, an unreachable or foreign database, open key files, a
world-readable config with secrets, an unreachable archive bucket — FAILs with its reason
and what to do, exit code 1.
"""

from __future__ import annotations

import json

import pytest

from conftest import free_port


def _check(v, *extra: str) -> tuple[int, dict, str]:
    res = v.run("check", "--json", *extra, check=False)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    data = json.loads(res.stdout)
    return res.returncode, data, res.stdout + res.stderr


def _by_name(data: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for c in data["checks"]:
        out.setdefault(c["name"], c)
    return out


def _failed(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["checks"] if c["status"] == "fail"}


def _good_home(v) -> None:
    """A data folder as after installing and a first `varta db-upgrade`, with node keys."""
    v.home.mkdir(parents=True, exist_ok=True)
    v.run("db-upgrade")
    keys = v.home / "keys"
    keys.mkdir(mode=0o700)
    keys.chmod(0o700)
    (keys / "instance_ed25519.pem").write_text("not read by the check\n")
    (keys / "instance_ed25519.pem").chmod(0o600)


def test_a_good_setup_passes(varta):
    v = varta()
    _good_home(v)
    rc, data, out = _check(v)
    assert rc == 0 and data["ok"] is True, out
    checks = _by_name(data)
    for name in ("settings", "data folder", "recordings", "database", "clock", "ffmpeg", "keys", "archive"):
        assert checks[name]["status"] == "ok", (name, checks[name])
    assert checks["model"]["status"] in ("ok", "warn")  # the detector is optional (motion only without it)
    assert "newest migration" in checks["database"]["message"]
    # The plain form: one line per check, then a summary.
    text = v.run("check").stdout
    assert text.splitlines()[0].startswith("OK    settings")
    assert any(line.startswith("OK    database") for line in text.splitlines())


def test_a_fresh_machine_is_told_what_comes_at_first_start(varta):
    v = varta()  # the data folder does not exist yet
    rc, data, out = _check(v)
    assert rc == 0, out
    checks = _by_name(data)
    assert checks["data folder"]["status"] == "ok" and "first start" in checks["data folder"]["message"]
    assert checks["database"]["status"] == "warn" and "db-upgrade" in checks["database"]["hint"]


def test_bad_settings_fail_with_the_reason(varta):
    v = varta()
    _good_home(v)
    v.env["VARTA_DEFAULT_RETENTION_DAYS"] = "5"
    rc, data, out = _check(v)
    assert rc == 1 and data["ok"] is False
    fail = _failed(data)["settings"]
    assert "default_retention_days" in fail["message"] and "10 days" in fail["message"], fail
    text = v.run("check", check=False)
    assert text.returncode == 1 and text.stdout.startswith("FAIL  settings") and "what to do:" in text.stdout

    # Broken TOML: said with the file and the line, not a traceback.
    v2 = varta()
    _good_home(v2)
    (v2.home / "varta.toml").write_text('segment_seconds = "ten\n')
    rc, data, out = _check(v2)
    assert rc == 1 and "not valid TOML" in _failed(data)["settings"]["message"], out

    # An unknown key is a warning (ignored, so nodes of two versions can share one file).
    v3 = varta()
    _good_home(v3)
    (v3.home / "varta.toml").write_text("segment_secnds = 6\n")
    rc, data, out = _check(v3)
    assert rc == 0, out
    warn = _by_name(data)["settings"]
    assert warn["status"] == "warn" and "segment_secnds" in warn["message"]


def test_folders_that_cannot_be_used_fail(varta, tmp_path):
    # A file where the recordings folder must be.
    v = varta()
    _good_home(v)
    (v.home / "recordings").write_text("not a folder")
    rc, data, out = _check(v)
    assert rc == 1
    fail = _failed(data)["recordings"]
    assert "not a folder" in fail["message"] and fail["hint"], fail

    # A data folder that cannot be made (a file is in the way; the tests run as root, so a
    # chmod would not stop them).
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    v2 = varta()
    v2.env["VARTA_HOME"] = str(blocker / "varta-data")
    rc, data, out = _check(v2)
    assert rc == 1
    fail = _failed(data)["data folder"]
    assert "cannot be made" in fail["message"] and "install -d" in fail["hint"], fail


def test_a_wrong_database_fails_without_showing_its_password(varta):
    v = varta(database_url=f"postgresql://varta:s3cr3t-pw@127.0.0.1:{free_port()}/varta")
    _good_home_no_db(v)
    rc, data, out = _check(v)
    assert rc == 1
    fail = _failed(data)["database"]
    assert "cannot connect" in fail["message"] and "pg_hba.conf" in fail["hint"], fail
    assert "s3cr3t-pw" not in out and "***" in fail["message"]
    assert "clock" not in _by_name(data)  # no database, no clock to compare with

    v2 = varta(database_url="mysql://varta@127.0.0.1/varta")
    _good_home_no_db(v2)
    rc, data, out = _check(v2)
    assert rc == 1 and "SQLite or PostgreSQL only" in _failed(data)["database"]["message"], out


def _good_home_no_db(v) -> None:
    v.home.mkdir(parents=True, exist_ok=True)


@pytest.mark.postgres
def test_postgresql_schema_and_clock(varta, postgres_url):
    v = varta(database_url=postgres_url)
    v.home.mkdir(parents=True, exist_ok=True)
    rc, data, out = _check(v)
    db = _by_name(data)["database"]
    assert rc == 0 and db["status"] == "warn" and "empty" in db["message"] and "db-upgrade" in db["hint"], out
    v.run("db-upgrade")
    rc, data, out = _check(v)
    checks = _by_name(data)
    assert rc == 0 and checks["database"]["status"] == "ok", out
    assert "(postgresql)" in checks["database"]["message"]
    assert checks["clock"]["status"] == "ok" and "database server" in checks["clock"]["message"]


def test_open_key_files_and_a_readable_config_with_secrets_fail(varta):
    v = varta()
    _good_home(v)
    (v.home / "keys" / "instance_ed25519.pem").chmod(0o644)
    (v.home / "keys").chmod(0o755)
    (v.home / "node_ed25519.pem").write_text("x")
    (v.home / "node_ed25519.pem").chmod(0o640)
    rc, data, out = _check(v)
    assert rc == 1
    fail = _failed(data)["keys"]
    assert "chmod 700" in fail["hint"] and "chmod 600" in fail["hint"] and "node_ed25519.pem" in fail["message"]

    v2 = varta()
    _good_home(v2)
    cfg = v2.home / "varta.toml"
    cfg.write_text('s3_bucket = "evidence"\ns3_secret_key = "do-not-print-me"\n')
    cfg.chmod(0o644)
    rc, data, out = _check(v2)
    assert rc == 1 and "chmod 640" in _failed(data)["secrets"]["hint"]
    assert "do-not-print-me" not in out
    cfg.chmod(0o640)
    rc, data, out = _check(v2)
    assert rc == 0, out


def test_an_unreachable_archive_bucket_fails(varta):
    v = varta(archive_storage="s3", archive_s3_bucket="city-archive",
              archive_s3_endpoint_url=f"http://127.0.0.1:{free_port()}", archive_s3_access_key="k",
              archive_s3_secret_key="archive-secret-value", archive_s3_path_style="true")
    _good_home(v)
    rc, data, out = _check(v)
    assert rc == 1
    fail = _failed(data)["archive"]
    assert "cannot be reached" in fail["message"] and "city-archive" in fail["message"], fail
    assert "archive-secret-value" not in out

    v2 = varta(archive_storage="s3")  # no bucket named
    _good_home(v2)
    rc, data, out = _check(v2)
    assert rc == 1 and "archive_s3_bucket" in _failed(data)["archive"]["message"], out
