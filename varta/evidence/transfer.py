"""Transfer of an evidence package to storage that third parties cannot read (A4.11).

Two targets:

* :class:`S3Target` — any S3-compatible object store (AWS S3, MinIO, Ceph RGW…): a
  private object, server-side encryption where the server offers it, a resumable
  multipart upload with per-part retries, and a presigned download link (SigV4, at most
  7 days — a limit of the signature scheme, not of Varta).
* :class:`FolderTarget` — a local or mounted folder for offline sites: copy to
  ``NAME.part``, fsync, verify the SHA-256 from the disk, rename.

Why multipart with our own state rather than ``boto3``'s ``upload_file``: packages are
several GB and the uplink of a city site is slow and unreliable; an upload interrupted
by a restart must continue where it stopped, which needs the upload id and the finished
parts stored durably (:class:`TransferState`, backed by a DB row in Varta).

Credentials never appear in messages or logs: :class:`TransferError` texts are built
from the endpoint, bucket, key, access key id and the server's error code only, and are
scrubbed of the secret key as a last line of defence.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import mimetypes
import os
import random
import re
import shutil
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from varta.clock import US, now_us
from varta.evidence.layout import fsync_dir
from varta.storage import s3

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART = 5 * MiB            # S3's minimum for every part but the last
MAX_PART = 5 * 1024 * MiB     # S3's maximum part size
MAX_PARTS = 10_000            # S3's maximum part count
MAX_LINK_S = 7 * 86400        # SigV4 presigned URLs cannot be valid for longer
CHUNK = 8 * MiB               # read size for hashing and folder copies
SSE_MODES = ("auto", "AES256", "aws:kms", "none")
ADDRESSING = ("auto", "path", "virtual")
STATE_VERSION = 1

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- public types


@dataclass
class S3Target:
    """Where and how to upload. ``secret_key`` is kept out of ``repr``.

    ``sse``: ``"auto"`` asks for AES256 and, when the server refuses SSE, stores without
    it (the result says ``"none"``); ``"AES256"``/``"aws:kms"`` fail instead; ``"none"``
    asks for nothing. ``addressing="auto"`` means path style for a custom endpoint
    (MinIO/Ceph rarely have wildcard DNS) and botocore's choice for AWS.
    ``link_expiry_s=0`` uploads without making a link. ``workers`` parts are in flight
    at once (memory: ``workers × part_size_mb``). ``attempts``/``backoff_s`` are the
    per-request retries on connection errors and 5xx (exponential, capped at 30 s).
    """

    endpoint_url: str | None
    bucket: str
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = field(repr=False, default="")
    prefix: str = "varta/"
    sse: str = "auto"
    link_expiry_s: int = 7 * 86400
    part_size_mb: int = 16
    addressing: str = "auto"
    workers: int = 8
    content_md5: str = "auto"  # "auto": over HTTPS only (see _send_part), "always"
    attempts: int = 5
    backoff_s: float = 1.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0

    def where(self) -> str:
        """The endpoint as an operator knows it (never with credentials)."""
        return self.endpoint_url or f"AWS S3 ({self.region})"


@dataclass
class FolderTarget:
    """A folder that must already exist (a drive that is not mounted must not be filled
    on the root file system by mistake)."""

    folder: Path


class TransferState(Protocol):
    """Where an interrupted upload is remembered between calls (a DB row in Varta).

    The dict is JSON-serialisable: ``{version, endpoint, bucket, key, upload_id,
    part_size, size, mtime, sha256, sse, parts: [{n, etag, size, md5}], completed?}``.
    """

    def load(self) -> dict | None: ...

    def save(self, state: dict) -> None: ...


@dataclass
class TransferResult:
    target: str                # "s3" | "folder"
    location: str              # s3://bucket/key or the file's path
    bytes: int
    sha256: str
    etag: str | None
    sse: str                   # "AES256" | "aws:kms" | "none" | "n/a" — as the server reports it
    url: str | None
    url_expires_us: int | None
    resumed_parts: int         # parts found already on the server and not sent again


class TransferError(Exception):
    """A failed transfer, with a message meant for an operator.

    ``code``/``status`` carry the S3 error code and HTTP status when there was one.
    """

    def __init__(self, message: str, code: str | None = None, status: int | None = None,
                 server_message: str = ""):
        super().__init__(message)
        self.code = code
        self.status = status
        self.server_message = server_message


class TransferInterrupted(TransferError):
    """``should_stop()`` said stop: the parts sent so far are in the state; call again."""


class JsonFileState:
    """A :class:`TransferState` in a JSON file (CLI use and tests); written atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, state: dict) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- validation


