"""A real S3-compatible server for tests and benchmarks: moto's standalone server.

Why a subprocess and not moto's in-process decorators: the code under test must talk
real HTTP (SigV4 signing, multipart, presigned links, connection errors), exactly as it
does to AWS S3, MinIO or Ceph RGW.

Use it from a test module (``tests/`` is on ``sys.path`` under pytest, like ``scenes``)::

    import s3server
    s3_server = s3server.s3_server   # the fixture, visible to pytest (and used for pyflakes)

    def test_x(s3_server):
        s3_server.endpoint_url       # http://127.0.0.1:PORT
        s3_server.access_key, s3_server.secret_key, s3_server.region, s3_server.client()

or ``with S3Server() as srv: …`` for a server of one's own (``srv.stop()``/``srv.start()``
restart it on the same port, empty). ``from tests.s3server import …`` works only where the
repository root is on ``sys.path`` (``python -m pytest``; plain ``pytest`` needs
``pythonpath = ["."]`` in the pytest settings).

Moto quirks worth knowing (moto 5.x):
* Signatures are not checked unless :meth:`S3Server.enforced_auth` is active; while it
  is, moto answers presigned GETs with HTTP 500 (it expects an ``Authorization`` header).
* An object completed by multipart upload without an ``x-amz-acl`` header has no ACL in
  moto and is served to anonymous GETs; real S3 keeps it private.
* ``PutPublicAccessBlock`` is accepted and stored but not enforced on reads.
* Objects above ~5 MiB are spooled to temporary files by the server process.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ACCESS_KEY = "varta-test-access"
SECRET_KEY = "varta-test-secret-do-not-log"
REGION = "us-east-1"


def moto_missing() -> str | None:
    """Why the moto server cannot run here, or None when it can."""
    for mod in ("moto.server", "flask", "werkzeug", "boto3"):
        try:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed: pip install 'moto[server]>=5' boto3"
        except ModuleNotFoundError:
            return f"{mod} is not installed: pip install 'moto[server]>=5' boto3"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Child side of Popen: die with the test process even if it is SIGKILLed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _server_command(port: int) -> list[str]:
    """The moto server entry point of *this* interpreter's environment."""
    script = Path(sys.executable).parent / "moto_server"
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


class S3Server:
    """moto's S3 server on a free 127.0.0.1 port, started and stopped by the caller.

    Usable as a context manager. ``access_key``/``secret_key`` are what clients should
    use; outside :meth:`enforced_auth` moto accepts any key.
    """

    def __init__(self, start_timeout: float = 30.0, log_dir: Path | None = None):
        self.start_timeout = start_timeout
        self._tmp = tempfile.mkdtemp(prefix="varta-moto-")
        self.log_path = Path(log_dir or self._tmp) / "moto_server.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle -------------------------------------------------------------------
    def start(self) -> "S3Server":
        """Start the server and wait until it answers HTTP.

        The first start picks a free port (retrying on a port race); a start after
        :meth:`stop` reuses the same port, so clients see the "same" server come back —
        empty, as moto keeps everything in memory.
        """
        why = moto_missing()
        if why:
            raise RuntimeError(why)
        if self.proc is not None:
            return self
        if self.port:
            if self._spawn():
                return self
            raise RuntimeError(f"moto server did not restart on port {self.port}; log:\n"
                               f"{self.log_tail()}")
        for _ in range(3):
            self.port = _free_port()
            if self._spawn():
                return self
        raise RuntimeError(f"moto server did not start on 127.0.0.1; log:\n{self.log_tail()}")

    def _spawn(self) -> bool:
        env = dict(os.environ)
        # The server must not pick up a developer's real AWS settings or proxies.
        for var in ("AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(var, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(16 * 1024 * 1024))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                _server_command(self.port), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=self._tmp,
                start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if self.answers():
                return True
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer within {self.start_timeout:.0f} s; "
                           f"log:\n{self.log_tail()}")

    def answers(self) -> bool:
        """True when the server answers an HTTP request (any status)."""
        try:
            with _opener().open(self.endpoint_url + "/moto-api/reset-auth", timeout=1) as r:
                return r.status < 600
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and anything it started (its whole process group)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    # --- state ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every bucket, object and IAM user (moto's reset API)."""
        self._post("/moto-api/reset", b"")

    def client(self, service: str = "s3", access_key: str | None = None,
               secret_key: str | None = None):
        """A boto3 client for inspecting the server from a test (path addressing)."""
        import boto3
        import botocore.config

        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(signature_version="s3v4",
                                          s3={"addressing_style": "path"}))

    @contextlib.contextmanager
    def enforced_auth(self) -> Iterator[tuple[str, str]]:
        """Make the server check SigV4 signatures; yields a valid (access_key, secret_key).

        moto only authenticates requests signed by one of its IAM users, so this creates
        a user with an allow-all policy first. Restored on exit. Presigned GETs fail with
        HTTP 500 while this is active (a moto limitation).
        """
        iam = self.client("iam")
        name = f"varta-{os.getpid()}-{time.monotonic_ns()}"
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self._post("/moto-api/reset-auth", b"0")
        try:
            yield key["AccessKeyId"], key["SecretAccessKey"]
        finally:
            self._post("/moto-api/reset-auth", b"inf")

    def _post(self, path: str, data: bytes) -> None:
        # Not a form: moto reads the raw body, which werkzeug empties for form posts.
        req = urllib.request.Request(self.endpoint_url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        with _opener().open(req, timeout=10) as r:
            r.read()


def _opener() -> urllib.request.OpenerDirector:
    """urllib without proxies: the server is on loopback."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server per test module (tests use their own buckets)."""
    why = moto_missing()
    if why:
        pytest.skip(f"S3 tests need the moto server: {why}")
    srv = S3Server()
    try:
        srv.start()
        yield srv
    finally:
        srv.close()
