"""S3 plumbing shared by every use of object storage (adapter): the archive
(storage/objects.py) and evidence transfer (evidence/transfer.py).

One way to build a client, one rule for what is worth another try, and one last line of
defence that keeps the secret key out of every message.
"""

from __future__ import annotations


def client(cfg, pool: int = 10, quick: bool = False):
    """A boto3 S3 client for ``cfg`` (anything with ``endpoint_url``, ``region``,
    ``access_key``, ``secret_key``, ``addressing``, ``connect_timeout_s``, ``read_timeout_s``).

    Checksums only where required: boto3 ≥ 1.36 otherwise adds CRC trailers that several
    S3-compatible servers reject; we send Content-MD5 ourselves, which every server checks.
    ``addressing="auto"`` means path style for a custom endpoint (MinIO/Ceph rarely have
    wildcard DNS) and botocore's choice for AWS. ``quick``: a status check that must answer
    within seconds even when the store hangs (short timeouts, no retries).
    """
    import boto3
    import botocore.config

    style = cfg.addressing if cfg.addressing != "auto" else ("path" if cfg.endpoint_url else "auto")
    conf = botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": style},
        retries={"mode": "standard", "max_attempts": 1 if quick else 2},  # callers wrap these with their own
        connect_timeout=min(cfg.connect_timeout_s, 3.0) if quick else cfg.connect_timeout_s,
        read_timeout=min(cfg.read_timeout_s, 5.0) if quick else cfg.read_timeout_s,
        max_pool_connections=max(10, pool),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()  # own session: the default one is not thread-safe
    return session.client(
        "s3", endpoint_url=cfg.endpoint_url or None, region_name=cfg.region,
        aws_access_key_id=cfg.access_key or None, aws_secret_access_key=cfg.secret_key or None,
        config=conf)


def code_status(e: BaseException) -> tuple[str | None, int | None]:
    """The S3 error code and HTTP status of a botocore error (None, None for others)."""
    resp = getattr(e, "response", None) or {}
    code = (resp.get("Error") or {}).get("Code")
    status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return (str(code) if code else None), status


def transient(e: BaseException) -> bool:
    """Worth another try: connection trouble, timeouts, throttling and 5xx (not 501)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, SSLError

    if isinstance(e, SSLError):
        return False
    if isinstance(e, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(e, ClientError):
        code, status = code_status(e)
        if code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
                    "Throttling", "ThrottlingException", "RequestTimeoutException"):
            return True
        return status is not None and (status in (408, 429) or (status >= 500 and status != 501))
    return False


def scrub(text: str, secret: str) -> str:
    """Last line of defence: no message may carry the secret key."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def describe(e: BaseException, where: str, bucket: str, access_key: str, what: str) -> str:
    """A botocore error as an operator can act on it (never with the secret key: callers
    pass the result through :func:`scrub`)."""
    from botocore.exceptions import (ClientError, ConnectionError, HTTPClientError, NoCredentialsError,
                                     PartialCredentialsError, SSLError)

    ak = access_key or "(default credentials)"
    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return f"no S3 credentials for {where}: set the access key and the secret key"
    if isinstance(e, SSLError):
        return f"TLS error talking to {where} ({what}): {e}; check the address and the certificate"
    if isinstance(e, ConnectionError):
        return (f"cannot connect to S3 endpoint {where} ({what}): {e}; check the address, the network "
                "and that the storage server is running")
    if isinstance(e, HTTPClientError):
        return f"S3 endpoint {where} stopped answering ({what}): {e}"
    if isinstance(e, ClientError):
        code, status = code_status(e)
        server_msg = (e.response.get("Error") or {}).get("Message") or ""
        if code == "SignatureDoesNotMatch":
            return (f"{where} rejected the request signature ({what}): the secret key does not belong to "
                    f"access key {ak!r}")
        if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
            return f"access key {ak!r} is not known to {where} ({what})"
        if code == "NoSuchBucket":
            return f"bucket {bucket!r} does not exist at {where} ({what})"
        if code in ("AccessDenied", "403") or status == 403:
            return f"{where} denied {what} in bucket {bucket!r} to access key {ak!r} (HTTP 403, {code})"
        return f"{what} failed at {where}: {code or 'error'} (HTTP {status})" + (f": {server_msg}" if server_msg
                                                                                 else "")
    return f"{what} failed at {where}: {type(e).__name__}: {e}"
