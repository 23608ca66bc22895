"""What a backup archive holds and the checks made before anything is restored (pure: no I/O).

An archive (``varta backup --out FILE``) is one tar file, mode 0600 (it holds keys)::

    manifest.json                 this file's record, below
    database/varta.sqlite3        SQLite: a consistent online copy (sqlite3 backup API), or
    database/tables/NAME.jsonl    PostgreSQL: every table, one JSON array a row, read in one
                                  REPEATABLE READ READ ONLY transaction (one snapshot)
    keys/…                        every file of the data folder's keys folder
    node.json, varta.toml         the node's identity and the settings file, when present
    journal-heads/…               the published journal heads

manifest.json::

    {"format": "varta-backup/1", "varta_version": "0.1.0", "created": "2026-12-04T21:00:00+00:00",
     "created_us": …, "host": "…", "node_id": "…",
     "database": {"kind": "sqlite" | "postgresql", "dump": "sqlite-file" | "jsonl",
                  "revision": "0016", "tables": {"journal": 1234, …}},
     "journal": {"seq": 1234, "hash": "…"},
     "members": [{"name": "keys/instance_ed25519.pem", "bytes": 119, "sha256": "…"}, …]}

The SHA-256 sums find a damaged or altered member; they do not prove who made the archive
(anyone who can alter it can alter the manifest too): keep backups where only the city's
administrators reach them, like the keys they contain.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import PurePosixPath

FORMAT = "varta-backup/1"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/varta.sqlite3"
TABLES_DIR = "database/tables"
KEYS_DIR = "keys"
HEADS_DIR = "journal-heads"
NODE_FILE = "node.json"
SETTINGS_FILE = "varta.toml"
DUMP_SQLITE, DUMP_JSONL = "sqlite-file", "jsonl"


class BackupError(Exception):
    """A backup that cannot be made or restored, with the reason in words (exit 2)."""


# --- rows as JSON lines ------------------------------------------------------------------
# A row is a JSON array in the header's column order. Values keep their Python type through
# JSON, except bytes ({"$bytes": base64}) and JSON objects ({"$json": …}): every dict is
# wrapped, so a stored JSON object can never be mistaken for bytes.
def encode_value(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, dict):
        return {"$json": v}
    return v


def decode_value(v):
    if isinstance(v, dict):
        if "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        return v.get("$json")
    return v


def encode_row(values) -> str:
    return json.dumps([encode_value(v) for v in values], ensure_ascii=False, separators=(",", ":"))


def decode_row(line: str) -> list:
    return [decode_value(v) for v in json.loads(line)]


def table_header(table: str, columns: list[str]) -> str:
    return json.dumps({"table": table, "columns": columns}, ensure_ascii=False)


# --- the manifest --------------------------------------------------------------------------
@dataclass
class Member:
    name: str
    bytes: int
    sha256: str


def safe_member_name(name: str) -> bool:
    """A member path that stays inside the folder it is extracted to."""
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name and "\x00" not in name


def make_manifest(*, version: str, created: str, created_us: int, host: str, node_id: str | None,
                  db_kind: str, dump: str, revision: str | None, tables: dict[str, int],
                  journal: tuple[int, str], members: list[Member]) -> dict:
    return {"format": FORMAT, "varta_version": version, "created": created, "created_us": created_us,
            "host": host, "node_id": node_id,
            "database": {"kind": db_kind, "dump": dump, "revision": revision, "tables": dict(sorted(tables.items()))},
            "journal": {"seq": journal[0], "hash": journal[1]},
            "members": [{"name": m.name, "bytes": m.bytes, "sha256": m.sha256} for m in members]}


def parse_manifest(raw: bytes) -> dict:
    """The manifest, or :class:`BackupError` saying why this is not a Varta backup."""
    try:
        m = json.loads(raw)
    except ValueError as exc:
        raise BackupError(f"{MANIFEST} is not valid JSON ({exc}): the archive is damaged") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BackupError(f"not a Varta backup of a format this version reads ({FORMAT}): "
                          f"format {m.get('format') if isinstance(m, dict) else '?'!r}")
    db = m.get("database")
    if not isinstance(db, dict) or db.get("kind") not in ("sqlite", "postgresql") \
            or db.get("dump") not in (DUMP_SQLITE, DUMP_JSONL) or not isinstance(m.get("members"), list):
        raise BackupError(f"{MANIFEST} lacks the database or the member list: the archive is damaged")
    for mem in m["members"]:
        if not isinstance(mem, dict) or not safe_member_name(str(mem.get("name", ""))):
            raise BackupError(f"{MANIFEST} names a member outside the archive's folder: {mem!r}")
    return m


def check_members(manifest: dict, found: dict[str, tuple[int, str]]) -> list[str]:
    """Problems between the manifest and the members found (name → (bytes, sha256))."""
    problems = []
    listed = {m["name"]: m for m in manifest["members"]}
    for name, m in sorted(listed.items()):
        got = found.get(name)
        if got is None:
            problems.append(f"{name}: missing from the archive")
        elif got[0] != m["bytes"]:
            problems.append(f"{name}: {got[0]} bytes, the manifest says {m['bytes']}")
        elif got[1] != m["sha256"]:
            problems.append(f"{name}: SHA-256 {got[1][:16]}… does not match the manifest's {m['sha256'][:16]}…")
    for name in sorted(set(found) - set(listed) - {MANIFEST}):
        problems.append(f"{name}: in the archive but not in the manifest")
    return problems


def check_revision(revision: str | None, known: list[str], head: str | None) -> None:
    """Refuse a schema this code does not know (a newer Varta made the backup)."""
    if revision is None:
        return
    if revision not in known:
        raise BackupError(f"the backup's database schema ({revision}) is newer than this version of Varta knows "
                          f"(newest {head}): restore it with the Varta version that made it, or a newer one")


def target_is_empty(row_counts: dict[str, int], key_files: list[str]) -> bool:
    """A target with no rows of its own (a fresh schema's seed rows do not count) and no keys."""
    seeded = {"alembic_version", "journal_head"}
    return not key_files and not any(n for t, n in row_counts.items() if t not in seeded)
