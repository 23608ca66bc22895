"""GET /metrics: Prometheus exposition (varta/monitoring/metrics.py).

Like every route it is guarded: ``system.view``, which an administrator grants to
Prometheus as an API token (``varta token create LOGIN --name prometheus --scope
system.view``; ``Authorization: Bearer …``). A scrape is not journaled when allowed (a
line every 15 seconds would bury the journal); a refusal is, like any other.

``metrics_listen`` (HOST:PORT, off by default) also serves the same metrics without sign-in,
for a monitoring network that cannot hold a token.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

log = logging.getLogger(__name__)


def _registry(svc: AppServices):
    reg = getattr(svc, "_metrics_registry", None)
    if reg is None:
        from varta.monitoring.metrics import make_registry

        reg = make_registry(svc.settings, svc.engine, svc.node)
        svc._metrics_registry = reg
    return reg


@asynccontextmanager
async def _listener(app):
    """Start the unauthenticated listener with the app when ``metrics_listen`` is set."""
    svc = getattr(app.state, "services", None)
    listener = None
    if svc is not None and svc.settings.metrics_listen:
        from varta.monitoring.metrics import MetricsListener

        try:
            listener = MetricsListener(_registry(svc), svc.settings.metrics_listen).start()
        except (OSError, ValueError) as exc:
            # A monitoring port must never stop a node (a town's serve records too): said, not fatal.
            log.error("metrics_listen %s: cannot serve /metrics there (%s); /metrics with a token still works",
                      svc.settings.metrics_listen, exc)
    try:
        yield
    finally:
        if listener is not None:
            listener.stop()


router = APIRouter(lifespan=_listener)


@router.get("/metrics", tags=["system"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(request: Request, caller: Caller = guard("system.view"),
            svc: AppServices = Depends(services)) -> Response:
    """The city's state for Prometheus: cameras, storage forecast, analytics, jobs, journal,
    nodes' heartbeats and the archive's shipping backlog (docs/operations.md)."""
    from varta.monitoring.metrics import exposition

    body, content_type = exposition(_registry(svc), request.headers.get("accept"))
    return Response(body, media_type=content_type)
