"""A town's local archive moved to the city's bucket while it records, interrupted and
resumed, verified by hash — and moved back (issue 13, item 6)."""

from __future__ import annotations

import hashlib
import secrets

import pytest
import s3server
from conftest import have_ffmpeg
from sqlalchemy import text

from varta.storage import layout

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]

s3_server = s3server.s3_server


def _rows(v):
    with v.engine().connect() as conn:
        return conn.execute(text("select id, camera_id, path, bytes, stored, sha256 from segments "
                                 "where status <> 'missing' order by id")).all()


def test_migrate_a_recording_archive_to_the_bucket_and_back(varta, camsim, s3_server):
    bucket = f"town-{secrets.token_hex(3)}"
    s3 = s3_server.client()
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    v = varta(analytics="false")
    v.run("camera", "add", "mig-1", "--url", camsim.url("gen1"))
    v.start()  # local storage: the town as it was
    v.wait_for(lambda: len(_rows(v)) >= 8, 60, "eight segments on the local disk")
    # The bucket's settings, given to the command only: the running node still records locally.
    for k, val in dict(archive_s3_endpoint_url=s3_server.endpoint_url, archive_s3_bucket=bucket,
                       archive_s3_prefix="town/", archive_s3_access_key=s3_server.access_key,
                       archive_s3_secret_key=s3_server.secret_key, archive_s3_path_style="true").items():
        v.env[f"VARTA_{k.upper()}"] = val

    # Interrupted after three segments (exit 1: more to do) ...
    first = v.run("storage", "migrate", "--to", "s3", "--limit", "3", check=False)
    assert first.returncode == 1 and "moved 3 segments" in first.stdout, first.stdout + first.stderr
    assert sum(r.stored == layout.BOTH for r in _rows(v)) == 3
    # ... and resumed while the camera goes on recording: everything up to then, once.
    second = v.run("storage", "migrate", "--to", "s3")
    assert " 0 left" in second.stdout, second.stdout
    rows = _rows(v)
    moved = [r for r in rows if r.stored == layout.BOTH]
    assert len(moved) >= 8
    assert all(r.stored == layout.LOCAL for r in rows if r.id > moved[-1].id)  # recorded since: not touched
    for r in moved:
        key = "town/" + layout.segment_key(r.camera_id, r.path)
        head = s3.head_object(Bucket=bucket, Key=key)
        local = (v.home / "recordings" / r.camera_id / r.path).read_bytes()
        assert head["ContentLength"] == r.bytes and head["Metadata"]["sha256"] == r.sha256 == \
            hashlib.sha256(local).hexdigest()
        assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 1  # once
    with v.engine().connect() as conn:
        lines = conn.execute(text("select detail from journal where action = 'system.maintain' "
                                  "and detail like 'storage migrate%'")).all()
    assert len(lines) == 2

    # Back to the local disk: what is only in the bucket is copied back, checked by hash.
    gone = moved[:4]
    with v.engine().begin() as conn:  # as the janitor leaves it after the cache time
        for r in gone:
            (v.home / "recordings" / r.camera_id / r.path).unlink()
            conn.execute(text("update segments set stored = 's3' where id = :i"), {"i": r.id})
    s3.put_object(Bucket=bucket, Key="town/" + layout.segment_key(gone[0].camera_id, gone[0].path), Body=b"forged")
    bad = v.run("storage", "migrate", "--to", "local", check=False)
    assert bad.returncode != 0 and "does not match its SHA-256" in bad.stderr, bad.stdout + bad.stderr
    s3.delete_object(Bucket=bucket, Key="town/" + layout.segment_key(gone[0].camera_id, gone[0].path),
                     VersionId=s3.head_object(Bucket=bucket, Key="town/" + layout.segment_key(
                         gone[0].camera_id, gone[0].path))["VersionId"])  # the forged version goes
    back = v.run("storage", "migrate", "--to", "local")
    assert " 0 left" in back.stdout, back.stdout
    for r in gone:
        assert hashlib.sha256((v.home / "recordings" / r.camera_id / r.path).read_bytes()).hexdigest() == r.sha256
    assert all(r.stored == layout.LOCAL for r in _rows(v))
