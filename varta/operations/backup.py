"""`varta backup --out FILE` and `varta restore FILE` (docs/design/backup.md).

A backup is one tar file (mode 0600: it holds the keys) with the database as one consistent
snapshot taken while Varta runs, every file of the keys folder, ``node.json``, the settings
file and the published journal heads; never video. ``restore`` checks every member against
the manifest before it touches anything, refuses a schema newer than this code and a target
that is not empty (unless ``--force``: what was there is moved aside, never deleted, except a
PostgreSQL schema, which is dropped), restores, migrates up to the newest schema and checks
the journal. Both are journaled (``system.maintain`` on ``database``).

The archive layout and the checks are in :mod:`varta.operations.backup_manifest` (pure),
the database dump and load in :mod:`varta.operations.backup_db`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import typer

from varta.operations import backup_db as dbio
from varta.operations.backup_manifest import (
    DUMP_JSONL, DUMP_SQLITE, HEADS_DIR, KEYS_DIR, MANIFEST, NODE_FILE, SETTINGS_FILE, SQLITE_MEMBER, TABLES_DIR,
    BackupError, Member, check_members, check_revision, make_manifest, parse_manifest, target_is_empty,
)

CHUNK = 1 << 20
ATTEMPTS = 3  # the keys changed while the database was read: take it again


# --- files -------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in _files(root)}


def _private_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, CHUNK)
        os.fchmod(out.fileno(), 0o600)


def settings_file(settings) -> Path:
    """The settings file in use: ``$VARTA_CONFIG`` or ``$VARTA_HOME/varta.toml``."""
    return Path(os.environ.get("VARTA_CONFIG") or Path(settings.home) / SETTINGS_FILE)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# --- backing up -----------------------------------------------------------------------------
def _stage(settings, engine, stage: Path) -> tuple[str, str | None, dict[str, int], tuple[int, str]]:
    """Copy the heads, dump the database, then copy the keys, into ``stage``; again when the
    keys changed meanwhile (a secrets key rotated), so the keys always open the snapshot."""
    keys_dir = Path(settings.keys_dir)
    for attempt in range(1, ATTEMPTS + 1):
        for p in list(stage.iterdir()):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        keys_before = _tree_digest(keys_dir)
        # Heads first: each names a line already committed, so the snapshot below holds it.
        heads = Path(settings.home) / HEADS_DIR
        for f in _files(heads):
            _private_copy(f, stage / HEADS_DIR / f.relative_to(heads))
        if dbio.db_kind(engine) == "sqlite":
            (stage / "database").mkdir(mode=0o700)
            dump = DUMP_SQLITE
            rev, counts, head = dbio.dump_sqlite(engine, stage / SQLITE_MEMBER)
        else:
            dump = DUMP_JSONL
            rev, counts, head = dbio.dump_postgresql(engine, stage / TABLES_DIR)
        for f in _files(keys_dir):
            _private_copy(f, stage / KEYS_DIR / f.relative_to(keys_dir))
        if _tree_digest(keys_dir) == keys_before == _tree_digest(stage / KEYS_DIR):
            return dump, rev, counts, head
        typer.echo(f"the keys changed while the database was read; taking the backup again ({attempt})", err=True)
        time.sleep(0.5)
    raise BackupError(f"the keys in {keys_dir} kept changing during {ATTEMPTS} attempts; try again")


def make_backup(settings, engine, out: Path) -> tuple[dict, str]:
    """Write the archive to ``out`` (via a private temporary file); (manifest, SHA-256)."""
    from varta import __version__
    from varta.cluster.identity import read_node_id

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".varta-backup-", dir=out.parent))  # mode 0700
    try:
        dump, rev, counts, head = _stage(settings, engine, stage)
        home = Path(settings.home)
        if (home / NODE_FILE).is_file():
            _private_copy(home / NODE_FILE, stage / NODE_FILE)
        if settings_file(settings).is_file():
            _private_copy(settings_file(settings), stage / SETTINGS_FILE)
        members = [Member(p.relative_to(stage).as_posix(), p.stat().st_size, sha256_file(p)) for p in _files(stage)]
        now = datetime.now(timezone.utc)
        manifest = make_manifest(version=__version__, created=now.isoformat(timespec="seconds"),
                                 created_us=int(now.timestamp() * 1_000_000), host=socket.gethostname(),
                                 node_id=read_node_id(home), db_kind=dbio.db_kind(engine), dump=dump, revision=rev,
                                 tables=counts, journal=head, members=members)
        (stage / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            os.fchmod(raw.fileno(), 0o600)
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                def private(ti: tarfile.TarInfo) -> tarfile.TarInfo:
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    ti.mode = 0o700 if ti.isdir() else 0o600
                    return ti
                tar.add(stage / MANIFEST, MANIFEST, filter=private)
                for m in members:
                    tar.add(stage / m.name, m.name, filter=private)
            raw.flush()
            os.fsync(raw.fileno())
        return manifest, sha256_file(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --- restoring ---------------------------------------------------------------------------------
def open_archive(path: Path, into: Path) -> dict:
    """Extract ``path`` into the private folder ``into`` and check every member against the
    manifest; the manifest, or :class:`BackupError` (nothing has been restored yet)."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path} is not a readable backup archive ({exc}): damaged or not a Varta backup; "
                          "nothing was restored") from None
    if not (into / MANIFEST).is_file():
        raise BackupError(f"{path}: no {MANIFEST} in it: not a Varta backup; nothing was restored")
    manifest = parse_manifest((into / MANIFEST).read_bytes())
    found = {p.relative_to(into).as_posix(): (p.stat().st_size, sha256_file(p)) for p in _files(into)}
    problems = check_members(manifest, found)
    if problems:
        raise BackupError(f"{path} is damaged or was altered, nothing was restored:\n  " + "\n  ".join(problems))
    return manifest


