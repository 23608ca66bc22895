"""Secrets every node needs, shared between nodes without ever lying in clear in the database.

The first use: the instance signing key (varta/evidence/keys.py). A secret is made once, by
the first node that needs it, which registers its fingerprint (row ``node_id = '*'`` of
``key_shares``: a unique row, so two nodes starting at once cannot both make one). Every
node that holds it then *seals* a copy for each node that lacks one, to that node's X25519
public key (ephemeral X25519, HKDF-SHA256, ChaCha20-Poly1305); only that node's private
key, kept in its own data folder, opens it. A copy of the database alone reveals nothing,
and a new node receives the secret within seconds of registering, from any running holder.
"""

from __future__ import annotations

import base64
import json
import logging
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from varta.clock import now_us
from varta.db.schema import cluster_nodes, key_shares

log = logging.getLogger("varta.cluster")

MARKER = "*"  # the row that fixes the instance key's fingerprint
_INFO = b"varta instance key share v1"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _kdf(shared: bytes, eph: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=eph + recipient, info=_INFO).derive(shared)


def seal(data: bytes, recipient_pem: str) -> str:
    recipient = serialization.load_pem_public_key(recipient_pem.encode())
    if not isinstance(recipient, X25519PublicKey):
        raise ValueError("not an X25519 public key")
    eph = X25519PrivateKey.generate()
    eph_raw, rec_raw = _raw(eph.public_key()), _raw(recipient)
    key = _kdf(eph.exchange(recipient), eph_raw, rec_raw)
    nonce = os.urandom(12)
    ct = ChaCha20Poly1305(key).encrypt(nonce, data, _INFO)
    return json.dumps({"v": 1, "epk": _b64(eph_raw), "nonce": _b64(nonce), "ct": _b64(ct)})


def unseal(blob: str, private: X25519PrivateKey) -> bytes:
    d = json.loads(blob)
    eph = X25519PublicKey.from_public_bytes(base64.b64decode(d["epk"]))
    key = _kdf(private.exchange(eph), base64.b64decode(d["epk"]), _raw(private.public_key()))
    return ChaCha20Poly1305(key).decrypt(base64.b64decode(d["nonce"]), base64.b64decode(d["ct"]), _INFO)


def fingerprint_of(engine, name: str) -> str | None:
    """The fingerprint fixed for secret ``name`` (None until a node registers one)."""
    with engine.connect() as conn:
        return conn.execute(select(key_shares.c.fingerprint).where(key_shares.c.node_id == MARKER,
                                                                   key_shares.c.key_name == name)).scalar()


def register(engine, name: str, node_id: str, fingerprint: str) -> str:
    """Fix secret ``name``'s fingerprint unless one is fixed already; returns the one in force."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(key_shares).values(node_id=MARKER, key_name=name, fingerprint=fingerprint,
                                                   sealed="", sealed_by=node_id, created_us=now_us()))
        return fingerprint
    except IntegrityError:
        return fingerprint_of(engine, name)


def share_for(engine, name: str, identity) -> bytes | None:
    """The secret as sealed for this node, opened with its own key (None: not shared yet)."""
    with engine.connect() as conn:
        sealed = conn.execute(select(key_shares.c.sealed).where(key_shares.c.node_id == identity.id,
                                                                key_shares.c.key_name == name)).scalar()
    return unseal(sealed, identity.wrap_key) if sealed else None


def share_with_nodes(engine, name: str, node_id: str, secret: bytes, fingerprint: str) -> int:
    """Seal ``secret`` for every registered node that has no copy yet (only a holder of the
    secret whose fingerprint is the registered one may spread it)."""
    with engine.connect() as conn:
        fp = conn.execute(select(key_shares.c.fingerprint).where(key_shares.c.node_id == MARKER,
                                                                 key_shares.c.key_name == name)).scalar()
        have = {r[0] for r in conn.execute(select(key_shares.c.node_id).where(key_shares.c.key_name == name))}
        nodes = conn.execute(select(cluster_nodes.c.id, cluster_nodes.c.name, cluster_nodes.c.wrap_key)).all()
    if fp != fingerprint:
        return 0
    done = 0
    for n in nodes:
        if n.id in have or n.id == node_id or not n.wrap_key:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(insert(key_shares).values(node_id=n.id, key_name=name, fingerprint=fp,
                                                       sealed=seal(secret, n.wrap_key), sealed_by=node_id,
                                                       created_us=now_us()))
            done += 1
            log.info("%s key shared with node %s (sealed to its own key)", name, n.name)
        except IntegrityError:
            pass  # another node sealed it first
    return done