def _validate(t: S3Target) -> None:
    """Reject a bad configuration before any byte is sent (clear, early errors)."""
    if not t.bucket or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", t.bucket):
        raise TransferError(f"S3 bucket name {t.bucket!r} is not valid: 3–63 characters, "
                            "lower-case letters, digits, dots and hyphens")
    if t.sse not in SSE_MODES:
        raise TransferError(f"S3 encryption setting {t.sse!r} is not one of {', '.join(SSE_MODES)}")
    if t.addressing not in ADDRESSING:
        raise TransferError(f"S3 addressing {t.addressing!r} is not one of {', '.join(ADDRESSING)}")
    if not MIN_PART // MiB <= t.part_size_mb <= MAX_PART // MiB:
        raise TransferError(f"S3 part size {t.part_size_mb} MB is outside 5…5120 MB")
    if t.access_key and not t.secret_key:
        raise TransferError(f"S3 access key {t.access_key!r} is set but the secret key is empty")
    if t.workers < 1 or t.attempts < 1 or t.backoff_s < 0:
        raise TransferError("S3 workers and attempts must be at least 1, backoff not negative")
    if t.link_expiry_s != 0:
        _check_expiry(t.link_expiry_s)


def _check_expiry(expiry_s: int) -> None:
    """SigV4 presigned links live at most 7 days; a longer setting would give broken links."""
    if not isinstance(expiry_s, int) or expiry_s < 1:
        raise TransferError(f"link expiry must be a positive number of seconds, not {expiry_s!r}")
    if expiry_s > MAX_LINK_S:
        raise TransferError(
            f"link expiry {expiry_s} s ({expiry_s / 86400:.1f} days) is longer than the 7 days "
            f"({MAX_LINK_S} s) that S3 signature version 4 allows for a presigned link; "
            "choose at most 7 days and make a new link later if needed")


def _full_key(t: S3Target, key: str) -> str:
    """The object key: ``prefix + key`` (``key`` is relative to the target's prefix)."""
    if not key or key.startswith("/"):
        raise TransferError(f"object key {key!r} must be non-empty and relative (no leading /)")
    full = f"{t.prefix}{key}"
    if len(full.encode()) > 1024:
        raise TransferError(f"object key is longer than 1024 bytes: {full[:80]}…")
    return full


def _resolve(t: S3Target, key: str) -> str:
    """A full object key from a relative key or an ``s3://bucket/key`` location."""
    if key.startswith("s3://"):
        bucket, _, full = key[5:].partition("/")
        if bucket != t.bucket or not full:
            raise TransferError(f"{key} is not an object of bucket {t.bucket!r}")
        return full
    return _full_key(t, key)


# --------------------------------------------------------------------------- S3 plumbing


def _client(t: S3Target):
    """A boto3 S3 client for *t* (storage/s3.py: the one way Varta builds one)."""
    return s3.client(t, pool=t.workers + 2)


_transient = s3.transient
_code_status = s3.code_status


def _scrub(text: str, t: S3Target) -> str:
    """Last line of defence: no message may carry the secret key."""
    return s3.scrub(text, t.secret_key)


def _explain(e: BaseException, t: S3Target, what: str, attempts: int) -> TransferError:
    """Turn a botocore exception into a message an operator can act on."""
    from botocore.exceptions import (ClientError, ConnectionError, HTTPClientError,
                                     NoCredentialsError, PartialCredentialsError, SSLError)

    where = t.where()
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    code = status = None
    server_msg = ""
    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        msg = f"no S3 credentials for {where}: set the access key and the secret key"
    elif isinstance(e, SSLError):
        msg = f"TLS error talking to {where} ({what}): {e}; check the address and the certificate"
    elif isinstance(e, ConnectionError):
        msg = (f"cannot connect to S3 endpoint {where} ({what}){tries}: {e}; check the address, "
               "the network and that the storage server is running")
    elif isinstance(e, HTTPClientError):
        msg = f"S3 endpoint {where} stopped answering ({what}){tries}: {e}"
    elif isinstance(e, ClientError):
        code, status = _code_status(e)
        server_msg = (e.response.get("Error") or {}).get("Message") or ""
        msg = _explain_code(t, what, code, status, server_msg, e.response, tries)
    else:
        msg = f"{what} failed at {where}: {type(e).__name__}: {e}"
    return TransferError(_scrub(msg, t), code=code, status=status,
                         server_message=_scrub(server_msg, t))