def _live_nodes(engine) -> list[str]:
    from sqlalchemy import text

    from varta.clock import now_us

    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, expires_us FROM cluster_nodes WHERE state <> 'stopped'")).all()
    except Exception:  # no schema yet
        return []
    return [r[0] for r in rows if r[1] and r[1] > now_us()]


def _move_aside(path: Path, stamp: str) -> Path | None:
    if not path.exists():
        return None
    dest = path.with_name(f"{path.name}.before-restore-{stamp}")
    path.rename(dest)
    return dest


def restore_backup(settings, archive: Path, force: bool) -> tuple[dict, list[str]]:
    """Restore ``archive`` into the data folder and database of ``settings``; (manifest, notes)."""
    from varta.cluster.identity import DataFolderLock, NodeLockError
    from varta.config import Settings
    from varta.db.engine import make_engine

    notes: list[str] = []
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".varta-restore-", dir=home))
    try:
        manifest = open_archive(archive, stage)
        known, head = dbio.script_revisions()
        check_revision(manifest["database"].get("revision"), known, head)
        try:
            lock = DataFolderLock(home).acquire()  # no node may start here meanwhile
        except NodeLockError as exc:
            raise BackupError(f"{exc}: stop it before restoring") from None
        try:
            # The settings first: the database goes where they say (the environment still wins).
            cfg = settings_file(settings)
            if (stage / SETTINGS_FILE).is_file():
                if not cfg.exists():
                    _private_copy(stage / SETTINGS_FILE, cfg)
                    settings = Settings()
                elif cfg.read_bytes() != (stage / SETTINGS_FILE).read_bytes():
                    kept = cfg.with_name(cfg.name + ".from-backup")
                    _private_copy(stage / SETTINGS_FILE, kept)
                    notes.append(f"kept the settings file {cfg}; the backup's is in {kept}")
            keys_dir, db_url = Path(settings.keys_dir), settings.db_url
            engine = make_engine(db_url)
            try:
                live = _live_nodes(engine)
                if live:
                    raise BackupError(f"nodes are running on this database ({', '.join(live)}): stop every node "
                                      "before restoring")
                counts = dbio.row_counts(engine)
                key_files = [p.name for p in _files(keys_dir)]
                if not target_is_empty(counts, key_files):
                    if not force:
                        busy = {t: n for t, n in counts.items() if n and t not in ("journal_head",)}
                        raise BackupError(
                            "the target is not empty: " + ", ".join(
                                ([f"{sum(busy.values())} rows in its database ({', '.join(sorted(busy)[:5])}…)"]
                                 if busy else []) + ([f"keys in {keys_dir}"] if key_files else []))
                            + "; restore over it with --force (the keys, node.json and a SQLite database are "
                              "moved aside, a PostgreSQL schema is dropped)")
                    stamp = _stamp()
                    for p in (keys_dir, home / NODE_FILE):
                        moved = _move_aside(p, stamp)
                        if moved:
                            notes.append(f"moved {p} aside to {moved}")
                    if dbio.db_kind(engine) == "sqlite":
                        engine.dispose()
                        db = dbio.sqlite_path(engine)
                        moved = _move_aside(db, stamp)
                        for suffix in ("-wal", "-shm"):
                            _move_aside(Path(str(db) + suffix), stamp)
                        if moved:
                            notes.append(f"moved the database {db} aside to {moved}")
                    else:
                        dbio.wipe_postgresql(engine)
                        notes.append("dropped the PostgreSQL schema's tables before loading")
                # The database.
                dump = manifest["database"]["dump"]
                if dump == DUMP_SQLITE and dbio.db_kind(engine) == "sqlite":
                    engine.dispose()
                    dbio.place_sqlite_file(stage / SQLITE_MEMBER, dbio.sqlite_path(engine))
                else:
                    dbio.migrate_to(engine, manifest["database"].get("revision"))
                    source = (dbio.JsonlSource(stage / TABLES_DIR) if dump == DUMP_JSONL
                              else dbio.SqliteFileSource(stage / SQLITE_MEMBER))
                    try:
                        dbio.load(engine, source)
                    finally:
                        if hasattr(source, "close"):
                            source.close()
            finally:
                engine.dispose()
            # The keys (0600 in a 0700 folder), the node's identity, the published heads.
            keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            keys_dir.chmod(0o700)
            for f in _files(stage / KEYS_DIR):
                _private_copy(f, keys_dir / f.relative_to(stage / KEYS_DIR))
            if (stage / NODE_FILE).is_file() and not (home / NODE_FILE).exists():
                _private_copy(stage / NODE_FILE, home / NODE_FILE)
            heads = home / HEADS_DIR
            for f in _files(stage / HEADS_DIR):
                dest = heads / f.relative_to(stage / HEADS_DIR)
                if not dest.exists():  # a published head is evidence: never overwritten
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, dest)
        finally:
            lock.release()
        return manifest, notes
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _fingerprint(keys_dir: Path) -> str | None:
    from varta.evidence.signing import KEY_FILE, InstanceKey

    try:
        return InstanceKey.load(keys_dir / KEY_FILE).fingerprint()
    except Exception:
        return None


