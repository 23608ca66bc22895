"""`varta check`: the installer's checks (settings, storage, database, ffmpeg, model, clock).

Run it after installing or changing a server, and before starting it: one line per check,
OK / WARN / FAIL with what to do, ``--json`` for scripts; exit code 1 on any FAIL. It reads
and probes only: it writes nothing to the database, and creates nothing but a probe file
(removed at once) in folders that exist. It works when the database is down (that is one
of the things it says), so it is not a journaled command.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_WARN_S = 1.0  # a second off: footage timestamps and the journal disagree with other nodes
CLOCK_FAIL_S = 5.0  # leases and evidence timestamps go wrong


@dataclass
class Check:
    name: str
    status: str
    message: str
    hint: str = ""  # what to do (WARN and FAIL)


class Checks:
    def __init__(self) -> None:
        self.results: list[Check] = []

    def add(self, name: str, status: str, message: str, hint: str = "") -> Check:
        c = Check(name, status, message, hint)
        self.results.append(c)
        return c

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.results)


# --- the checks --------------------------------------------------------------------------
def _config_path() -> Path:
    path = os.environ.get("VARTA_CONFIG")
    if path:
        return Path(path)
    return Path(os.environ.get("VARTA_HOME", "./varta-data")) / "varta.toml"


def _pydantic_reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())) or 'settings'}: {str(e.get('msg', '')).removeprefix('Value error, ')}"
                             for e in errors())
        except Exception:  # noqa: BLE001
            pass
    return str(exc)


def check_settings(out: Checks):
    """Settings load (values valid) and every key is known. Returns the settings or None."""
    from varta.config import Settings, unknown_setting_keys

    cfg = _config_path()
    where = f"{cfg}" if cfg.is_file() else "no varta.toml (defaults and VARTA_* variables)"
    if os.environ.get("VARTA_CONFIG") and not cfg.is_file():
        out.add("settings", FAIL, f"VARTA_CONFIG names {cfg}, which is not a file",
                "point VARTA_CONFIG at the configuration file, or unset it to use $VARTA_HOME/varta.toml")
        return None
    try:
        settings = Settings()
    except SystemExit as exc:  # the config file is not valid TOML
        out.add("settings", FAIL, str(exc.code), f"fix the TOML syntax in {cfg}")
        return None
    except Exception as exc:  # noqa: BLE001 - pydantic validation
        source = f"{cfg} or a VARTA_* variable" if cfg.is_file() else "a VARTA_* variable; there is no varta.toml"
        out.add("settings", FAIL, f"invalid setting ({source}): {_pydantic_reason(exc)}",
                "correct the value (docs/operations.md lists the settings; README.md gives each default)")
        return None
    unknown = unknown_setting_keys()
    if unknown:
        out.add("settings", WARN, f"{where}: unknown setting(s) {', '.join(unknown)}; Varta ignores them",
                "fix the spelling, or remove settings this version does not have (a newer version's settings "
                "are fine during a rolling upgrade)")
    else:
        out.add("settings", OK, f"{where}: every setting is valid")
    _check_config_secrecy(out, cfg, settings)
    if settings.metrics_listen:
        host = settings.metrics_listen.rpartition(":")[0].strip("[]")
        if host in ("", "0.0.0.0", "::"):
            out.add("metrics", WARN, f"metrics_listen {settings.metrics_listen} serves /metrics without sign-in on "
                                     "every network interface",
                    "bind it to the monitoring network's address only, or leave it empty and give Prometheus a "
                    "token (varta token create … --scope system.view)")
    return settings


_SECRET_KEYS = ("s3_secret_key", "archive_s3_secret_key", "alarm_webhook_secret", "oidc_client_secret")


def _check_config_secrecy(out: Checks, cfg: Path, settings) -> None:
    """varta.toml holding secrets (keys, a database password) must not be world-readable."""
    if not cfg.is_file():
        return
    text = cfg.read_text(errors="replace")
    has_secret = any(k in text for k in _SECRET_KEYS) or (
        settings.database_url and "@" in settings.database_url and ":" in settings.database_url.split("@")[0]
        and "database_url" in text)
    mode = stat.S_IMODE(cfg.stat().st_mode)
    if has_secret and mode & 0o007:
        out.add("secrets", FAIL, f"{cfg} holds secrets (keys or a password) and anyone on this machine can read it "
                                 f"(mode {mode:04o})", f"chmod 640 {cfg} (owner root, group varta)")
    elif has_secret and mode & 0o070:
        out.add("secrets", OK, f"{cfg} holds secrets; readable by its owner and group only (mode {mode:04o})")


def _writable_folder(out: Checks, name: str, path: Path, what: str) -> bool:
    """The folder is a folder we can write in, or can be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        out.add(name, FAIL, f"{what} {path} is not a folder (a file is in its place)",
                "move the file away, or point VARTA_HOME elsewhere")
        return False
    if not path.exists():
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            out.add(name, FAIL, f"{what} {path} does not exist and cannot be made ({parent} is "
                                f"{'not a folder' if not parent.is_dir() else 'not writable'})",
                    f"create it for the service user: install -d -o varta -g varta -m 0750 {path}")
            return False
        out.add(name, OK, f"{what} {path} does not exist yet; Varta makes it at first start ({parent} is "
                          "writable)")
        return False
    probe = path / f".varta-check-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"varta check\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        out.add(name, FAIL, f"cannot write in {what} {path}: {exc.strerror or exc}",
                f"give the service user the folder: chown -R varta:varta {path}")
        return False
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return True


