"""Evidence transfer (A4.11) over real HTTP to a real S3 server (moto's standalone server),
and to a local folder. Downloads go through presigned links with httpx, never boto3."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

import s3server
from varta.evidence.transfer import (FolderTarget, JsonFileState, S3Target, TransferError,
                                     TransferInterrupted, _refusal, check_target,
                                     copy_to_folder, presign, upload_to_s3)

s3_server = s3server.s3_server  # the module-scoped fixture, visible to pytest here

MiB = 1024 * 1024
BIG = 40 * MiB + 12345  # 9 parts of 5 MiB: the last one short


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("pkg") / "case-0001.zip"
    data = os.urandom(BIG)
    path.write_bytes(data)
    return path, data


def make_target(srv: s3server.S3Server, bucket: str | None = None, **kw) -> S3Target:
    """A target on the test server with fast retries (tests must not wait for backoff)."""
    args = dict(endpoint_url=srv.endpoint_url, bucket=bucket or f"t-{uuid.uuid4().hex[:12]}",
                region=srv.region, access_key=srv.access_key, secret_key=srv.secret_key,
                part_size_mb=5, attempts=2, backoff_s=0.05, workers=3)
    args.update(kw)
    return S3Target(**args)


@pytest.fixture
def target(s3_server) -> S3Target:
    t = make_target(s3_server)
    check_target(t)
    return t


def download(url: str) -> httpx.Response:
    """A plain HTTP GET, as a recipient's browser would do it."""
    with httpx.Client(trust_env=False, timeout=60) as c:
        return c.get(url)


