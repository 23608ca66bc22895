"""/api/nodes: the cluster's nodes, their cameras, load and heartbeat; drain and resume."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from varta.cluster.nodes import ACTIVE, DRAINING, NodeError, NodeRegistry, overview
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/nodes", tags=["cluster"])


def _registry(svc: AppServices) -> NodeRegistry:
    return getattr(svc.node, "registry", None) or NodeRegistry(svc.engine)


@router.get("")
def list_nodes(caller: Caller = guard("system.view"), svc: AppServices = Depends(services)) -> list[dict]:
    """Every node: roles, state (active, draining, stopping, down, stopped), the cameras it
    records and analyses now, its last heartbeat (the database's clock) and its load."""
    return overview(svc.engine, _registry(svc), svc.settings.tz)


def _set_state(svc: AppServices, caller: Caller, name: str, state: str, verb: str) -> dict:
    try:
        node = _registry(svc).set_state(name, state)
    except NodeError as exc:
        raise HTTPException(404, str(exc)) from None
    caller.record("system.maintain", f"node:{node.name}", detail=f"{verb} (node {node.id})")
    return next(n for n in overview(svc.engine, _registry(svc), svc.settings.tz) if n["id"] == node.id)


@router.post("/{name}/drain")
def drain(name: str, caller: Caller = guard("system.maintain"), svc: AppServices = Depends(services)) -> dict:
    """Move the node's cameras to other nodes (make-before-break: no gap) and give it no new
    work, for maintenance. Returns at once; ``cameras`` empties as the moves complete."""
    return _set_state(svc, caller, name, DRAINING, "drained: its cameras move to other nodes")


@router.post("/{name}/resume")
def resume(name: str, caller: Caller = guard("system.maintain"), svc: AppServices = Depends(services)) -> dict:
    """Take the node back into service: cameras placed on it return (without a gap)."""
    return _set_state(svc, caller, name, ACTIVE, "back in service")
