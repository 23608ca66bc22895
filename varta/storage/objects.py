"""The city's archive bucket (adapter): any S3-compatible store (AWS S3, Ceph RGW, MinIO…).

What the archive needs of a bucket and nothing more: put a file (hashing it on the way,
verifying it arrived whole), read a byte range, fetch a copy, delete in batches, legal
holds where the bucket has Object Lock, presigned links. Every call retries what is worth
retrying (connection trouble, 5xx, throttling) and otherwise raises :class:`StoreError`
with a message an operator can act on; the secret key never appears in one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from varta.storage import s3

log = logging.getLogger("varta.storage")

MiB = 1024 * 1024
SINGLE_PUT_MAX = 64 * MiB  # above this, a multipart upload
PART = 16 * MiB
CHUNK = 1 * MiB
SHA_META = "sha256"  # x-amz-meta-sha256: the content's SHA-256, hex


class StoreError(RuntimeError):
    """The store refused or could not be reached; ``transient``: worth trying again later."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None,
                 transient: bool = False):
        super().__init__(message)
        self.code, self.status, self.transient = code, status, transient


@dataclass
class S3Config:
    bucket: str
    endpoint_url: str = ""
    prefix: str = "varta/"
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    sse: str = "auto"  # auto (AES256 where the server offers it) | AES256 | aws:kms | none
    addressing: str = "auto"  # auto | path | virtual
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    attempts: int = 3

    @classmethod
    def from_settings(cls, settings) -> "S3Config":
        return cls(bucket=settings.archive_s3_bucket, endpoint_url=settings.archive_s3_endpoint_url,
                   prefix=settings.archive_s3_prefix, region=settings.archive_s3_region,
                   access_key=settings.archive_s3_access_key, secret_key=settings.archive_s3_secret_key,
                   sse=settings.archive_s3_sse, addressing="path" if settings.archive_s3_path_style else "auto")

    def where(self) -> str:
        return f"{self.endpoint_url or f'AWS S3 ({self.region})'} bucket {self.bucket}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None
    etag: str = ""


@dataclass(frozen=True)
class StoreInfo:
    reachable: bool
    object_lock: bool
    versioning: str
    detail: str = ""