def check_storage(out: Checks, settings) -> None:
    from varta.recording.retention import free_target_bytes

    home = Path(settings.home)
    if _writable_folder(out, "data folder", home, "the data folder"):
        usage = shutil.disk_usage(home)
        out.add("data folder", OK, f"{home.resolve()} is writable; {usage.free / 1e9:.1f} GB free")
    rec = settings.recordings_dir
    if not home.is_dir():
        return
    if _writable_folder(out, "recordings", rec, "the recordings folder"):
        usage = shutil.disk_usage(rec)
        reserve = free_target_bytes(usage.total, settings.min_free_percent, settings.min_free_mb)
        free = f"{usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB (reserve {reserve / 1e9:.1f} GB)"
        if usage.free < reserve:
            out.add("recordings", WARN, f"{rec.resolve()}: {free}: below the reserve, the oldest unheld footage is "
                                        "deleted early",
                    "add disk space, or move cameras to another recorder; `varta retention` shows the forecast")
        else:
            out.add("recordings", OK, f"{rec.resolve()} is writable; {free}")


def check_database(out: Checks, settings):
    """Reachable, at the newest migration. Returns the engine or None."""
    from sqlalchemy.engine import make_url

    from varta.db.engine import alembic_config, make_engine

    url = settings.db_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        out.add("database", FAIL, "database_url is not a database URL",
                "set database_url to postgresql://USER:PASSWORD@HOST/DB, or leave it empty for SQLite in the "
                "data folder")
        return None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            out.add("database", WARN, f"{shown}: no database yet (the first start makes it)",
                    "start Varta once, or run `varta db-upgrade`")
            return None
    elif not url.startswith(("postgresql", "sqlite")):
        out.add("database", FAIL, f"{shown}: Varta runs on SQLite or PostgreSQL only",
                "set database_url to postgresql://USER:PASSWORD@HOST/DB")
        return None
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        out.add("database", FAIL, f"cannot connect to {shown}: {reason}",
                "check that the server runs and accepts this node (pg_hba.conf, firewall), and the user, password "
                "and database name in database_url")
        return None
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    where = f"{shown} ({engine.dialect.name})"
    if current == head:
        out.add("database", OK, f"{where} reachable; schema at the newest migration ({head})")
    elif current is None:
        out.add("database", WARN, f"{where} reachable but empty: no Varta schema yet",
                "run `varta db-upgrade` (or start Varta: the first node makes the schema)")
    elif current not in known:
        out.add("database", WARN, f"{where}: the schema ({current}) is newer than this version of Varta knows "
                                  f"({head}); it runs on it (migrations only add)",
                "upgrade this node to the version the others run")
    else:
        out.add("database", WARN, f"{where}: schema at {current}, this version's newest is {head}",
                "run `varta db-upgrade` (nodes also migrate at start)")
    return engine