class Recorder:
    """A progress callback that remembers every call."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        assert self.calls, "progress was never reported"
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones), "progress went backwards"
        assert all(t == total for _, t in self.calls)
        assert self.calls[-1] == (total, total)


# --------------------------------------------------------------------------- bucket check


def test_check_target_creates_private_bucket(s3_server):
    t = make_target(s3_server)
    msg = check_target(t)
    assert "created the bucket" in msg and "public access blocked" in msg, msg
    pab = s3_server.client().get_public_access_block(Bucket=t.bucket)
    assert all(pab["PublicAccessBlockConfiguration"].values())
    again = check_target(t)
    assert again.startswith("S3 storage OK") and "created" not in again, again


# --------------------------------------------------------------------------- upload


def test_multipart_upload_link_private_sse(s3_server, target, big_file):
    path, data = big_file
    rec = Recorder()
    res = upload_to_s3(path, "cases/case-0001.zip", target, state=None, progress=rec)

    key = "varta/cases/case-0001.zip"
    assert res.target == "s3" and res.location == f"s3://{target.bucket}/{key}"
    assert res.bytes == BIG and res.sha256 == sha256(data) and res.resumed_parts == 0
    assert res.etag and res.etag.endswith("-9"), res.etag
    rec.check(BIG)

    head = s3_server.client().head_object(Bucket=target.bucket, Key=key)
    assert res.sse == head.get("ServerSideEncryption", "none") == "AES256"
    assert head["Metadata"]["sha256"] == sha256(data)

    # The link downloads the very bytes, under the package's name.
    now = time.time() * 1e6
    assert now + 7 * 86400e6 - 60e6 < res.url_expires_us <= now + 7 * 86400e6 + 60e6
    r = download(res.url)
    assert r.status_code == 200 and sha256(r.content) == res.sha256
    assert "case-0001.zip" in r.headers.get("content-disposition", "")

    # Nobody without a signature can read it.
    anon = download(f"{target.endpoint_url}/{target.bucket}/{key}")
    assert anon.status_code == 403

    # A new, shorter link later, by relative key or by the result's location.
    for ref in ("cases/case-0001.zip", res.location):
        url, expires = presign(target, ref, expiry_s=600)
        assert abs(expires - (time.time() * 1e6 + 600e6)) < 60e6
        assert sha256(download(url).content) == res.sha256


def test_small_file_single_put(s3_server, target, tmp_path):
    path = tmp_path / "small.zip"
    data = os.urandom(1 * MiB + 7)
    path.write_bytes(data)
    rec = Recorder()
    res = upload_to_s3(path, "small.zip", target, progress=rec)
    assert res.etag == hashlib.md5(data).hexdigest()
    assert res.sse == "AES256" and res.resumed_parts == 0
    rec.check(len(data))
    assert download(res.url).content == data


def test_sse_none_is_reported_truthfully(s3_server, tmp_path):
    t = make_target(s3_server, sse="none", link_expiry_s=0)
    check_target(t)
    path = tmp_path / "plain.zip"
    path.write_bytes(b"x" * 1000)
    res = upload_to_s3(path, "plain.zip", t)
    head = s3_server.client().head_object(Bucket=t.bucket, Key="varta/plain.zip")
    assert res.sse == head.get("ServerSideEncryption", "none") == "none"
    assert res.url is None and res.url_expires_us is None


# --------------------------------------------------------------------------- resume


def interrupt_after(parts: int):
    """(progress, should_stop): should_stop() turns true once *parts* parts are reported."""
    seen = Recorder()

    def stop() -> bool:
        return len(seen.calls) > parts  # the first progress call is the starting point

    return seen, stop


def test_resume_sends_only_missing_parts(s3_server, target, big_file, tmp_path):
    path, data = big_file
    state = JsonFileState(tmp_path / "state.json")
    rec, stop = interrupt_after(3)
    with pytest.raises(TransferInterrupted, match="interrupted"):
        upload_to_s3(path, "resume.zip", target, state=state, progress=rec, should_stop=stop)
    saved = state.load()
    assert saved and saved["upload_id"] and saved["key"] == "varta/resume.zip"
    assert saved["size"] == BIG and saved["part_size"] == 5 * MiB and saved["sha256"] == sha256(data)
    n_saved = len(saved["parts"])
    assert 3 <= n_saved < 9, n_saved
    server = s3_server.client().list_parts(Bucket=target.bucket, Key=saved["key"],
                                           UploadId=saved["upload_id"])["Parts"]
    assert sorted(p["PartNumber"] for p in server) == sorted(p["n"] for p in saved["parts"])

    rec2 = Recorder()
    res = upload_to_s3(path, "resume.zip", target, state=state, progress=rec2)
    assert res.resumed_parts == n_saved
    assert rec2.calls[0][0] == sum(p["size"] for p in saved["parts"])  # started where it stopped
    rec2.check(BIG)
    assert res.sha256 == sha256(data) and res.etag.endswith("-9")
    assert sha256(download(res.url).content) == sha256(data)
    assert state.load()["completed"] is True

    # Asking again after completion only re-checks the object and makes a new link.
    again = upload_to_s3(path, "resume.zip", target, state=state)
    assert again.etag == res.etag and again.resumed_parts == 9
    assert sha256(download(again.url).content) == sha256(data)


def test_unknown_upload_id_starts_over(s3_server, target, big_file, tmp_path):
    path, data = big_file
    state = JsonFileState(tmp_path / "state.json")
    rec, stop = interrupt_after(2)
    with pytest.raises(TransferInterrupted):
        upload_to_s3(path, "forgotten.zip", target, state=state, progress=rec, should_stop=stop)
    saved = state.load()
    s3_server.client().abort_multipart_upload(Bucket=target.bucket, Key=saved["key"],
                                              UploadId=saved["upload_id"])
    res = upload_to_s3(path, "forgotten.zip", target, state=state)
    assert res.resumed_parts == 0
    assert state.load()["upload_id"] != saved["upload_id"]
    assert sha256(download(res.url).content) == sha256(data)


def test_part_lost_on_server_is_sent_again(s3_server, target, big_file, tmp_path):
    """A saved part whose ETag the server does not confirm is not trusted."""
    path, data = big_file
    state = JsonFileState(tmp_path / "state.json")
    rec, stop = interrupt_after(3)
    with pytest.raises(TransferInterrupted):
        upload_to_s3(path, "tampered.zip", target, state=state, progress=rec, should_stop=stop)
    saved = state.load()
    saved["parts"][0]["etag"] = "0" * 32
    state.save(saved)
    res = upload_to_s3(path, "tampered.zip", target, state=state)
    assert res.resumed_parts == len(saved["parts"]) - 1
    assert sha256(download(res.url).content) == sha256(data)


# --------------------------------------------------------------------------- failures


def test_wrong_secret_key_is_explained_without_the_secret(s3_server, tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(os.urandom(6 * MiB))
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    check_target(make_target(s3_server, bucket))
    wrong = "WrongSecret-0123456789abcdefXYZ"
    with s3_server.enforced_auth() as (ak, sk):
        good = make_target(s3_server, bucket, access_key=ak, secret_key=sk)
        assert check_target(good).startswith("S3 storage OK")
        bad = make_target(s3_server, bucket, access_key=ak, secret_key=wrong)
        for attempt in (lambda: upload_to_s3(path, "p.zip", bad), lambda: check_target(bad)):
            with pytest.raises(TransferError) as ei:
                attempt()
            msg = str(ei.value)
            assert "secret key" in msg and ak in msg and s3_server.endpoint_url in msg, msg
            assert wrong not in msg and wrong not in repr(ei.value) and sk not in msg
        unknown = make_target(s3_server, bucket, access_key="AKIAUNKNOWNUNKNOWN00", secret_key=wrong)
        with pytest.raises(TransferError, match="not known") as ei:
            upload_to_s3(path, "p.zip", unknown)
        assert wrong not in str(ei.value)
    assert wrong not in repr(bad) and "secret_key" not in repr(bad)


def test_server_down_names_the_endpoint_after_retries(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t = S3Target(endpoint_url=f"http://127.0.0.1:{port}", bucket="evidence", access_key="a",
                 secret_key="secret-value-xyz", attempts=3, backoff_s=0.05, part_size_mb=5)
    path = tmp_path / "p.zip"
    path.write_bytes(b"z" * 1000)
    for call in (lambda: upload_to_s3(path, "p.zip", t), lambda: check_target(t)):
        t0 = time.monotonic()
        with pytest.raises(TransferError) as ei:
            call()
        msg = str(ei.value)
        assert f"127.0.0.1:{port}" in msg and "after 3 attempts" in msg and "cannot connect" in msg, msg
        assert "secret-value-xyz" not in msg
        assert time.monotonic() - t0 < 15


def test_server_lost_mid_upload_then_back_empty(big_file, tmp_path):
    """The server dies after some parts: a clear error, then (it came back empty) the
    next call finds the upload id unknown and starts over cleanly."""
    path, data = big_file
    with s3server.S3Server() as srv:
        t = make_target(srv)
        check_target(t)
        state = JsonFileState(tmp_path / "state.json")

        def kill_after_two_parts(done: int, total: int) -> None:
            if done >= 2 * 5 * MiB and srv.proc is not None:
                srv.stop()

        with pytest.raises(TransferError) as ei:
            upload_to_s3(path, "lost.zip", t, state=state, progress=kill_after_two_parts)
        assert not isinstance(ei.value, TransferInterrupted)
        assert srv.endpoint_url in str(ei.value) and "after 2 attempts" in str(ei.value), ei.value
        assert len(state.load()["parts"]) >= 2

        srv.start()
        check_target(t)  # the bucket is gone with the server's memory: made again
        res = upload_to_s3(path, "lost.zip", t, state=state)
        assert res.resumed_parts == 0
        assert sha256(download(res.url).content) == sha256(data)


def test_link_expiry_over_7_days_is_refused(s3_server, target, tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(b"z" * 1000)
    too_long = make_target(s3_server, target.bucket, link_expiry_s=8 * 86400)
    with pytest.raises(TransferError, match="7 days"):
        upload_to_s3(path, "never.zip", too_long)
    keys = s3_server.client().list_objects_v2(Bucket=target.bucket).get("Contents", [])
    assert not keys, "nothing may be uploaded with an invalid setting"
    res = upload_to_s3(path, "p.zip", target)
    with pytest.raises(TransferError, match="604800"):
        presign(target, "p.zip", expiry_s=7 * 86400 + 1)
    url, _ = presign(target, "p.zip", expiry_s=7 * 86400)
    assert download(url).content == b"z" * 1000 and res.url
    with pytest.raises(TransferError, match="does not exist"):
        presign(target, "missing.zip")


def test_refused_sse_or_acl_is_told_apart():
    """moto never refuses SSE or ACLs, so the decision behind sse="auto" is checked on the
    errors MinIO and S3 send (MinIO without KMS; S3 with ACLs disabled)."""
    kms = TransferError("x", "NotImplemented", 501,
                        "Server side encryption specified but KMS is not configured")
    assert _refusal(kms, acl=True, sse=True) == "sse"
    acl = TransferError("x", "AccessControlListNotSupported", 400, "The bucket does not allow ACLs")
    assert _refusal(acl, acl=True, sse=True) == "acl"
    vague = TransferError("x", "NotImplemented", 501, "A header you provided implies "
                          "functionality that is not implemented")
    assert _refusal(vague, acl=True, sse=True) == "acl"  # keep encryption if we can
    assert _refusal(vague, acl=False, sse=True) == "sse"
    denied = TransferError("x", "AccessDenied", 403, "Access Denied")
    assert _refusal(denied, acl=True, sse=True) == "acl"  # no s3:PutObjectAcl: try without
    assert _refusal(denied, acl=False, sse=True) is None  # then it is a real denial
    other = TransferError("x", "NoSuchBucket", 404, "The specified bucket does not exist")
    assert _refusal(other, acl=True, sse=True) is None


# --------------------------------------------------------------------------- folder


def test_copy_to_folder(big_file, tmp_path):
    path, data = big_file
    dest = tmp_path / "usb"
    dest.mkdir()
    rec = Recorder()
    res = copy_to_folder(path, FolderTarget(dest), progress=rec)
    out = dest / path.name
    assert res.target == "folder" and res.location == str(out) and res.bytes == BIG
    assert res.sha256 == sha256(data) == sha256(out.read_bytes())
    assert res.sse == "n/a" and res.url is None
    assert sorted(p.name for p in dest.iterdir()) == [path.name], "a .part file was left"
    rec.check(BIG)

    assert copy_to_folder(path, FolderTarget(dest)).sha256 == res.sha256  # same content: done
    other = tmp_path / "other" / path.name
    other.parent.mkdir()
    other.write_bytes(b"different")
    with pytest.raises(TransferError, match="different content"):
        copy_to_folder(other, FolderTarget(dest))
    with pytest.raises(TransferError, match="mounted"):
        copy_to_folder(path, FolderTarget(tmp_path / "not-mounted"))


def test_content_md5_path_checks_the_multipart_etag(s3_server, target, big_file, tmp_path):
    """Over HTTPS each part carries Content-MD5 and the final ETag is checked against the
    parts' MD5s (moto serves plain HTTP, so the path is forced here); over plain HTTP the
    signed SHA-256 of each part is the check and no MD5 is spent."""
    import dataclasses

    path, data = big_file
    forced, plain = JsonFileState(tmp_path / "forced.json"), JsonFileState(tmp_path / "plain.json")
    res = upload_to_s3(path, "md5-checked.zip", dataclasses.replace(target, content_md5="always"), state=forced)
    md5s = [hashlib.md5(data[i:i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert res.etag == f"{hashlib.md5(b''.join(md5s)).hexdigest()}-{len(md5s)}"
    assert [p["md5"] for p in forced.load()["parts"]] == [m.hex() for m in md5s]
    assert forced.load()["expected_etag"] == res.etag  # what _finish compared the object with
    assert sha256(download(res.url).content) == sha256(data)
    upload_to_s3(path, "signed-only.zip", target, state=plain)
    assert all(p["md5"] is None for p in plain.load()["parts"]) and plain.load()["expected_etag"] is None