class S3Store:
    """One bucket and prefix. Thread-safe (botocore clients are)."""

    backend = "s3"

    def __init__(self, cfg: S3Config):
        if not cfg.bucket:
            raise StoreError("archive_storage is s3 but archive_s3_bucket is empty: name the city's bucket")
        if bool(cfg.access_key) != bool(cfg.secret_key):
            raise StoreError("set both archive_s3_access_key and archive_s3_secret_key (or neither, to use the "
                             "machine's own AWS credentials)")
        if cfg.endpoint_url and not cfg.endpoint_url.startswith(("http://", "https://")):
            raise StoreError(f"archive_s3_endpoint_url {cfg.endpoint_url!r} must start with http:// or https://")
        self.cfg = cfg
        try:
            self.client = s3.client(cfg, pool=16)
        except Exception as exc:  # noqa: BLE001 - botocore's configuration errors
            raise StoreError(s3.scrub(f"the archive store settings are not usable: {exc}", cfg.secret_key)) from None
        self._sse = {"auto": "AES256", "none": ""}.get(cfg.sse, cfg.sse)
        self._sse_lock = threading.Lock()
        self._versioned: bool | None = None
        self._quick = None  # a client with short timeouts, for status checks

    # --- plumbing -------------------------------------------------------------------
    def key(self, rel: str) -> str:
        return f"{self.cfg.prefix}{rel}"

    def _error(self, e: BaseException, what: str) -> StoreError:
        code, status = s3.code_status(e)
        msg = s3.describe(e, self.cfg.endpoint_url or f"AWS S3 ({self.cfg.region})", self.cfg.bucket,
                          self.cfg.access_key, what)
        return StoreError(s3.scrub(msg, self.cfg.secret_key), code, status, s3.transient(e))

    def call(self, what: str, op: str, attempts: int | None = None, quick: bool = False, **kw):
        if quick:
            if self._quick is None:
                self._quick = s3.client(self.cfg, quick=True)
            fn = getattr(self._quick, op)
        else:
            fn = getattr(self.client, op)
        n = attempts or self.cfg.attempts
        for attempt in range(1, n + 1):
            try:
                return fn(Bucket=self.cfg.bucket, **kw)
            except Exception as e:  # noqa: BLE001 - classified below
                if not s3.transient(e) or attempt == n:
                    raise self._error(e, what) from None
                time.sleep(min(5.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    # --- the bucket -----------------------------------------------------------------
    def check(self) -> StoreInfo:
        """Reachable? Object Lock on? (What protection of holds is in force.)"""
        try:
            self.call("bucket check", "head_bucket", attempts=1, quick=True)
        except StoreError as exc:
            return StoreInfo(False, False, "", str(exc))
        lock = False
        try:
            conf = self.call("Object Lock check", "get_object_lock_configuration", attempts=1, quick=True)
            lock = (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
        except StoreError:
            lock = False  # ObjectLockConfigurationNotFoundError: a bucket without Object Lock
        try:
            versioning = self.call("versioning check", "get_bucket_versioning", attempts=1,
                                   quick=True).get("Status", "") or "off"
        except StoreError:
            versioning = "unknown"
        return StoreInfo(True, lock, versioning)

    # --- objects --------------------------------------------------------------------
    def _put_args(self, sha: str, content_type: str) -> dict:
        args = {"Metadata": {SHA_META: sha}, "ContentType": content_type}
        if self._sse:
            args["ServerSideEncryption"] = self._sse
        return args

    def _with_sse_fallback(self, what: str, fn):
        try:
            return fn()
        except StoreError as exc:
            if self.cfg.sse == "auto" and self._sse and exc.code in ("InvalidArgument", "NotImplemented",
                                                                    "InvalidEncryptionAlgorithmError"):
                with self._sse_lock:
                    self._sse = ""
                log.warning("archive: %s refused server-side encryption (%s); storing without it "
                            "(set archive_s3_sse to require it)", self.cfg.where(), exc.code)
                return fn()
            raise

    def put_file(self, rel: str, path: Path, content_type: str = "video/mp4") -> ObjectInfo:
        """Upload ``path`` as ``rel``; its SHA-256 is computed from the bytes sent and kept in
        the object's metadata; the object is then read back (HEAD) and checked."""
        key = self.key(rel)
        size = os.path.getsize(path)
        if size <= SINGLE_PUT_MAX:
            data = Path(path).read_bytes()
            if len(data) != size:
                raise StoreError(f"{path} changed while being shipped")
            sha = hashlib.sha256(data).hexdigest()
            md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
            self._with_sse_fallback("upload", lambda: self.call(
                f"upload of {rel}", "put_object", Key=key, Body=data, ContentMD5=md5,
                **self._put_args(sha, content_type)))
        else:
            sha = self._multipart(rel, key, Path(path), size, content_type)
        got = self.head(rel)
        if got is None or got.size != size or got.sha256 != sha:
            raise StoreError(f"{rel} did not arrive whole in {self.cfg.where()} "
                             f"(sent {size} bytes, SHA-256 {sha[:12]}…; the store has "
                             f"{got.size if got else 'nothing'})", transient=True)
        return ObjectInfo(key, size, sha, got.etag)

    def _multipart(self, rel: str, key: str, path: Path, size: int, content_type: str) -> str:
        from varta.storage.files import sha256_file

        sha = sha256_file(path)  # the hash first: it goes into the object's metadata
        up = self._with_sse_fallback("upload", lambda: self.call(
            f"upload of {rel}", "create_multipart_upload", Key=key, **self._put_args(sha, content_type)))
        uid = up["UploadId"]
        parts = []
        try:
            with path.open("rb") as fh:
                n = 0
                while chunk := fh.read(PART):
                    n += 1
                    md5 = base64.b64encode(hashlib.md5(chunk, usedforsecurity=False).digest()).decode()
                    r = self.call(f"upload of {rel} (part {n})", "upload_part", Key=key, UploadId=uid,
                                  PartNumber=n, Body=chunk, ContentMD5=md5)
                    parts.append({"PartNumber": n, "ETag": r["ETag"]})
            self.call(f"upload of {rel}", "complete_multipart_upload", Key=key, UploadId=uid,
                      MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.call("abort", "abort_multipart_upload", attempts=1, Key=key, UploadId=uid)
            except StoreError:
                pass
            raise
        return sha

    def head(self, rel: str) -> ObjectInfo | None:
        try:
            r = self.call(f"check of {rel}", "head_object", Key=self.key(rel))
        except StoreError as exc:
            if exc.status == 404 or exc.code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(self.key(rel), int(r["ContentLength"]), (r.get("Metadata") or {}).get(SHA_META),
                          r.get("ETag", ""))

    def get(self, rel: str, byte_range: str | None = None):
        """The object's streaming response: (status, headers, body). ``byte_range`` is an
        HTTP Range header value ("bytes=0-99"), passed through as the browser sent it."""
        kw = {"Range": byte_range} if byte_range else {}
        try:
            r = self.call(f"read of {rel}", "get_object", Key=self.key(rel), **kw)
        except StoreError as exc:
            if exc.code in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{rel} is not in {self.cfg.where()}") from None
            raise
        status = r["ResponseMetadata"]["HTTPStatusCode"]
        headers = {"content-length": str(r["ContentLength"]), "accept-ranges": "bytes"}
        if r.get("ContentRange"):
            headers["content-range"] = r["ContentRange"]
        if r.get("ETag"):
            headers["etag"] = r["ETag"]
        return status, headers, r["Body"]

    def iter_range(self, rel: str, byte_range: str | None = None) -> tuple[int, dict, Iterator[bytes]]:
        status, headers, body = self.get(rel, byte_range)

        def chunks():
            try:
                yield from body.iter_chunks(256 * 1024)
            finally:
                body.close()

        return status, headers, chunks()

    def download(self, rel: str, dest: Path, sha256: str | None = None) -> Path:
        """A local copy of the object (written beside, renamed when whole; checked against
        ``sha256`` when the index has it)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        _, _, body = self.get(rel)
        h = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for chunk in body.iter_chunks(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken connection mid-body
            tmp.unlink(missing_ok=True)
            raise StoreError(f"read of {rel} from {self.cfg.where()} broke off: {exc}", transient=True) from None
        finally:
            body.close()
        if sha256 and h.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{rel} in {self.cfg.where()} does not match its SHA-256 in the index "
                             f"({h.hexdigest()[:12]}… ≠ {sha256[:12]}…): the object was changed")
        os.replace(tmp, dest)
        return dest

    def versioned(self) -> bool:
        """Versioning on (always so with Object Lock): a plain DELETE only adds a delete
        marker there, so deletion names each version."""
        if self._versioned is None:
            r = self.call("versioning check", "get_bucket_versioning")
            self._versioned = r.get("Status") == "Enabled"
        return self._versioned

    def delete_many(self, rels: list[str]) -> dict[str, str]:
        """Delete in batches of 1,000 (DeleteObjects), every version where the bucket keeps
        versions; returns rel → why, for those the store kept (a legal hold, a retention
        period, a refusal, the store unreachable)."""
        failed: dict[str, str] = {}
        by_key = {self.key(r): r for r in rels}
        try:
            targets = self._versions(list(by_key)) if self.versioned() else [{"Key": k} for k in by_key]
        except StoreError as exc:
            return {rel: str(exc) for rel in rels}
        for i in range(0, len(targets), 1000):
            batch = targets[i:i + 1000]
            try:
                r = self.call("deletion", "delete_objects", Delete={"Objects": batch, "Quiet": True})
            except StoreError as exc:
                failed.update({by_key[o["Key"]]: str(exc) for o in batch})
                continue
            for err in r.get("Errors") or []:
                rel = by_key.get(err.get("Key"), err.get("Key"))
                failed[rel] = f"{err.get('Code')}: {err.get('Message', '')}".strip()
        return failed

    def _versions(self, keys: list[str]) -> list[dict]:
        """Every version and delete marker of ``keys``, listed once per folder (a camera's
        day): retention deletes a day of a camera at a time, so this is a few listings."""
        wanted = set(keys)
        out = []
        for folder in sorted({k.rsplit("/", 1)[0] + "/" if "/" in k else "" for k in keys}):
            kw = {"Prefix": folder}
            while True:
                r = self.call("listing of versions", "list_object_versions", **kw)
                for v in (r.get("Versions") or []) + (r.get("DeleteMarkers") or []):
                    if v["Key"] in wanted:
                        out.append({"Key": v["Key"], "VersionId": v["VersionId"]})
                if not r.get("IsTruncated"):
                    break
                kw = {"Prefix": folder, "KeyMarker": r["NextKeyMarker"],
                      "VersionIdMarker": r["NextVersionIdMarker"]}
        return out

    def delete(self, rel: str) -> None:
        self.call(f"deletion of {rel}", "delete_object", Key=self.key(rel))

    def set_legal_hold(self, rel: str, on: bool) -> None:
        self.call(f"legal hold of {rel}", "put_object_legal_hold", Key=self.key(rel),
                  LegalHold={"Status": "ON" if on else "OFF"})

    def legal_hold(self, rel: str) -> bool:
        try:
            r = self.call(f"legal hold of {rel}", "get_object_legal_hold", Key=self.key(rel))
        except StoreError as exc:
            if exc.code in ("NoSuchObjectLockConfiguration", "InvalidRequest"):
                return False
            raise
        return (r.get("LegalHold") or {}).get("Status") == "ON"

    def presign_get(self, rel: str, expires_s: int = 300) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.cfg.bucket,
                                                                        "Key": self.key(rel)},
                                                  ExpiresIn=int(expires_s))


def open_store(settings) -> S3Store | None:
    """The archive bucket when ``archive_storage`` is s3, else None (segments stay on the
    recording nodes' disks)."""
    if getattr(settings, "archive_storage", "local") != "s3":
        return None
    return S3Store(S3Config.from_settings(settings))
