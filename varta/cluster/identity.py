"""Who this node is: a stable id and keys kept in its data folder, and the folder's lock.

The id is made once (a random UUID) and kept in ``$VARTA_HOME/node.json``: the host name is
only a label, so renaming a host, moving the folder to another machine or restarting a
container changes nothing about which footage, jobs and alarms are this node's. Two
processes never run as the same node: the first holds an exclusive lock on
``$VARTA_HOME/node.lock`` for its whole life (the kernel drops it when the process dies,
however it dies).

Each node also has two key pairs, private parts in ``$VARTA_HOME/keys`` (mode 0600):
Ed25519 to sign its requests to other nodes (they check the signature against the public
key the node registered), and X25519 to receive its sealed share of the instance signing
key (``keyshare.py``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

NODE_FILE = "node.json"
LOCK_FILE = "node.lock"
SIGN_KEY = "node_ed25519.pem"
WRAP_KEY = "node_x25519.pem"


class NodeLockError(RuntimeError):
    """Another process runs as this node (holds the data folder's lock)."""


def private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by the owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _load_or_make_key(path: Path, make, kind):
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, kind):
            raise RuntimeError(f"{path} does not hold the expected key type; move it away to make a new one")
        return key
    key = make()
    private_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return key


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class NodeIdentity:
    id: str
    home: Path
    sign_key: Ed25519PrivateKey
    wrap_key: X25519PrivateKey

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.sign_key)

    @property
    def wrap_key_pem(self) -> str:
        return public_pem(self.wrap_key)


def read_node_id(home: Path) -> str | None:
    """The node id kept in ``home``, or None when no node has run there yet."""
    try:
        return json.loads((Path(home) / NODE_FILE).read_text())["id"]
    except (OSError, ValueError, KeyError):
        return None


def load_identity(home: Path) -> NodeIdentity:
    """The node's identity, made on the first start in this data folder."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    node_file = home / NODE_FILE
    node_id = read_node_id(home)
    if node_id is None:
        if node_file.exists():
            raise RuntimeError(f"{node_file} is unreadable; restore it from a backup (it names this node's "
                               "footage and jobs) or move it away to start as a new node")
        node_id = str(uuid.uuid4())
        private_file(node_file, json.dumps({"id": node_id}).encode() + b"\n")
    keys = home / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    sign = _load_or_make_key(keys / SIGN_KEY, Ed25519PrivateKey.generate, Ed25519PrivateKey)
    wrap = _load_or_make_key(keys / WRAP_KEY, X25519PrivateKey.generate, X25519PrivateKey)
    return NodeIdentity(node_id, home, sign, wrap)


class DataFolderLock:
    """An exclusive ``flock`` on ``$VARTA_HOME/node.lock``, held while the node runs."""

    def __init__(self, home: Path):
        self.path = Path(home) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "DataFolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise NodeLockError(f"another Varta process ({holder_pid(self.path) or 'unknown pid'}) already "
                                    f"runs as this node on {self.path.parent}; two processes never share a "
                                    "data folder (give each node its own VARTA_HOME)") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder_pid(lock_path: Path) -> int | None:
    """The pid of the process running as the node of this data folder, if one runs."""
    lock_path = Path(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = lock_path.read_text().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it
    finally:
        os.close(fd)
