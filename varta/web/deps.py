"""Objects the HTTP handlers share: settings, engine and the services built on them.

Held on ``app.state`` of one FastAPI app (one per process); everything persistent is in
the database, so several web nodes behind a load balancer see the same archive.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy import Engine

from varta.access.service import AccessControl
from varta.live.hub import LiveHub
from varta.cameras.registry import CameraRegistry
from varta.clock import parse_time
from varta.config import Settings
from varta.events.system_alarms import SystemAlarms
from varta.playback.jobs import ExportJobs
from varta.recording.index import ArchiveIndex


@dataclass
class AppServices:
    settings: Settings
    engine: Engine
    registry: CameraRegistry
    index: ArchiveIndex
    exports: ExportJobs
    alarms: SystemAlarms
    ffmpeg: str
    access: AccessControl
    live: LiveHub
    node: object = None  # the running node (varta/node/runtime.py): identity, peers, runner
    files: object = None  # varta.storage.files.NodeFiles: files on any node
    events: object = None  # api_events.EventsApi, made on first use
    evidence: object = None  # varta.evidence.service.Evidence
    viewings: object = None  # varta.access.viewings.ArchiveViewings: archive.play journaled per interval
    lockdown: object = None  # varta.lockdown.service.Lockdown: what a lockdown shuts, read every ¼ s


def services(request: Request) -> AppServices:
    return request.app.state.services


def time_param(value: str | None, name: str, svc: AppServices, default: int | None = None) -> int:
    if value is None or value == "":
        if default is not None:
            return default
        raise HTTPException(422, f"query parameter '{name}' is required (ISO 8601, e.g. 2026-03-03T14:05:00)")
    try:
        return parse_time(value, svc.settings.tz)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None
