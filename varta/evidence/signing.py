"""The instance key: one Ed25519 key per Varta installation that signs evidence packages.

Why Ed25519: short keys and signatures, no parameters to get wrong, deterministic
signatures, and OpenSSL 3 verifies it from the command line (``pkeyutl -rawin``), so a
court or a lawyer can check a package without Varta.

The private key lives in ``keys_dir/instance_ed25519.pem`` (PKCS#8 PEM, mode 0600, folder
0700). It is created once; a file that exists but cannot be read is an error, never a
reason to make a new key: a silently replaced key would make every package signed before
then look forged to anyone holding the published fingerprint.

The fingerprint is the SHA-256 of the public key's DER SubjectPublicKeyInfo, the same as
``openssl pkey -pubin -in instance-public-key.pem -outform DER | sha256sum``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from varta.evidence.layout import fsync_dir

KEY_FILE = "instance_ed25519.pem"


class KeyFileError(Exception):
    """The key file exists but cannot be used; the message says what to do."""


class InstanceKey:
    """The installation's signing key (private part in memory, file on disk)."""

    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None):
        self._key = private_key
        self.path = path

    # --- loading -------------------------------------------------------------------
    @classmethod
    def load_or_create(cls, keys_dir: Path) -> "InstanceKey":
        """The key in ``keys_dir``; made (once, atomically) when there is none yet."""
        keys_dir = Path(keys_dir)
        _ensure_private_dir(keys_dir)
        path = keys_dir / KEY_FILE
        if not path.exists() and not path.is_symlink():
            _create_key_file(path)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> "InstanceKey":
        """Read an existing key file; any defect is a :class:`KeyFileError`, never a new key."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read the instance key {path}: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(_corrupt_message(path, str(exc) or "not a PEM private key")) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(_corrupt_message(path, f"it holds a {type(key).__name__}, not an Ed25519 key"))
        _tighten_mode(path, 0o600)
        return cls(key, path)

    @classmethod
    def save_pem(cls, keys_dir: Path, pem: bytes) -> None:
        """Store a key received from another node (its sealed share) as this node's copy."""
        keys_dir = Path(keys_dir)
        _ensure_private_dir(keys_dir)
        _create_key_file(keys_dir / KEY_FILE, pem)

    # --- use -----------------------------------------------------------------------
    def sign(self, data: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature of ``data`` (what ``openssl pkeyutl -rawin`` checks)."""
        return self._key.sign(data)

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``)."""
        return self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def derive(self, purpose: bytes, length: int = 32) -> bytes:
        """A secret of ``length`` bytes for ``purpose``, derived from this key (HKDF-SHA256):
        every node holding the city's key derives the same one, so secrets made from it
        (webhook signing secrets: varta/exchange) need never be stored."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        raw = self._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"varta", info=purpose).derive(raw)

    def fingerprint(self) -> str:
        """SHA-256 hex of the DER SubjectPublicKeyInfo: what the city publishes."""
        return fingerprint_of(self.public_pem())

    def verify(self, data: bytes, sig: bytes) -> bool:
        return verify_signature(self.public_pem(), data, sig)


# --- module functions -------------------------------------------------------------------
def load_public_key(public_pem: bytes) -> Ed25519PublicKey:
    """Parse a public key PEM; anything but an Ed25519 key is a ValueError with the reason."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a readable public key PEM ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the public key is a {type(key).__name__}, not Ed25519")
    return key


def fingerprint_of(public_pem: bytes) -> str:
    """SHA-256 hex of the DER form of a public key PEM (raises ValueError if unreadable)."""
    der = load_public_key(public_pem).public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """Accept the fingerprint as people copy it: any case, with colons, spaces or ``SHA256:``."""
    s = text.strip().lower()
    for prefix in ("sha256:", "sha-256:"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return "".join(ch for ch in s if ch not in ": \t-")


def verify_signature(public_pem: bytes, data: bytes, sig: bytes) -> bool:
    """True when ``sig`` is a valid Ed25519 signature of ``data`` by that key.

    A bad signature is ``False``; a key that cannot be read is a ``ValueError`` (a
    different fault: the caller should say "the key file is broken", not "tampered").
    """
    key = load_public_key(public_pem)
    try:
        key.verify(sig, data)
    except InvalidSignature:
        return False
    return True


# --- the key file -----------------------------------------------------------------------
def _corrupt_message(path: Path, why: str) -> str:
    return (f"the instance key {path} is not a usable Ed25519 private key ({why}). It is never "
            "replaced automatically: restore it from the backup. Only if it is truly lost, move the "
            "file away so that a new key is made, and publish the new fingerprint; packages signed "
            "before then verify only with the old public key.")


def _ensure_private_dir(keys_dir: Path) -> None:
    """Make the folder (0700) or tighten an existing one: the key is readable by its owner only."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten_mode(keys_dir, 0o700)


def _tighten_mode(path: Path, mode: int) -> None:
    """Drop permissions beyond ``mode`` (e.g. after a restore with a careless umask)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
    except OSError:
        pass  # not ours to change (read-only media): reading still works


def _create_key_file(path: Path, pem: bytes | None = None) -> None:
    """Write a new key (or ``pem``, a key shared by another node) next to ``path`` and link
    it into place only if none appeared meanwhile.

    ``os.link`` fails when the target exists, so two processes starting at once end up
    with the same (first) key; the key is on disk (fsync) before it has its name.
    """
    pem = pem or Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: its key is the key
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if not path.exists():  # a file system without hard links
                os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