def check_clock(out: Checks, engine) -> None:
    from varta.db.dbclock import read_db_now

    before = time.time()
    try:
        db = read_db_now(engine) / 1e6
    except Exception as exc:  # noqa: BLE001
        out.add("clock", WARN, f"could not read the database's clock: {exc}", "")
        return
    after = time.time()
    diff = db - (before + after) / 2
    where = "the database's" if engine.dialect.name == "sqlite" else "the database server's"
    text = f"this machine's clock is {abs(diff):.2f} s {'behind' if diff > 0 else 'ahead of'} {where}"
    hint = ("keep every node and the database server on NTP (chrony or systemd-timesyncd): footage, evidence "
            "and the journal carry this machine's time, leases the database's")
    if abs(diff) >= CLOCK_FAIL_S:
        out.add("clock", FAIL, text, hint)
    elif abs(diff) >= CLOCK_WARN_S:
        out.add("clock", WARN, text, hint)
    else:
        out.add("clock", OK, text)


def check_ffmpeg(out: Checks, settings) -> None:
    from varta.recording.ffmpeg import find_ffmpeg

    try:
        exe = find_ffmpeg(settings.ffmpeg)
    except RuntimeError as exc:
        out.add("ffmpeg", FAIL, str(exc), "apt-get install ffmpeg")
        return
    try:
        res = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20)
        first = (res.stdout or res.stderr).strip().splitlines()[0] if (res.stdout or res.stderr).strip() else ""
        if res.returncode != 0:
            raise OSError(first or f"exit code {res.returncode}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        out.add("ffmpeg", FAIL, f"{exe} does not run: {exc}",
                "install Debian's ffmpeg (apt-get install ffmpeg), or fix the ffmpeg setting")
        return
    version = first.split(" Copyright")[0]
    try:
        import av

        pyav = f"; PyAV {av.__version__}"
    except Exception as exc:  # noqa: BLE001
        if settings.recorder_backend == "pyav":
            out.add("ffmpeg", FAIL, f"recorder_backend is pyav but PyAV does not load: {exc}",
                    "reinstall Varta's Python packages, or set recorder_backend = \"ffmpeg\"")
            return
        pyav = ""
    out.add("ffmpeg", OK, f"{version} at {exe}{pyav}")


def check_model(out: Checks, settings) -> None:
    from varta.analytics.models import DEFAULT_MODEL, MODELS, model_path, sha256_of

    if not settings.analytics:
        out.add("model", OK, "analytics is off on this node (analytics = false)")
        return
    path = model_path(settings)
    if not path.is_file():
        fp32 = model_path(settings, "fp32")
        if not settings.detector_model and settings.detector_variant == "int8" and fp32.is_file():
            out.add("model", OK, f"{fp32} installed; its INT8 form is made at the first start")
            return
        out.add("model", WARN, f"no detector model at {path}: analytics tells motion only, not people or vehicles",
                f"varta model install {DEFAULT_MODEL} (offline: --from FILE)")
        return
    info = MODELS[DEFAULT_MODEL]
    if not settings.detector_model and path.name == info.filename and sha256_of(path) != info.sha256:
        out.add("model", FAIL, f"{path} is damaged: its SHA-256 is not the published one",
                f"install it again: varta model install {DEFAULT_MODEL}")
        return
    out.add("model", OK, f"detector model {path} ({path.stat().st_size / 1e6:.1f} MB)")


