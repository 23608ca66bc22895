"""The archive bucket adapter against a real S3-compatible server (moto over HTTP), and the
key layout's pure rules."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal

import pytest
import s3server

from varta.storage import layout
from varta.storage.objects import S3Config, S3Store, StoreError

s3_server = s3server.s3_server


def _store(srv, bucket: str, **kw) -> S3Store:
    return S3Store(S3Config(bucket=bucket, endpoint_url=srv.endpoint_url, access_key=srv.access_key,
                            secret_key=srv.secret_key, region=srv.region, addressing="path", **kw))


def _bucket(srv, lock: bool) -> str:
    name = f"varta-{secrets.token_hex(4)}"
    srv.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def test_keys_spread_cameras_over_prefixes_and_refuse_escapes():
    keys = {layout.segment_key(f"cam{i:04d}", "2026/12/04/x.mp4").split("/")[1] for i in range(2000)}
    assert len(keys) == 256  # every one of the 256 fan-out prefixes is used
    assert layout.segment_key("cam1", "2026/12/04/a.mp4") == layout.segment_key("cam1", "2026/12/04/a.mp4")
    with pytest.raises(ValueError):
        layout.segment_key("cam1", "../../etc/passwd")
    assert layout.backlog_seconds(None, 10_000_000) == 0.0
    assert layout.backlog_seconds(4_000_000, 10_000_000) == 6.0


def test_put_verify_read_ranges_and_refuse_a_changed_object(s3_server, tmp_path):
    store = _store(s3_server, _bucket(s3_server, lock=False), prefix="city/")
    info = store.check()
    assert info.reachable and not info.object_lock
    small = tmp_path / "small.mp4"
    small.write_bytes(os.urandom(300_000))
    big = tmp_path / "big.mp4"  # above the single-PUT limit would take 64 MiB; a 17 MiB file is multipart-able
    put = store.put_file("segments/aa/cam/2026/a.mp4", small)
    assert put.sha256 == hashlib.sha256(small.read_bytes()).hexdigest() and put.size == 300_000
    head = store.head("segments/aa/cam/2026/a.mp4")
    assert head.sha256 == put.sha256 and head.key == "city/segments/aa/cam/2026/a.mp4"
    assert store.head("segments/aa/cam/2026/none.mp4") is None
    status, headers, chunks = store.iter_range("segments/aa/cam/2026/a.mp4", "bytes=100-199")
    assert status == 206 and b"".join(chunks) == small.read_bytes()[100:200]
    assert headers["content-range"] == "bytes 100-199/300000"
    got = store.download("segments/aa/cam/2026/a.mp4", tmp_path / "copy.mp4", sha256=put.sha256)
    assert got.read_bytes() == small.read_bytes()
    # Someone with the storage keys replaces the object: a read checked against the index refuses it.
    s3_server.client().put_object(Bucket=store.cfg.bucket, Key=head.key, Body=b"forged")
    with pytest.raises(StoreError, match="does not match its SHA-256"):
        store.download("segments/aa/cam/2026/a.mp4", tmp_path / "copy2.mp4", sha256=put.sha256)
    assert not (tmp_path / "copy2.mp4").exists()
    # A multipart upload carries the same proof.
    import varta.storage.objects as objects

    big.write_bytes(os.urandom(17 * 1024 * 1024))
    old = objects.SINGLE_PUT_MAX
    objects.SINGLE_PUT_MAX = 8 * 1024 * 1024
    try:
        mp = store.put_file("segments/bb/cam/big.mp4", big)
    finally:
        objects.SINGLE_PUT_MAX = old
    assert mp.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert store.head("segments/bb/cam/big.mp4").size == big.stat().st_size
    with pytest.raises(FileNotFoundError):
        store.get("segments/none.mp4")


def test_legal_holds_are_enforced_by_the_bucket(s3_server, tmp_path):
    store = _store(s3_server, _bucket(s3_server, lock=True))
    assert store.check().object_lock
    f = tmp_path / "s.mp4"
    f.write_bytes(b"\x00" * 1000)
    for name in ("held.mp4", "free.mp4"):
        store.put_file(name, f)
    store.set_legal_hold("held.mp4", True)
    assert store.legal_hold("held.mp4") and not store.legal_hold("free.mp4")
    failed = store.delete_many(["held.mp4", "free.mp4"])
    assert list(failed) == ["held.mp4"] and "AccessDenied" in failed["held.mp4"]
    assert store.head("held.mp4") is not None and store.head("free.mp4") is None
    # Not even the service's own keys delete the held version (a plain DELETE only hides it).
    from botocore.exceptions import ClientError

    c = s3_server.client()
    version = c.head_object(Bucket=store.cfg.bucket, Key=store.key("held.mp4"))["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        c.delete_object(Bucket=store.cfg.bucket, Key=store.key("held.mp4"), VersionId=version)
    store.set_legal_hold("held.mp4", False)
    assert store.delete_many(["held.mp4"]) == {}
    assert store.head("held.mp4") is None
    left = c.list_object_versions(Bucket=store.cfg.bucket)
    assert not left.get("Versions") and not left.get("DeleteMarkers")  # nothing kept behind


def test_an_unreachable_or_wrong_store_says_so_without_the_secret(s3_server, tmp_path):
    f = tmp_path / "s.mp4"
    f.write_bytes(b"x" * 10)
    store = _store(s3_server, "no-such-bucket-here")
    info = store.check()
    assert not info.reachable
    with pytest.raises(StoreError) as exc:
        store.put_file("a.mp4", f)
    assert "no-such-bucket-here" in str(exc.value) and s3_server.secret_key not in str(exc.value)
    # A store that accepts connections but does not answer (a frozen server): a clear, transient error.
    bucket = _bucket(s3_server, lock=False)
    slow = _store(s3_server, bucket, read_timeout_s=1.0, connect_timeout_s=1.0, attempts=1)
    os.killpg(s3_server.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(StoreError) as exc:
            slow.put_file("a.mp4", f)
        assert exc.value.transient and s3_server.secret_key not in str(exc.value)
    finally:
        os.killpg(s3_server.proc.pid, signal.SIGCONT)
    assert slow.put_file("a.mp4", f).size == 10
    with pytest.raises(StoreError, match="archive_s3_bucket is empty"):
        S3Store(S3Config(bucket=""))
    with pytest.raises(StoreError, match="set both archive_s3_access_key and archive_s3_secret_key") as exc:
        S3Store(S3Config(bucket="city", endpoint_url=s3_server.endpoint_url, secret_key="only-the-secret"))
    assert "only-the-secret" not in str(exc.value)
    with pytest.raises(StoreError, match="must start with http"):
        S3Store(S3Config(bucket="city", endpoint_url="s3.city.local:9000"))


def test_pictures_exports_and_packages_go_to_the_bucket_and_any_node_reads_them(s3_server, tmp_path):
    """A node's alarm pictures, exports and packages are put into the bucket too, so another
    node serves them without reaching it; a store that is away is waited out, not lost."""
    import time

    from varta.config import Settings
    from varta.storage.files import FileUnavailable, NodeFiles

    store = _store(s3_server, _bucket(s3_server, lock=False), prefix="city/", read_timeout_s=1.0,
                   connect_timeout_s=1.0, attempts=1)
    a = NodeFiles(Settings(home=tmp_path / "a"), "node-a", None, store)
    b = NodeFiles(Settings(home=tmp_path / "b"), "node-b", None, store)  # no peers: only the bucket
    pic_rel = "cam1/2026/12/04/7.jpg"
    pic = a.local("events", pic_rel)
    pic.parent.mkdir(parents=True)
    pic.write_bytes(b"\xff\xd8" + os.urandom(5000))
    os.killpg(s3_server.proc.pid, signal.SIGSTOP)  # the store freezes just as the picture is written
    try:
        a.publish("events", pic_rel)  # in the background: the analytics worker never waits
        end = time.monotonic() + 20
        while a.publisher.failed_once == 0 and time.monotonic() < end:
            time.sleep(0.2)
        assert a.publisher.failed_once >= 1 and a.publisher.published == 0
    finally:
        os.killpg(s3_server.proc.pid, signal.SIGCONT)
    assert a.publisher.drain(30), "the picture reached the bucket once the store was back"
    got = b.fetch("node-a", "events", pic_rel, tmp_path / "copy.jpg")
    assert got.read_bytes() == pic.read_bytes()
    # An export is put at once (the job ends when it is there), with its SHA-256.
    exp_rel = "job-1/cam1-20261204.mp4"
    exp = a.local("exports", exp_rel)
    exp.parent.mkdir(parents=True)
    exp.write_bytes(os.urandom(70_000))
    a.publish("exports", exp_rel, wait=True)
    head = store.head(layout.file_key("exports", exp_rel))
    assert head.size == 70_000 and head.sha256 == hashlib.sha256(exp.read_bytes()).hexdigest()
    # Neither in the bucket nor reachable on its node: a clear error, no silent empty file.
    with pytest.raises(FileUnavailable, match="cannot reach other nodes"):
        b.fetch("node-a", "packages", "R-1.zip", tmp_path / "R-1.zip")
    assert not (tmp_path / "R-1.zip").exists()
    with pytest.raises(ValueError):
        a.publish("events", "../../etc/passwd")
    with pytest.raises(ValueError):
        layout.file_key("recordings", "cam1/x.mp4")  # segments have keys of their own
    # Retention of the pictures deletes their objects too.
    assert b.unpublish("events", [pic_rel]) == {}
    assert store.head(layout.file_key("events", pic_rel)) is None