def _explain_code(t: S3Target, what: str, code: str | None, status: int | None,
                  server_msg: str, response: dict, tries: str) -> str:
    """Messages for the S3 error codes an operator meets when setting storage up."""
    where, b, ak = t.where(), t.bucket, t.access_key or "(default credentials)"
    region = ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get(
        "x-amz-bucket-region")
    if code == "SignatureDoesNotMatch":
        return (f"{where} rejected the request signature ({what}): the secret key does not "
                f"belong to access key {ak!r} — check the secret key (or the region/clock)")
    if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
        return f"access key {ak!r} is not known to {where} ({what}): check the access key"
    if code == "RequestTimeTooSkewed":
        return (f"this server's clock differs too much from {where}'s ({what}): "
                "fix the time (NTP) and try again")
    if code in ("NoSuchBucket",) or (status == 404 and what == "bucket check"):
        return (f"bucket {b!r} does not exist at {where} ({what}): create it, or run the "
                "storage check, which creates it")
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException") \
            or status == 301:
        return (f"bucket {b!r} is not in region {t.region!r} at {where}"
                + (f" but in {region!r}" if region else "")
                + f" ({what}): set the region to the bucket's")
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        return (f"{where} denied {what} in bucket {b!r} to access key {ak!r} (HTTP 403"
                f"{', ' + code if code and code != '403' else ''}): check the keys and that they "
                "may put, get and list objects and multipart uploads in the bucket")
    if code in ("QuotaExceeded", "XMinioStorageFull", "InsufficientStorage", "EntityTooLarge"):
        return f"{where} has no room for the package ({what}): {code}: {server_msg}"
    if code == "NoSuchUpload":
        return f"{where} no longer knows the multipart upload ({what}); it will start over"
    return (f"{what} failed at {where}{tries}: {code or 'error'} (HTTP {status})"
            + (f": {server_msg}" if server_msg else ""))


