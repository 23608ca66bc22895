"""What every ``varta`` command shares: settings, database, errors, and the access check.

A command typed on the server's shell is *direct* access (A4.3). It is checked by the same
policy as the web (varta.access.policy) and journaled with the operating-system user, and
with the account named by ``varta --as LOGIN`` when given (that account's role decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from varta.clock import parse_time
from varta.config import Settings


@dataclass
class CliState:
    as_login: str | None = None


STATE = CliState()


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic validation: show the reason, not a traceback
        fail(f"configuration: {exc}")


def open_engine(settings: Settings):
    from varta.db.engine import open_database

    try:
        return open_database(settings.db_url, keys_dir=settings.keys_dir)
    except Exception as exc:
        fail(f"cannot open the database: {exc}")


def parse_cli_time(text: str, settings: Settings, what: str) -> int:
    try:
        return parse_time(text, settings.tz)
    except ValueError as exc:
        fail(f"{what}: {exc}")


def access_control(settings: Settings, engine):
    from varta.access.service import AccessControl

    try:
        return AccessControl.from_settings(engine, settings)
    except ValueError as exc:
        fail(f"configuration: {exc}")


def authorize(settings: Settings, engine, action: str, camera_id: str | None = None, obj: str = "",
              detail: str = ""):
    """Check ``action`` for whoever runs this command; exit 3 (journaled) when refused.

    Returns (access control, principal) for journaling what the command then does.
    """
    from varta.access.service import console_principal
    from varta.cameras.registry import CameraRegistry

    access = access_control(settings, engine)
    try:
        who = console_principal(access.accounts, STATE.as_login)
    except PermissionError as exc:
        fail(str(exc), 3)
    group = None
    if camera_id is not None:
        cam = CameraRegistry(engine).get(camera_id, include_removed=True)
        if cam is None:
            fail(f"no camera {camera_id}")
        group, obj = cam.group_name, obj or f"camera:{camera_id}"
    decision = access.check(who, action, obj, group, detail)
    if not decision:
        fail(f"refused: {decision.reason}", 3)
    return access, who


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM. The handler only sets a flag: a handler that took a
    lock (``threading.Event.set``) could run while the interrupted main thread held that very
    lock inside ``Event.wait`` and deadlock, which left orphaned workers behind."""
    import signal
    import time

    asked: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: asked.append(signum))
    while not asked:
        time.sleep(0.5)


def archive_store(settings: Settings, always: bool = False):
    """The archive bucket for a command (None where ``archive_storage`` is local, unless
    ``always``: the archive_s3_* settings are used whatever the backend); exit 2 with the
    reason on settings that cannot work."""
    from varta.storage.objects import S3Config, S3Store, StoreError, open_store

    try:
        return S3Store(S3Config.from_settings(settings)) if always else open_store(settings)
    except StoreError as exc:
        fail(str(exc))


def command_node(settings: Settings, engine):
    """The node of this data folder, for a command typed on its server: its identity (None
    where no node ever ran here) and its view of files on any node of the cluster."""
    from varta.cluster.identity import load_identity, read_node_id
    from varta.storage.files import NodeFiles

    store = archive_store(settings)
    if read_node_id(settings.home) is None:
        return None, NodeFiles(settings, store=store)
    from varta.cluster.nodes import NodeRegistry
    from varta.cluster.peer import PeerClient

    identity = load_identity(settings.home)
    return identity, NodeFiles(settings, identity.id, PeerClient(identity, NodeRegistry(engine)), store)