# --- the commands ------------------------------------------------------------------------------
def register(app) -> None:
    """Add the commands to the ``varta`` Typer app."""

    @app.command("backup")
    def backup(out: Path = typer.Option(..., "--out", help="the archive to write (e.g. varta-2026-12-04.tar.gz)"),
               overwrite: bool = typer.Option(False, "--overwrite", help="replace FILE when it exists")) -> None:
        """Back up the database (one consistent snapshot, while Varta runs), the keys, node.json,
        the settings and the journal heads into one file (mode 0600); never video."""
        from sqlalchemy.exc import SQLAlchemyError

        from varta.cli_support import authorize, fail, load_settings
        from varta.db.engine import make_engine

        settings = load_settings()
        if out.exists() and not overwrite:
            fail(f"{out} exists: choose another name or pass --overwrite")
        if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url.removeprefix("sqlite:///")).is_file():
            fail(f"no database at {settings.db_url.removeprefix('sqlite:///')}: nothing to back up")
        engine = make_engine(settings.db_url)  # read as it is: a backup migrates nothing
        try:
            try:
                access, who = authorize(settings, engine, "system.maintain", obj="database")
            except SQLAlchemyError as exc:
                fail(f"cannot read the database: {exc}")
            tmp = out.with_name(f".{out.name}.partial")
            try:
                manifest, digest = make_backup(settings, engine, tmp)
                db = manifest["database"]
                rows = sum(db["tables"].values())
                # Journaled before the file is in place: a backup that cannot be journaled is not made.
                access.record(who, "system.maintain", "database",
                              detail=f"backup to {out.resolve()}: {db['kind']} schema {db['revision']}, "
                                     f"{len(db['tables'])} tables, {rows} rows, journal line {manifest['journal']['seq']}, "
                                     f"{len(manifest['members'])} files, sha256 {digest}")
                tmp.replace(out)
            except BackupError as exc:
                fail(str(exc))
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            engine.dispose()
        typer.echo(f"backup written: {out} ({out.stat().st_size} bytes, mode 0600)\n"
                   f"  database {db['kind']}, schema {db['revision']}, {len(db['tables'])} tables, {rows} rows; "
                   f"journal up to line {manifest['journal']['seq']}\n"
                   f"  {sum(1 for m in manifest['members'] if m['name'].startswith(KEYS_DIR + '/'))} key files "
                   f"(keep this file as safe as the keys)\n  sha256 {digest}")

    @app.command("restore")
    def restore(archive: Path = typer.Argument(..., help="a file made by varta backup"),
                force: bool = typer.Option(False, "--force", help="restore over a data folder or database that "
                                                                  "is not empty")) -> None:
        """Restore a backup into this data folder and database (Varta stopped): checked against
        its manifest first, then migrated to this version's schema; the journal is verified."""
        from varta.access.journal import heads_dir, load_heads
        from varta.cli_support import authorize, fail, load_settings, open_engine

        settings = load_settings()
        try:
            manifest, notes = restore_backup(settings, archive, force)
        except BackupError as exc:
            fail(str(exc))
        settings = load_settings()  # the restored settings file, where there was none
        engine = open_engine(settings)  # migrates up to this version's schema
        try:
            access, who = authorize(settings, engine, "system.maintain", obj="database")
            v = access.journal.verify(load_heads(heads_dir(settings.home)))
            db = manifest["database"]
            access.record(who, "system.maintain", "database",
                          detail=f"restored from backup {archive.resolve()} made {manifest['created']} on "
                                 f"{manifest['host']} ({db['kind']} schema {db['revision']}, journal line "
                                 f"{manifest['journal']['seq']}); journal {'intact' if v.ok else 'BROKEN'}"
                                 + ("; --force" if force else ""))
        finally:
            engine.dispose()
        fp = _fingerprint(Path(settings.keys_dir))
        typer.echo(f"restored {archive} (made {manifest['created']} on {manifest['host']}, Varta "
                   f"{manifest['varta_version']}):\n  database {db['kind']} → {settings.db_url.split('@')[-1]}: "
                   f"{len(db['tables'])} tables, {sum(db['tables'].values())} rows; schema {db['revision']} migrated "
                   "to this version's")
        for n in notes:
            typer.echo(f"  {n}")
        if fp:
            typer.echo(f"  evidence signing key fingerprint {fp}")
        if v.ok:
            typer.echo(f"  journal intact: {v.lines} lines, up to line {manifest['journal']['seq']} from the backup")
        else:
            typer.secho(f"  JOURNAL CHECK: {v.problems[0]} (published heads newer than the backup name the lines "
                        "written after it, which this restore does not have)", fg=typer.colors.YELLOW, err=True)
