"""Where the secrets key lives and how the database's secret columns use it (adapter).

The key-encryption key is never in the database. It comes from, in this order:

* ``VARTA_SECRETS_KEY``: base64 keys separated by commas, the first one current (an operator
  who keeps keys in a vault or in systemd credentials); or
* ``keys/secrets.json`` in the data folder (mode 0600 in a 0700 folder), made by the first
  node that needs one and reaching every other node of a cluster sealed to that node's own
  key, as the evidence signing key does (varta/cluster/keyshare.py, key names
  ``secrets:<kid>``).

Which key seals new values is decided in the database, not by a clock or a host: the newest
registered key id (``key_shares`` row ``*``/``secrets:<kid>``) that this process holds.
``varta secrets rotate`` adds a key, registers it and re-seals every value under it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, select, text, update

from varta.clock import now_us
from varta.db.schema import cameras, key_shares, onvif_devices, users
from varta.secrets.box import Keyring, SecretsError, key_id, kid_of, is_sealed, new_key

log = logging.getLogger("varta.secrets")

FILE = "secrets.json"
ENV = "VARTA_SECRETS_KEY"
NAME = "secrets:"  # key_shares names: secrets:<kid>
REFRESH_S = 5.0

# Every secret column the database holds: (table, primary key, column, purpose).
SEALED = (
    (users, "id", "totp_secret", "users.totp_secret"),
    (cameras, "id", "main_url", "cameras.url"),
    (cameras, "id", "sub_url", "cameras.url"),
    (onvif_devices, "camera_id", "password", "onvif_devices.password"),
)


def read_file(keys_dir: Path) -> list[bytes]:
    path = Path(keys_dir) / FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        keys = [base64.b64decode(k["key"]) for k in data["keys"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecretsError(f"the secrets keyring {path} is unreadable ({exc}); restore it from the backup "
                           "(without it the database's secrets cannot be opened)") from None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return keys


def write_file(keys_dir: Path, keys: list[bytes]) -> None:
    """The keyring, written atomically, owner-only (under update_file's lock)."""
    from varta.cluster.identity import private_file

    private_file(Path(keys_dir) / FILE, json.dumps(
        {"version": 1, "keys": [{"kid": key_id(k), "key": base64.b64encode(k).decode()} for k in keys]},
        indent=1).encode())


def update_file(keys_dir: Path, add: list[bytes] = (), drop: set[str] = frozenset(),
                create_only: bool = False) -> list[bytes]:
    """Change the keyring file under an exclusive lock (several processes share a data folder:
    the node, commands typed beside it): the keys on disk now, plus ``add``, minus ``drop``.
    ``create_only``: add only if the file holds no key yet (the first key, made once).
    Returns the keys on disk afterwards."""
    import fcntl

    from varta.evidence.signing import _ensure_private_dir

    keys_dir = Path(keys_dir)
    _ensure_private_dir(keys_dir)
    fd = os.open(keys_dir / ".secrets.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        keys = read_file(keys_dir)
        if create_only and keys:
            return keys
        have = {key_id(k) for k in keys}
        new = [k for k in keys if key_id(k) not in drop] + [k for k in add if key_id(k) not in have]
        if new != keys:
            write_file(keys_dir, new)
        return new


def env_keys(environ=os.environ) -> list[bytes]:
    raw = environ.get(ENV, "").strip()
    if not raw:
        return []
    try:
        keys = [base64.b64decode(part.strip(), validate=True) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise SecretsError(f"{ENV} is not base64 (make a key with: varta secrets new-key)") from None
    for k in keys:
        if len(k) != 32:
            raise SecretsError(f"{ENV} holds a key of {len(k)} bytes; a secrets key is 32 bytes "
                               "(make one with: varta secrets new-key)")
    return keys


class Vault:
    """The secrets key as one process holds it, for one database."""

    def __init__(self, engine: Engine, keys_dir: Path | None, identity=None, environ=os.environ):
        self.engine = engine
        self.keys_dir = Path(keys_dir) if keys_dir is not None else None
        self.identity = identity
        self.environ = environ
        self._ring: Keyring | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    # --- the keys ----------------------------------------------------------------------
    def _registered(self) -> list[str]:
        """Registered key ids, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(key_shares.c.key_name).where(key_shares.c.node_id == "*",
                                                                    key_shares.c.key_name.like(NAME + "%"))
                                .order_by(key_shares.c.created_us.desc(), key_shares.c.key_name)).all()
        return [r[0][len(NAME):] for r in rows]

    def _register(self, kid: str) -> None:
        from varta.cluster import keyshare

        keyshare.register(self.engine, NAME + kid, self.identity.id if self.identity else "console", kid)

    def _load(self) -> Keyring:
        env = env_keys(self.environ)
        ring = Keyring()
        for k in env or (read_file(self.keys_dir) if self.keys_dir else []):
            ring.add(k)
        registered = self._registered()
        if self.identity is not None and not env and self.keys_dir is not None:
            from varta.cluster import keyshare

            missing = [kid for kid in registered if kid not in ring.keys]
            got = False
            for kid in missing:
                key = keyshare.share_for(self.engine, NAME + kid, self.identity)
                if key is not None and key_id(key) == kid:
                    ring.add(key)
                    got = True
            if got:
                update_file(self.keys_dir, add=list(ring.keys.values()))
        if not registered:
            for kid in ring.keys:  # a keyring that predates its registration (a restored database)
                self._register(kid)
            registered = self._registered()
        elif not env:
            retired = [kid for kid in ring.keys if kid not in registered]
            for kid in retired:  # retired elsewhere (varta secrets retire): no value uses it any more
                del ring.keys[kid]
            if retired and self.keys_dir is not None:
                update_file(self.keys_dir, drop=set(retired))
        if env:
            ring.current = key_id(env[0])
        else:
            ring.current = next((kid for kid in registered if kid in ring.keys), None)
        return ring

    def ring(self, fresh: bool = False) -> Keyring:
        with self._lock:
            if fresh or self._ring is None or time.monotonic() - self._at > REFRESH_S:
                self._ring = self._load()
                self._at = time.monotonic()
            return self._ring

    def ensure(self) -> Keyring:
        """The keys, made here when none exists anywhere yet (the first node, or a single
        machine's first start)."""
        ring = self.ring(fresh=True)
        if ring.current is not None:
            return ring
        if self.keys_dir is None:
            raise SecretsError("no secrets key here: this process was opened without a data folder")
        if self._registered():
            raise SecretsError("the city's secrets key has not reached this node yet: a running node that holds "
                               "it seals a copy for every node within seconds of its registration")
        key = new_key()
        on_disk = update_file(self.keys_dir, add=[key], create_only=True)
        if key_id(key) in {key_id(k) for k in on_disk}:  # ours (another process may have made one first)
            log.info("secrets key %s made: the database's secrets are sealed with it (keys/%s)", key_id(key), FILE)
        for k in on_disk:
            self._register(key_id(k))
        return self.ring(fresh=True)

    def share(self) -> int:
        """Seal the keys this node holds for every node that lacks them (run every few seconds)."""
        if self.identity is None:
            return 0
        from varta.cluster import keyshare

        ring = self.ring()
        return sum(keyshare.share_with_nodes(self.engine, NAME + kid, self.identity.id, key, kid)
                   for kid, key in ring.keys.items())

    # --- values --------------------------------------------------------------------------
    def seal(self, plaintext: str | None, purpose: str) -> str | None:
        if plaintext is None or plaintext == "":
            return plaintext
        ring = self.ring()
        if ring.current is None:
            ring = self.ensure()
        return ring.seal(plaintext, purpose)

    def open(self, value: str | None, purpose: str) -> str | None:
        if not is_sealed(value):
            return value
        ring = self.ring()
        if kid_of(value) not in ring.keys:
            ring = self.ring(fresh=True)  # a rotation, or a key just shared with this node
        return ring.open(value, purpose)


# --- one vault per engine -------------------------------------------------------------
_VAULTS: "weakref.WeakKeyDictionary[Engine, Vault]" = weakref.WeakKeyDictionary()


def attach(engine: Engine, vault: Vault) -> Vault:
    _VAULTS[engine] = vault
    return vault


def vault_for(engine: Engine) -> Vault:
    """The engine's vault. An engine opened without a data folder: a SQLite file's keys are
    those of its data folder (``keys/`` beside ``varta.db``); any other database can then
    read values written before sealing but neither seals nor opens a secret."""
    v = _VAULTS.get(engine)
    if v is None:
        keys = None
        if engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            keys = Path(engine.url.database).resolve().parent / "keys"
        v = attach(engine, Vault(engine, keys))
    return v


def seal(engine: Engine, plaintext: str | None, purpose: str) -> str | None:
    return vault_for(engine).seal(plaintext, purpose)


def open_(engine: Engine, value: str | None, purpose: str) -> str | None:
    return vault_for(engine).open(value, purpose)


# --- the whole database -----------------------------------------------------------------
def seal_all(engine: Engine, rekey: bool = False) -> dict[str, int]:
    """Seal every value still in clear (and with ``rekey``, re-seal every value not under the
    current key). Compare-and-set per row: a value changed meanwhile is left to its writer."""
    vault = vault_for(engine)
    ring = vault.ensure()
    done: dict[str, int] = {}
    for table, pk, col, purpose in SEALED:
        c, k = table.c[col], table.c[pk]
        with engine.connect() as conn:
            rows = conn.execute(select(k, c).where(c.is_not(None), c != "")).all()
        n = 0
        for key, value in rows:
            if is_sealed(value) and not (rekey and kid_of(value) != ring.current):
                continue
            new = ring.seal(ring.open(value, purpose), purpose)
            with engine.begin() as conn:
                n += conn.execute(update(table).where(k == key, c == value).values({col: new})).rowcount
        if n:
            done[f"{table.name}.{col}"] = n
    return done


def census(engine: Engine) -> dict:
    """How many values each key seals, and how many are still in clear (no secret shown)."""
    ring = vault_for(engine).ring(fresh=True)
    out: dict = {"current": ring.current, "held": sorted(ring.keys), "columns": {}}
    for table, pk, col, _ in SEALED:
        c = table.c[col]
        with engine.connect() as conn:
            values = [r[0] for r in conn.execute(select(c).where(c.is_not(None), c != ""))]
        by: dict[str, int] = {}
        for v in values:
            kid = kid_of(v) or "(in clear)"
            by[kid] = by.get(kid, 0) + 1
        out["columns"][f"{table.name}.{col}"] = by
    for name, kid in sealed_setting_kids().items():  # varta.toml / VARTA_… of this data folder
        out["columns"][f"setting {name}"] = {kid: 1}
    return out


def rotate(engine: Engine) -> dict:
    """A new key, registered as the newest (so every node seals with it once it holds it),
    then every value re-sealed under it. The old keys stay until ``retire``."""
    vault = vault_for(engine)
    vault.ensure()
    if env_keys(vault.environ):
        # The operator holds the keys: the first key in VARTA_SECRETS_KEY is the new one.
        done = seal_all(engine, rekey=True)
        return {"current": vault.ring(fresh=True).current, "resealed": done}
    if vault.keys_dir is None:
        raise SecretsError("rotation needs the data folder that holds the keyring")
    key = new_key()
    kid = key_id(key)
    from varta.cluster import keyshare

    # Registered before it is written, so no process reading the keyring meanwhile takes it
    # for a retired key; the newest registration (created_us above every earlier one).
    with engine.begin() as conn:
        newest = _newest_us(conn)
    keyshare.register(engine, NAME + kid, vault.identity.id if vault.identity else "console", kid)
    with engine.begin() as conn:
        conn.execute(update(key_shares).where(key_shares.c.node_id == "*", key_shares.c.key_name == NAME + kid)
                     .values(created_us=max(now_us(), newest + 1)))
    update_file(vault.keys_dir, add=[key])
    vault.share()
    ring = vault.ring(fresh=True)
    assert ring.current == kid, (ring.current, kid)
    done = seal_all(engine, rekey=True)
    return {"current": kid, "resealed": done}


def _newest_us(conn) -> int:
    return conn.execute(text("SELECT COALESCE(MAX(created_us), 0) FROM key_shares WHERE node_id = '*' "
                             "AND key_name LIKE 'secrets:%'")).scalar() or 0


RETIRE_AFTER_S = 3 * REFRESH_S  # every process has read the new key by then (each re-reads every REFRESH_S)


def retire(engine: Engine) -> list[str]:
    """Forget keys that no value uses any more (never the current one). Only once the
    current key has been registered long enough for every process to seal with it: a
    process still sealing with an old key would otherwise write a value no key opens."""
    vault = vault_for(engine)
    ring = vault.ring(fresh=True)
    with engine.connect() as conn:
        registered_us = conn.execute(select(key_shares.c.created_us).where(
            key_shares.c.node_id == "*", key_shares.c.key_name == NAME + str(ring.current))).scalar()
    age_s = (now_us() - (registered_us or 0)) / 1e6
    if age_s < RETIRE_AFTER_S:
        raise SecretsError(f"the current key was registered {age_s:.0f} s ago; every node seals with it within "
                           f"{RETIRE_AFTER_S:.0f} s: run retire again in {RETIRE_AFTER_S - age_s:.0f} s")
    seal_all(engine, rekey=True)  # values a node sealed with an old key before it read the new one
    info = census(engine)
    used = {kid for by in info["columns"].values() for kid in by}
    gone = [kid for kid in info["held"] if kid != info["current"] and kid not in used]
    if not gone:
        return []
    if vault.keys_dir is not None and not env_keys(vault.environ):
        update_file(vault.keys_dir, drop=set(gone))
    from sqlalchemy import delete

    with engine.begin() as conn:
        conn.execute(delete(key_shares).where(key_shares.c.key_name.in_([NAME + kid for kid in gone])))
    vault.ring(fresh=True)
    return gone


# --- secrets in the settings -----------------------------------------------------------
def setting_purpose(name: str) -> str:
    return f"setting:{name}"


def open_setting(keys_dir: Path, value: str, name: str) -> str:
    """A setting given sealed (varta.toml or the environment), opened with the keys this data
    folder holds (or VARTA_SECRETS_KEY); no database needed."""
    ring = Keyring()
    for k in env_keys() or read_file(keys_dir):
        ring.add(k)
    try:
        return ring.open(value, setting_purpose(name))
    except SecretsError as exc:
        raise ValueError(f"setting {name}: {exc}") from None


def sealed_setting_kids() -> dict[str, str]:
    """Which key seals each sealed setting in this data folder's varta.toml (retire must not
    forget a key a setting still needs)."""
    from varta.config import SEALED_SETTINGS, _config_file_values

    out = {}
    for name, value in _config_file_values().items():
        if name in SEALED_SETTINGS and kid_of(str(value)):
            out[name] = kid_of(str(value))
    for name in SEALED_SETTINGS:
        v = os.environ.get(f"VARTA_{name.upper()}", "")
        if kid_of(v):
            out[name] = kid_of(v)
    return out
