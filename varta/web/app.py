"""The FastAPI application (one per process; state lives in the database)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from varta import __version__
from varta.cameras.registry import CameraRegistry
from varta.events.system_alarms import SystemAlarms
from varta.playback.jobs import ExportJobs
from varta.recording.ffmpeg import find_ffmpeg
from varta.recording.index import ArchiveIndex
from varta.web import api_cameras, api_exports, api_recordings, api_system
from varta.web.deps import AppServices


def create_app(settings, engine) -> FastAPI:
    app = FastAPI(
        title="Varta",
        version=__version__,
        description="City-wide video surveillance: cameras, recordings, playback and export.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    ffmpeg = find_ffmpeg(settings.ffmpeg)
    app.state.services = AppServices(
        settings=settings,
        engine=engine,
        registry=CameraRegistry(engine),
        index=ArchiveIndex(engine),
        exports=ExportJobs(engine, settings, ffmpeg, settings.recorder_name),
        alarms=SystemAlarms(engine, settings.recorder_name),
        ffmpeg=ffmpeg,
    )
    for module in (api_cameras, api_recordings, api_exports, api_system):
        app.include_router(module.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return (
            "<!doctype html><meta charset=utf-8><title>Varta</title>"
            "<h1>Varta</h1><p>Recording is running. The operator console arrives with the console issue; "
            "meanwhile the API is documented at <a href='/api/docs'>/api/docs</a> "
            "(<a href='/api/openapi.json'>OpenAPI</a>).</p>"
        )

    return app