class _Session:
    """One client plus our retry loop; ``stopping`` cuts a retry wait short."""

    def __init__(self, t: S3Target):
        self.t = t
        self.client = _client(t)
        self.stopping = threading.Event()

    def call(self, what: str, op: str, **kw) -> dict:
        """Run one S3 request, retrying transient failures with jittered exponential backoff."""
        fn = getattr(self.client, op)
        for attempt in range(1, self.t.attempts + 1):
            try:
                return fn(**kw)
            except Exception as e:  # noqa: BLE001 - classified just below
                if not _transient(e) or attempt == self.t.attempts:
                    raise _explain(e, self.t, what, attempt) from e
                delay = min(30.0, self.t.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                log.warning("S3 %s at %s failed (%s); retry %d of %d in %.1f s", what,
                            self.t.where(), type(e).__name__, attempt, self.t.attempts - 1, delay)
                if self.stopping.wait(delay):
                    raise TransferInterrupted(f"interrupted while retrying {what}") from e
        raise AssertionError("unreachable")


REFUSALS = ("NotImplemented", "AccessControlListNotSupported", "InvalidArgument",
            "InvalidRequest", "InvalidEncryptionAlgorithmError", "KMS.NotFoundException",
            "KMSNotConfigured", "XMinioKMSNotConfigured")


def _refusal(e: TransferError, acl: bool, sse: bool) -> str | None:
    """Which optional header ("acl"/"sse") the server refused, or None (a real error).

    Judged from the error code and the server's own message (never our text, which holds
    the key name).
    """
    if e.code == "AccessControlListNotSupported":
        return "acl" if acl else None
    if e.code == "AccessDenied":
        # AWS wants s3:PutObjectAcl for any ACL header; a least-privilege key lacks it.
        # Without the ACL a key that may not put at all is denied again, with the real reason.
        return "acl" if acl else None
    if e.code not in REFUSALS:
        return None
    m = e.server_message.lower()
    if sse and any(w in m for w in ("encrypt", "kms", "sse")):
        return "sse"
    if acl and "acl" in m:
        return "acl"
    if e.code == "NotImplemented":
        # Unsaid which header: drop the ACL first — the bucket is private anyway, while
        # encryption is worth keeping; servers that refuse SSE usually say so (KMS…).
        return "acl" if acl else ("sse" if sse else None)
    return None


def _create(sess: _Session, what: str, op: str, sse_mode: str, **kw) -> tuple[dict, str]:
    """Create the object/upload as private and encrypted, dropping what the server refuses.

    ``bucket-owner-full-control`` is the one ACL that buckets with ACLs disabled accept
    and it keeps the object private where ACLs are enabled (moto serves a multipart
    object without one to anyone). Returns the response and the SSE that was asked for.
    """
    sse = {"auto": "AES256", "none": ""}.get(sse_mode, sse_mode)
    acl = "bucket-owner-full-control"
    while True:
        args = dict(kw)
        if acl:
            args["ACL"] = acl
        if sse:
            args["ServerSideEncryption"] = sse
        try:
            return sess.call(what, op, **args), sse or "none"
        except TransferError as e:
            refused = _refusal(e, bool(acl), bool(sse))
            if refused == "acl":
                log.info("S3 %s refused the object ACL (%s); relying on the bucket's privacy",
                         sess.t.where(), e.code)
                acl = ""
            elif refused == "sse" and sse_mode == "auto":
                log.warning("S3 %s refused server-side encryption (%s); storing without it",
                            sess.t.where(), e.code)
                sse = ""
            elif refused == "sse":
                raise TransferError(
                    f"{sess.t.where()} refused server-side encryption {sse} ({e.code}: "
                    f"{e.server_message}); enable encryption on the storage server or set the "
                    "encryption setting to 'auto' to store without it", e.code, e.status) from e
            else:
                raise


# --------------------------------------------------------------------------- hashing


def _sha256_file(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    """SHA-256 of a file in 8 MiB reads (hashlib releases the GIL on big buffers)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            if should_stop and should_stop():
                raise TransferInterrupted("interrupted while hashing the package, before upload")
    return h.hexdigest()


def _read_exact(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes at ``offset`` (pread is safe from several threads)."""
    chunks, got = [], 0
    while got < length:
        b = os.pread(fd, length - got, offset + got)
        if not b:
            raise TransferError("the package got shorter while it was being uploaded")
        chunks.append(b)
        got += len(b)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _multipart_etag(md5s: list[str]) -> str:
    """The ETag S3 computes for a multipart object without SSE-KMS/SSE-C."""
    return hashlib.md5(b"".join(bytes.fromhex(m) for m in md5s)).hexdigest() + f"-{len(md5s)}"


# --------------------------------------------------------------------------- upload


def _part_size(size: int, t: S3Target) -> int:
    """The configured part size, doubled until the file fits in 10 000 parts."""
    ps = t.part_size_mb * MiB
    while -(-size // ps) > MAX_PARTS and ps < MAX_PART:
        ps *= 2
    return min(ps, MAX_PART)


def _plan(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) for every part."""
    return [(i // part_size + 1, i, min(part_size, size - i)) for i in range(0, size, part_size)]


def _same_upload(saved: dict | None, t: S3Target, full_key: str, size: int, mtime: int,
                 sha256: str | None = None) -> bool:
    """Is *saved* an upload of this very file to this very object? The same file is the
    same size and mtime, or (a copy of it on another node, which continues an upload the
    first node began) the same size and SHA-256."""
    same_file = saved and (saved.get("mtime") == mtime or (sha256 and saved.get("sha256") == sha256))
    return bool(saved) and bool(same_file) and saved.get("version") == STATE_VERSION and all((
        saved.get("endpoint") == t.endpoint_url, saved.get("bucket") == t.bucket,
        saved.get("key") == full_key, saved.get("size") == size))


def upload_to_s3(path: Path, key: str, target: S3Target, state: TransferState | None = None,
                 progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                 *, sha256: str | None = None) -> TransferResult:
    """Upload *path* as ``target.prefix + key``: private, encrypted where possible, resumable.

    * ``state``: where the multipart upload is remembered after every part; a later call
      with the same file (size + mtime) and key continues it — parts the server still has
      with the same size and ETag are kept, an upload id the server forgot starts over.
      A state saved as completed makes the call only re-check the object and re-link it.
    * ``progress(done_bytes, total_bytes)``: after every part (and once at the start).
    * ``should_stop()``: polled between parts; when true, the parts in flight finish, the
      state is saved and :class:`TransferInterrupted` (a :class:`TransferError`) is raised.
    * ``sha256``: the package's SHA-256 when the caller already knows it (saves a read).

    Files smaller than one part go up in a single PUT. After completion the object is
    checked with HEAD (size, SHA-256 metadata, ETag where computable) and the result
    reports the encryption the server states. Raises :class:`TransferError`.
    """
    _validate(target)
    path = Path(path)
    full_key = _full_key(target, key)
    try:
        st = path.stat()
    except OSError as e:
        raise TransferError(f"cannot read the package {path}: {e.strerror}") from e
    size, mtime = st.st_size, st.st_mtime_ns
    sess = _Session(target)
    saved = state.load() if state else None
    if not _same_upload(saved, target, full_key, size, mtime, sha256):
        if saved and saved.get("upload_id") and not saved.get("completed"):
            _abort_stale(sess, saved)
        saved = None
    elif sha256 and saved.get("sha256") not in (None, sha256):
        _abort_stale(sess, saved)
        saved = None
    if saved and saved.get("completed"):
        done = _recheck_completed(sess, saved, size)
        if done:
            return _finish(sess, full_key, done, progress, size, len(saved.get("parts", [])))
        saved = None
    if saved is None and size < _part_size(size, target):
        return _single_put(sess, path, full_key, size, sha256, progress, should_stop)
    return _multipart(sess, path, full_key, size, mtime, state, saved, sha256, progress, should_stop)


def _abort_stale(sess: _Session, saved: dict) -> None:
    """Free the parts of an upload we will not continue (best effort: storage costs)."""
    if saved.get("endpoint") != sess.t.endpoint_url or saved.get("bucket") != sess.t.bucket:
        return
    try:
        sess.client.abort_multipart_upload(Bucket=saved["bucket"], Key=saved["key"],
                                           UploadId=saved["upload_id"])
        log.info("S3: aborted the stale multipart upload of %s", saved["key"])
    except Exception as e:  # noqa: BLE001 - best effort, the server may have dropped it
        log.info("S3: could not abort the stale upload of %s (%s)", saved.get("key"),
                 type(e).__name__)


def _recheck_completed(sess: _Session, saved: dict, size: int) -> dict | None:
    """HEAD of an object a previous call completed; None if it is gone or different."""
    try:
        head = sess.call("check the uploaded object", "head_object",
                         Bucket=sess.t.bucket, Key=saved["key"])
    except TransferError as e:
        if e.status == 404:
            return None
        raise
    if (head.get("ContentLength") != size
            or (head.get("Metadata") or {}).get("sha256") != saved.get("sha256")):
        return None
    return {"head": head, "sha256": saved["sha256"], "expected_etag": saved.get("expected_etag"),
            "sse_asked": saved.get("sse", "none")}


def _single_put(sess: _Session, path: Path, full_key: str, size: int, sha256: str | None,
                progress: Progress | None, should_stop: Callable[[], bool] | None) -> TransferResult:
    """One PUT with Content-MD5 for a package smaller than a part."""
    if should_stop and should_stop():
        raise TransferInterrupted("interrupted before the upload started")
    data = path.read_bytes()
    if len(data) != size:
        raise TransferError(f"the package {path} changed while it was being read")
    sha = hashlib.sha256(data).hexdigest()
    if sha256 and sha256 != sha:
        raise TransferError(f"the package {path} does not have the expected SHA-256")
    md5 = hashlib.md5(data)
    if progress:
        progress(0, size)
    resp, sse_asked = _create(sess, f"upload of {full_key}", "put_object", sess.t.sse,
                              Bucket=sess.t.bucket, Key=full_key, Body=data,
                              ContentMD5=base64.b64encode(md5.digest()).decode(),
                              ContentType=_content_type(path), Metadata={"sha256": sha})
    etag = resp.get("ETag", "").strip('"')
    expected = md5.hexdigest() if etag == md5.hexdigest() else None
    head = sess.call("check the uploaded object", "head_object", Bucket=sess.t.bucket, Key=full_key)
    done = {"head": head, "sha256": sha, "expected_etag": expected, "sse_asked": sse_asked}
    return _finish(sess, full_key, done, progress, size, 0)


def _content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _multipart(sess: _Session, path: Path, full_key: str, size: int, mtime: int,
               state: TransferState | None, saved: dict | None, sha256: str | None,
               progress: Progress | None, should_stop: Callable[[], bool] | None) -> TransferResult:
    """Create or resume the multipart upload, send the missing parts, complete, verify."""
    t = sess.t
    kept: dict[int, dict] | None = {}
    if saved:
        sha256 = sha256 or saved.get("sha256")  # same file (size + mtime): no need to re-read
        kept = _server_parts(sess, saved)
        if kept is None:
            saved, kept = None, {}
    if saved:
        st = dict(saved)
        log.info("S3: resuming upload of %s: %d of %d parts on the server", full_key, len(kept),
                 len(_plan(size, st["part_size"])))
    else:
        if should_stop and should_stop():
            raise TransferInterrupted("interrupted before the upload started")
        sha = sha256 or _sha256_file(path, should_stop)
        resp, sse_asked = _create(sess, f"start of the upload of {full_key}",
                                  "create_multipart_upload", t.sse, Bucket=t.bucket,
                                  Key=full_key, ContentType=_content_type(path),
                                  Metadata={"sha256": sha})
        st = {"version": STATE_VERSION, "endpoint": t.endpoint_url, "bucket": t.bucket,
              "key": full_key, "upload_id": resp["UploadId"], "part_size": _part_size(size, t),
              "size": size, "mtime": mtime, "sha256": sha, "sse": sse_asked, "parts": []}
    st["parts"] = [kept[n] for n in sorted(kept)]
    if state:
        state.save(st)
    parts = _send_parts(sess, path, st, kept, state, progress, should_stop)
    _check_unchanged(path, size, mtime)
    done = _complete(sess, st, parts)
    if state:
        state.save({**st, "completed": True, "expected_etag": done["expected_etag"]})
    return _finish(sess, full_key, done, progress, size, len(kept))


def _server_parts(sess: _Session, saved: dict) -> dict[int, dict] | None:
    """Saved parts the server still has with the same size and ETag; None: upload gone."""
    server: dict[int, dict] = {}
    marker = 0
    while True:
        try:
            r = sess.call("listing the parts already uploaded", "list_parts",
                          Bucket=saved["bucket"], Key=saved["key"], UploadId=saved["upload_id"],
                          PartNumberMarker=marker)
        except TransferError as e:
            if e.code == "NoSuchUpload" or e.status == 404:
                log.warning("S3: the server no longer knows upload %s… of %s; starting over",
                            saved["upload_id"][:12], saved["key"])
                return None
            raise
        for p in r.get("Parts", []):
            server[p["PartNumber"]] = p
        if not r.get("IsTruncated"):
            break
        marker = int(r["NextPartNumberMarker"])
    kept = {}
    for p in saved.get("parts", []):
        s = server.get(p["n"])
        if s and s.get("Size") == p["size"] and s.get("ETag", "").strip('"') == p["etag"].strip('"'):
            kept[p["n"]] = p
    return kept


def _send_parts(sess: _Session, path: Path, st: dict, kept: dict[int, dict],
                state: TransferState | None, progress: Progress | None,
                should_stop: Callable[[], bool] | None) -> list[dict]:
    """Send the parts not in *kept*, ``workers`` at a time; save the state after each.

    On an error or a stop request no new part starts; the parts in flight finish (so
    they are saved and need not be sent again), then the error is raised.
    """
    t, size = sess.t, st["size"]
    done = dict(kept)
    todo = [p for p in _plan(size, st["part_size"]) if p[0] not in done]
    sent = sum(p["size"] for p in done.values())
    if progress:
        progress(sent, size)
    failure: BaseException | None = None
    stopped = False
    fd = os.open(path, os.O_RDONLY)
    try:
        with ThreadPoolExecutor(max_workers=t.workers, thread_name_prefix="s3-part") as pool:
            running: dict[Future, tuple[int, int, int]] = {}
            queue = iter(todo)
            while True:
                while failure is None and not stopped and len(running) < t.workers:
                    if should_stop and should_stop():
                        stopped = True
                        sess.stopping.set()
                        break
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    running[pool.submit(_send_part, sess, fd, st, *nxt)] = nxt
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    try:
                        part = fut.result()
                    except BaseException as e:  # noqa: BLE001 - re-raised below
                        failure = failure or e
                        continue
                    done[part["n"]] = part
                    sent += part["size"]
                    st["parts"] = [done[n] for n in sorted(done)]
                    if state:
                        state.save(st)
                    if progress:
                        progress(sent, size)
    finally:
        os.close(fd)
    if failure is not None and not isinstance(failure, TransferInterrupted):
        raise failure
    if stopped or failure is not None:
        total = len(_plan(size, st["part_size"]))
        raise TransferInterrupted(
            f"upload of {st['key']} to {t.where()} interrupted with {len(done)} of {total} "
            "parts sent; they are saved and the next attempt continues from there")
    return [done[n] for n in sorted(done)]


def _send_part(sess: _Session, fd: int, st: dict, n: int, offset: int, length: int) -> dict:
    """Read and send one part, with exactly one check that the server got it intact.

    Over HTTPS botocore sends S3 bodies unsigned (TLS protects the transport), so the part
    carries Content-MD5 and the server rejects a corrupted one; its MD5 also lets the final
    multipart ETag be checked. Over plain HTTP SigV4 already signs the body's SHA-256, which
    the server checks: a second hash would only cost CPU (bench/RESULTS.md §9: ×1.3 on
    loopback), so there the size and the SHA-256 metadata are what the end checks.
    """
    data = _read_exact(fd, length, offset)
    extra, md5 = {}, None
    if sess.t.content_md5 == "always" or not _plain_http(sess.t):
        digest = hashlib.md5(data)
        md5 = digest.hexdigest()
        extra["ContentMD5"] = base64.b64encode(digest.digest()).decode()
    r = sess.call(f"upload of part {n} of {st['key']}", "upload_part", Bucket=st["bucket"],
                  Key=st["key"], UploadId=st["upload_id"], PartNumber=n, Body=data, **extra)
    return {"n": n, "etag": r["ETag"].strip('"'), "size": length, "md5": md5}


def _plain_http(t: S3Target) -> bool:
    return bool(t.endpoint_url) and t.endpoint_url.lower().startswith("http://")


def _check_unchanged(path: Path, size: int, mtime: int) -> None:
    st = path.stat()
    if st.st_size != size or st.st_mtime_ns != mtime:
        raise TransferError(f"the package {path} changed during the upload; it was not completed")


def _complete(sess: _Session, st: dict, parts: list[dict]) -> dict:
    """Complete the upload; a lost reply to a complete that did happen is recognised."""
    t = sess.t
    md5_etags = all(p.get("md5") and p["etag"].strip('"') == p["md5"] for p in parts)
    expected = _multipart_etag([p["md5"] for p in parts]) if md5_etags else None
    try:
        sess.call(f"completion of the upload of {st['key']}", "complete_multipart_upload",
                  Bucket=t.bucket, Key=st["key"], UploadId=st["upload_id"],
                  MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": f'"{p["etag"]}"'}
                                             for p in parts]})
    except TransferError as e:
        if e.code != "NoSuchUpload":
            raise
        # Completed by an earlier attempt whose reply was lost? Then the object is there.
        log.info("S3: completion of %s says NoSuchUpload; checking the object", st["key"])
    head = sess.call("check the uploaded object", "head_object", Bucket=t.bucket, Key=st["key"])
    return {"head": head, "sha256": st["sha256"], "expected_etag": expected,
            "sse_asked": st.get("sse", "none")}


def _finish(sess: _Session, full_key: str, done: dict, progress: Progress | None, size: int,
            resumed: int) -> TransferResult:
    """Verify the stored object against the file and make the result (and the link)."""
    t, head = sess.t, done["head"]
    where = f"s3://{t.bucket}/{full_key}"
    if head.get("ContentLength") != size:
        raise TransferError(f"{where} at {t.where()} has {head.get('ContentLength')} bytes, "
                            f"the package {size}: the upload is not intact")
    etag = (head.get("ETag") or "").strip('"') or None
    if done.get("expected_etag") and etag != done["expected_etag"]:
        raise TransferError(f"{where} at {t.where()} has ETag {etag}, expected "
                            f"{done['expected_etag']}: the stored object differs from the package")
    meta_sha = (head.get("Metadata") or {}).get("sha256")
    if meta_sha and meta_sha != done["sha256"]:
        raise TransferError(f"{where} carries SHA-256 {meta_sha}, the package {done['sha256']}")
    sse = head.get("ServerSideEncryption") or "none"
    if t.sse in ("AES256", "aws:kms") and sse == "none":
        raise TransferError(f"{where} was stored but {t.where()} does not confirm server-side "
                            f"encryption {t.sse}; check the storage server's encryption setup")
    if done.get("sse_asked") not in (None, "none") and sse == "none":
        log.warning("S3 %s stored %s without server-side encryption", t.where(), where)
    url = expires = None
    if t.link_expiry_s:
        url, expires = _presign_key(sess.client, t, full_key, t.link_expiry_s)
    if progress:
        progress(size, size)
    log.info("S3: uploaded %s (%d bytes, sse %s, %d parts resumed)", where, size, sse, resumed)
    return TransferResult(target="s3", location=where, bytes=size, sha256=done["sha256"],
                          etag=etag, sse=sse, url=url, url_expires_us=expires,
                          resumed_parts=resumed)


# --------------------------------------------------------------------------- links


def presign(target: S3Target, key: str, expiry_s: int | None = None) -> tuple[str, int]:
    """A presigned GET link to an uploaded object: ``(url, expires_us)``.

    *key* is relative to the prefix (as given to :func:`upload_to_s3`) or the result's
    ``s3://bucket/key`` location. Checks that the object still exists, so a new link for
    an old package fails clearly rather than giving a link to nothing.
    """
    expiry = target.link_expiry_s if expiry_s is None else expiry_s
    _check_expiry(expiry)
    target = dataclasses.replace(target, link_expiry_s=expiry)
    _validate(target)
    full_key = _resolve(target, key)
    sess = _Session(target)
    try:
        sess.call("check the object", "head_object", Bucket=target.bucket, Key=full_key)
    except TransferError as e:
        if e.status == 404:
            raise TransferError(f"s3://{target.bucket}/{full_key} does not exist at "
                                f"{target.where()}: no link can be made", e.code, 404) from e
        raise
    return _presign_key(sess.client, target, full_key, expiry)


def _presign_key(client, t: S3Target, full_key: str, expiry: int) -> tuple[str, int]:
    """Sign a GET (offline: no request); the download is offered under the file's name."""
    params = {"Bucket": t.bucket, "Key": full_key}
    name = full_key.rsplit("/", 1)[-1]
    if re.fullmatch(r"[A-Za-z0-9._\-]+", name):
        params["ResponseContentDisposition"] = f'attachment; filename="{name}"'
    url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=expiry)
    return url, now_us() + expiry * US


# --------------------------------------------------------------------------- check


def check_target(target: S3Target) -> str:
    """Check endpoint, credentials and bucket; create a missing bucket as private.

    Returns a one-line report for the operator; raises :class:`TransferError` with the
    reason otherwise (including a bucket whose policy makes it public).
    """
    _validate(target)
    sess = _Session(target)
    notes: list[str] = []
    try:
        head = sess.call("bucket check", "head_bucket", Bucket=target.bucket)
    except TransferError as e:
        if e.status == 404 or e.code in ("NoSuchBucket", "404", "NotFound"):
            _create_bucket(sess)
            notes.append("created the bucket (private" + _block_public(sess) + ")")
        elif e.status == 403:
            raise _why_forbidden(sess) from e
        else:
            raise
    else:
        notes.append(_region_note(target, head))
        notes.append(_privacy_note(sess))
    return (f"S3 storage OK: bucket {target.bucket!r} at {target.where()} reachable with access "
            f"key {target.access_key or '(default credentials)'!r}; " + "; ".join(n for n in notes if n))


def _region_note(t: S3Target, head: dict) -> str:
    """A bucket in another AWS region works for uploads (botocore follows the redirect)
    but its presigned links would not: say so before the first package needs one."""
    region = head.get("BucketRegion") or (
        (head.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("x-amz-bucket-region")
    if not region or region == t.region:
        return ""
    if t.endpoint_url is None:
        raise TransferError(f"bucket {t.bucket!r} is in AWS region {region!r}, not {t.region!r}: "
                            "set the region to the bucket's, or download links will not work")
    return f"the server reports region {region!r} for the bucket (configured {t.region!r})"


def _why_forbidden(sess: _Session) -> TransferError:
    """HEAD answers a bare 403; a LIST says why (wrong secret, unknown key, no permission)."""
    try:
        sess.call("bucket check", "list_objects_v2", Bucket=sess.t.bucket, MaxKeys=1)
    except TransferError as e:
        return e
    return TransferError(f"{sess.t.where()} refuses to describe bucket {sess.t.bucket!r} "
                         "(HEAD 403) but lists it; check the key's permissions", "AccessDenied", 403)


def _create_bucket(sess: _Session) -> None:
    args: dict[str, Any] = {"Bucket": sess.t.bucket}
    if sess.t.region and sess.t.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": sess.t.region}
    try:
        sess.call("creating the bucket", "create_bucket", **args)
    except TransferError as e:
        if e.code not in ("BucketAlreadyOwnedByYou",):
            raise
    log.info("S3: created bucket %s at %s", sess.t.bucket, sess.t.where())


def _block_public(sess: _Session) -> str:
    """Block public access on a new bucket where the server supports it."""
    try:
        sess.call("blocking public access", "put_public_access_block", Bucket=sess.t.bucket,
                  PublicAccessBlockConfiguration={
                      "BlockPublicAcls": True, "IgnorePublicAcls": True,
                      "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        return ", public access blocked"
    except TransferError as e:
        if e.code in ("NotImplemented", "XNotImplemented", "MethodNotAllowed") or e.status in (405, 501):
            return "; the server has no public access block"
        raise


def _privacy_note(sess: _Session) -> str:
    """Refuse a bucket whose policy is public; say whether public access is blocked."""
    b = sess.t.bucket
    try:
        status = sess.client.get_bucket_policy_status(Bucket=b)
        if (status.get("PolicyStatus") or {}).get("IsPublic"):
            raise TransferError(f"bucket {b!r} at {sess.t.where()} is public (its policy lets "
                                "anyone read it): evidence must not go there; make it private")
    except TransferError:
        raise
    except Exception:  # noqa: BLE001 - not supported or not allowed: nothing to learn
        pass
    try:
        pab = sess.client.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
        if all(pab.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                    "RestrictPublicBuckets")):
            return "public access blocked"
        return "public access is not fully blocked on the bucket (objects are uploaded private)"
    except Exception:  # noqa: BLE001 - absent or not supported
        return "objects are uploaded private"


# --------------------------------------------------------------------------- folder


def copy_to_folder(path: Path, target: FolderTarget, progress: Progress | None = None) -> TransferResult:
    """Copy *path* into the folder: ``NAME.part`` → fsync → verify SHA-256 from disk → rename.

    A file of the same name with the same content counts as done; with other content it
    is an error (evidence is never overwritten). Raises :class:`TransferError`.
    """
    path, folder = Path(path), Path(target.folder)
    if not folder.is_dir():
        raise TransferError(f"folder {folder} does not exist or is not a folder "
                            "(is the drive mounted?)")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise TransferError(f"cannot read the package {path}: {e.strerror}") from e
    dest = folder / path.name
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        return _already_there(path, dest, size)
    _check_space(folder, size, part)
    try:
        sha = _copy_file(path, part, size, progress)
        if _sha256_from_disk(part) != sha:
            raise TransferError(f"the copy in {folder} does not match the package (SHA-256); "
                                "the drive may be failing")
        os.replace(part, dest)
        fsync_dir(folder)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise TransferError(f"copy of {path.name} to {folder} failed: {e.strerror or e}") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return TransferResult(target="folder", location=str(dest), bytes=size, sha256=sha, etag=None,
                          sse="n/a", url=None, url_expires_us=None, resumed_parts=0)


def _already_there(path: Path, dest: Path, size: int) -> TransferResult:
    sha = _sha256_file(path)
    if dest.stat().st_size != size or _sha256_file(dest) != sha:
        raise TransferError(f"{dest} already exists with different content; not overwritten")
    return TransferResult(target="folder", location=str(dest), bytes=size, sha256=sha, etag=None,
                          sse="n/a", url=None, url_expires_us=None, resumed_parts=0)


def _check_space(folder: Path, size: int, part: Path) -> None:
    free = shutil.disk_usage(folder).free + (part.stat().st_size if part.exists() else 0)
    if free < size:
        raise TransferError(f"not enough space in {folder}: the package needs "
                            f"{size / MiB:.0f} MB, {free / MiB:.0f} MB free")


def _copy_file(src: Path, part: Path, size: int, progress: Progress | None) -> str:
    """Copy and hash in one pass; fsync; returns the source's SHA-256."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    done = 0
    if progress:
        progress(0, size)
    with open(src, "rb") as fi, open(part, "wb") as fo:
        while n := fi.readinto(buf):
            h.update(view[:n])
            fo.write(view[:n])
            done += n
            if progress:
                progress(done, size)
        fo.flush()
        os.fsync(fo.fileno())
    if done != size:
        raise TransferError(f"the package {src} changed while it was being copied")
    return h.hexdigest()


def _sha256_from_disk(path: Path) -> str:
    """Hash the copy after dropping it from the page cache, so the disk is what is read."""
    with open(path, "rb") as fh:
        try:
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        except (AttributeError, OSError):
            pass
    return _sha256_file(path)