def check_keys(out: Checks, settings) -> None:
    """The signing key's folder 0700, key files 0600, owned by the data folder's owner."""
    from varta.cluster.identity import SIGN_KEY, WRAP_KEY

    home = Path(settings.home)
    keys = settings.keys_dir
    problems, hints = [], []
    owner = home.stat().st_uid if home.is_dir() else None
    files = [p for p in (home / SIGN_KEY, home / WRAP_KEY) if p.exists()]
    if keys.exists():
        if not keys.is_dir():
            out.add("keys", FAIL, f"{keys} is not a folder", "move it away: Varta keeps the signing key there")
            return
        mode = stat.S_IMODE(keys.stat().st_mode)
        if mode & 0o077:
            problems.append(f"{keys} is open to others (mode {mode:04o})")
            hints.append(f"chmod 700 {keys}")
        files += sorted(p for p in keys.iterdir() if p.is_file())
    for p in files:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            problems.append(f"{p} is readable by others (mode {mode:04o})")
            hints.append(f"chmod 600 {p}")
    if problems:
        out.add("keys", FAIL, "; ".join(problems), "; ".join(hints))
        return
    strangers = [p for p in ([keys] if keys.is_dir() else []) + files if owner is not None and p.stat().st_uid != owner]
    if strangers:
        out.add("keys", WARN, f"{', '.join(str(p) for p in strangers)} not owned by the data folder's owner "
                              f"(uid {owner}): the service may not read them",
                f"chown -R varta:varta {home}")
        return
    if not files:
        out.add("keys", OK, "no keys yet (each node makes its own at first start; the signing key comes with the "
                            "first web node)")
    else:
        out.add("keys", OK, f"{len(files)} key file(s), mode 0600, in folders only their owner reads")


def check_archive(out: Checks, settings) -> None:
    if settings.archive_storage != "s3":
        out.add("archive", OK, "archive_storage = local: footage stays on each recorder's disk")
        return
    from varta.storage.objects import StoreError, open_store

    try:
        store = open_store(settings)
    except StoreError as exc:
        out.add("archive", FAIL, str(exc), "complete the archive_s3_* settings")
        return
    info = store.check()
    if not info.reachable:
        out.add("archive", FAIL, f"{store.cfg.where()} cannot be reached: {info.detail}",
                "check the endpoint, the bucket name, the keys and the network; recorders keep footage on "
                "their disks until it is reachable")
    elif not info.object_lock:
        out.add("archive", WARN, f"{store.cfg.where()} reachable, but without S3 Object Lock: held footage is "
                                 "protected by Varta's database only",
                "create the bucket with Object Lock enabled (docs/design/storage.md)")
    else:
        out.add("archive", OK, f"{store.cfg.where()} reachable; Object Lock on (held footage protected by the "
                               "bucket)")


def run_checks() -> Checks:
    out = Checks()
    settings = check_settings(out)
    if settings is None:
        return out  # nothing else can be read without the settings
    check_storage(out, settings)
    engine = check_database(out, settings)
    if engine is not None:
        check_clock(out, engine)
        engine.dispose()
    check_ffmpeg(out, settings)
    check_model(out, settings)
    check_keys(out, settings)
    check_archive(out, settings)
    return out


# --- the command ---------------------------------------------------------------------------
_MARK = {OK: "OK  ", WARN: "WARN", FAIL: "FAIL"}
_COLOUR = {OK: typer.colors.GREEN, WARN: typer.colors.YELLOW, FAIL: typer.colors.RED}


def register(app) -> None:
    """Add the command to the ``varta`` Typer app."""

    @app.command("check")
    def check(as_json: bool = typer.Option(False, "--json", help="one JSON object, for scripts and monitoring")) -> None:
        """Check this server before starting it: settings, folders and free space, the database and
        its schema, the clock, ffmpeg, the detector model, key permissions and the archive bucket.
        Exit code 1 when any check FAILs."""
        out = run_checks()
        if as_json:
            typer.echo(json.dumps({"ok": not out.failed, "checks": [asdict(c) for c in out.results]},
                                  ensure_ascii=False))
        else:
            colour = sys.stdout.isatty()
            for c in out.results:
                mark = typer.style(_MARK[c.status], fg=_COLOUR[c.status]) if colour else _MARK[c.status]
                line = f"{mark}  {c.name:<12} {c.message}"
                if c.hint and c.status != OK:
                    line += f"\n{'':19}what to do: {c.hint}"
                typer.echo(line)
            fails = sum(c.status == FAIL for c in out.results)
            warns = sum(c.status == WARN for c in out.results)
            typer.echo(f"{fails} failed, {warns} warning(s), {len(out.results) - fails - warns} ok"
                       if fails or warns else "everything is ready")
        if out.failed:
            raise typer.Exit(1)
