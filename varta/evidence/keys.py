"""The city's evidence signing key on this node, the same on every node of a cluster.

A court checks packages against one published fingerprint, so every node that builds
packages signs with the same Ed25519 key. It is made once (the first node to need it, or
adopted from a single machine's existing key file) and reaches every other node sealed to
that node's own key (varta/cluster/keyshare.py); each node keeps its copy in its data
folder (``keys/instance_ed25519.pem``, mode 0600), never in the database.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from varta.cluster import keyshare
from varta.evidence.signing import KEY_FILE, InstanceKey, KeyFileError

KEY_NAME = "evidence"


def instance_key(engine, identity, keys_dir: Path) -> InstanceKey:
    """This node's copy of the city's key: its own file, or the share sealed for it, or
    (the very first time anywhere) a new key whose fingerprint becomes the city's."""
    keys_dir = Path(keys_dir)
    path = keys_dir / KEY_FILE
    fp = keyshare.fingerprint_of(engine, KEY_NAME)
    if path.exists():
        key = InstanceKey.load(path)
        if fp is None:
            fp = keyshare.register(engine, KEY_NAME, identity.id, key.fingerprint())
            if fp == key.fingerprint():
                share_instance_key(engine, identity.id, keys_dir)  # every node has it from now on
        if fp != key.fingerprint():
            raise KeyFileError(
                f"this node's instance key {path} (fingerprint {key.fingerprint()[:16]}…) is not the city's "
                f"({fp[:16]}…): packages signed with it would not verify against the published fingerprint. "
                "Move the file away; the city's key then reaches this node from a running node within seconds")
        return key
    pem = keyshare.share_for(engine, KEY_NAME, identity)
    if pem is not None:
        InstanceKey.save_pem(keys_dir, pem)
        key = InstanceKey.load(path)
        if fp and key.fingerprint() != fp:
            path.unlink(missing_ok=True)
            raise KeyFileError("the key shared with this node does not match the city's fingerprint")
        return key
    if fp is None:
        key = InstanceKey.load_or_create(keys_dir)
        if keyshare.register(engine, KEY_NAME, identity.id, key.fingerprint()) != key.fingerprint():
            path.unlink(missing_ok=True)  # another node made one at the same moment: theirs wins
            raise KeyFileError("another node has just made the city's instance key; it reaches this node "
                               "within seconds: try again")
        share_instance_key(engine, identity.id, keys_dir)  # sealed for every node at once
        return key
    raise KeyFileError(f"the city's instance key (fingerprint {fp[:16]}…) has not reached this node yet: a running "
                       "node that holds it seals a copy for every node within seconds of its registration; try "
                       "again shortly (at least one node holding the key must be running)")


def share_instance_key(engine, node_id: str, keys_dir: Path) -> int:
    """Seal this node's copy for every node that has none (run by each node, every few seconds)."""
    path = Path(keys_dir) / KEY_FILE
    if not path.exists():
        return 0
    key = InstanceKey.load(path)
    pem = key._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return keyshare.share_with_nodes(engine, KEY_NAME, node_id, pem, key.fingerprint())
