"""The FastAPI application (one per process; state lives in the database)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from varta import __version__
from varta.cameras.registry import CameraRegistry
from varta.events.system_alarms import SystemAlarms
from varta.evidence.daily import DailyReporter
from varta.evidence.service import Evidence
from varta.playback.jobs import ExportJobs
from varta.recording.ffmpeg import find_ffmpeg
from varta.recording.index import ArchiveIndex
from varta.access.service import AccessControl
from varta.live.relay import LiveHub
from varta.web import (api_admin, api_auth, api_cameras, api_events, api_exports, api_holds, api_incidents,
                       api_journal, api_live, api_recordings, api_requests, api_system)
from varta.web.auth import public
from varta.web.deps import AppServices


STATIC = Path(__file__).parent / "static"


def console_csp(tile_url: str) -> str:
    """Only this server's own scripts, styles and streams; images also from the map's tile server."""
    from urllib.parse import urlsplit

    tiles = ""
    if tile_url:  # "{s}" (Leaflet's subdomains a, b, c) becomes a CSP wildcard
        parts = urlsplit(tile_url)
        tiles = f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: blob:{tiles}; media-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Background work of a web node: transfers interrupted by a restart go on; the daily
    deadline report is written."""
    svc = app.state.services
    svc.evidence.jobs.recover()
    daily = DailyReporter(svc.evidence, svc.alarms, svc.settings.home / "reports", svc.settings.daily_report_hour)
    daily.start()
    try:
        yield
    finally:
        daily.halt()
        svc.evidence.jobs.stop()


def create_app(settings, engine) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Varta",
        version=__version__,
        description="City-wide video surveillance: cameras, recordings, playback and export.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    ffmpeg = find_ffmpeg(settings.ffmpeg)
    csp = console_csp(settings.map_tile_url)
    app.state.services = AppServices(
        settings=settings,
        engine=engine,
        registry=CameraRegistry(engine),
        index=ArchiveIndex(engine),
        exports=ExportJobs(engine, settings, ffmpeg, settings.recorder_name),
        alarms=SystemAlarms(engine, settings.recorder_name),
        ffmpeg=ffmpeg,
        access=AccessControl.from_settings(engine, settings),
        live=LiveHub(settings.rtsp_timeout_s),
    )
    svc = app.state.services
    svc.evidence = Evidence(engine, settings, registry=svc.registry, index=svc.index, ffmpeg=ffmpeg,
                            access=svc.access, node=settings.recorder_name)
    for module in (api_auth, api_cameras, api_live, api_recordings, api_exports, api_system, api_journal, api_admin,
                   api_events, api_requests, api_holds, api_incidents):
        app.include_router(module.router)
    app.include_router(api_requests.key_router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        # Nothing here is to be framed, sniffed, cached by shared caches or sent elsewhere.
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        else:  # the console: only this server's own scripts, styles and streams
            resp.headers.setdefault("Content-Security-Policy", csp)
        return resp

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=FileResponse, include_in_schema=False, dependencies=[public("the console's page")])
    def index() -> FileResponse:
        # The page itself holds no data: everything it shows comes from guarded /api routes.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
