"""The FastAPI application (one per process; state lives in the database)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
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
from varta.access.viewings import ArchiveViewings, ViewingSweeper
from varta.live.hub import LiveHub
from varta.web import (api_admin, api_lockdown, api_metrics, api_oidc, api_auth, api_cameras, api_events, api_exchange, api_exports, api_holds,
                       api_incidents, api_journal, api_live, api_nodes, api_onvif, api_placement, api_recordings, api_requests,
                       api_search, api_system)
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
    """Background work of a web node: the daily deadline report is written and finished
    archive viewings are journaled. (Jobs are the node's job runner's: varta/jobs/runner.py.)"""
    svc = app.state.services
    daily = DailyReporter(svc.evidence, svc.alarms, svc.settings.home / "reports", svc.settings.daily_report_hour)
    daily.start()
    sweeper = ViewingSweeper(svc.viewings)
    sweeper.start()
    try:
        yield
    finally:
        daily.halt()
        sweeper.halt()


def _standalone(settings, engine):
    """The pieces a node runtime gives, for an app made without one (tests, tools): this
    data folder's node identity, its own job runner, files on this disk only."""
    from types import SimpleNamespace

    from varta.cluster.identity import load_identity
    from varta.jobs.runner import JobRunner
    from varta.storage.files import NodeFiles
    from varta.storage.objects import open_store

    identity = load_identity(settings.home)
    return SimpleNamespace(identity=identity, runner=JobRunner(engine, identity.id),
                           files=NodeFiles(settings, identity.id, None, open_store(settings)), live=LiveHub(settings.rtsp_timeout_s),
                           registry=None, peers=None, coordinator=None, roles={"web"}, name_of=lambda n: n or "?")


def create_app(settings, engine, node=None) -> FastAPI:
    """``node``: the running node (varta/node/runtime.py) whose identity, job runner, live
    relays and peers the API uses."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Varta",
        version=__version__,
        description="City-wide video surveillance: cameras, recordings, playback and export.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below from the project's own copy of Swagger UI: no CDN, works offline
        redoc_url=None,
    )
    ffmpeg = find_ffmpeg(settings.ffmpeg)
    csp = console_csp(settings.map_tile_url)
    node = node or _standalone(settings, engine)
    app.state.services = AppServices(
        settings=settings,
        engine=engine,
        registry=CameraRegistry(engine),
        index=ArchiveIndex(engine),
        exports=ExportJobs(engine, settings, ffmpeg, node.runner, node.files),
        alarms=SystemAlarms(engine, node.identity.id),
        ffmpeg=ffmpeg,
        access=AccessControl.from_settings(engine, settings),
        live=node.live,
        node=node,
        files=node.files,
    )
    svc = app.state.services
    from varta.lockdown.service import Lockdown

    svc.lockdown = Lockdown(engine, svc.access, settings.tz)
    svc.viewings = ArchiveViewings(engine, svc.access.journal, settings.tz, settings.segment_seconds,
                                  settings.archive_view_idle_s)
    svc.evidence = Evidence(engine, settings, registry=svc.registry, index=svc.index, ffmpeg=ffmpeg,
                            access=svc.access, runner=node.runner, files=node.files, identity=node.identity)
    for module in (api_auth, api_cameras, api_live, api_recordings, api_exports, api_system, api_journal, api_admin,
                   api_events, api_requests, api_holds, api_incidents, api_nodes, api_exchange, api_search, api_placement,
                   api_onvif, api_metrics, api_oidc, api_lockdown):
        app.include_router(module.router)
    app.include_router(api_requests.key_router)
    app.include_router(api_exchange.profile_router)
    app.include_router(api_cameras.addresses_router)
    app.include_router(api_onvif.ptz_router)
    if node.peers is not None:  # the node-to-node API, beside the public one on the same port
        from varta.node.internal import internal_routes

        for route in internal_routes(node):
            app.router.routes.append(route)

    from varta.secrets.box import SecretsError

    @app.exception_handler(SecretsError)
    async def secrets_unavailable(request: Request, exc: SecretsError):
        # The secrets key has not reached this node (or a copied database without its keys):
        # said plainly, as a service that is not ready, never as a crash.
        from fastapi.responses import JSONResponse

        logging.getLogger("varta.secrets").error("%s", exc)
        return JSONResponse({"detail": f"this node cannot open the database's secrets now: {exc}"}, status_code=503)

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

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False,
             dependencies=[public("the API's documentation page (no data: it reads /api/openapi.json)")])
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Varta API",
                                   swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png")

    @app.get("/", response_class=FileResponse, include_in_schema=False, dependencies=[public("the console's page")])
    def index() -> FileResponse:
        # The page itself holds no data: everything it shows comes from guarded /api routes.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
