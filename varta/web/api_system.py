"""/api/system: storage forecast, disk use, system alarms, health."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from varta.clock import format_time, now_us
from varta.recording.janitor import measure_storage
from varta.web.auth import Caller, guard, public
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/system", tags=["system"])


@router.get("/health", dependencies=[public("liveness for load balancers and monitoring; tells nothing else")])
def health(svc: AppServices = Depends(services)) -> dict:
    with svc.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return {"status": "ok", "time": format_time(now_us(), svc.settings.tz)}


@router.get("/storage")
def storage(caller: Caller = guard("system.view"), svc: AppServices = Depends(services)) -> dict:
    """Disk use and how many days of footage the disk holds at the measured bitrates.

    Each recording node has its own disk: ``nodes`` gives each one's forecast (its disk
    against the cameras it records). The top level is this node's when it records, else
    the cluster's in sum (the shortest forecast decides ``days_capacity``)."""
    node = svc.node
    recorder = getattr(node, "recorder", None)
    registry = getattr(node, "registry", None)
    nodes = {}
    if registry is not None:
        nodes = {n.name: {**n.load["storage"], "state": n.status} for n in registry.list()
                 if "recorder" in n.roles and (n.load or {}).get("storage")}
    if recorder is None and nodes:
        live = [v for v in nodes.values() if v["state"] != "stopped"] or list(nodes.values())
        days = [v["days_capacity"] for v in live if v["days_capacity"] is not None]
        return {
            "disk": {"total_bytes": sum(v["disk_total_bytes"] for v in live),
                     "used_bytes": sum(v["disk_total_bytes"] - v["disk_free_bytes"] for v in live),
                     "free_bytes": sum(v["disk_free_bytes"] for v in live),
                     "reserve_bytes": sum(v["reserve_bytes"] for v in live)},
            "archive_bytes": sum(v["archive_bytes"] for v in live),
            "daily_bytes": sum(v["daily_bytes"] for v in live),
            "days_capacity": min(days) if days else None,
            "required_days": max((v["required_days"] for v in live), default=0),
            "short": any(v["short"] for v in live),
            "cameras": {},
            "nodes": nodes,
        }
    held = recorder.held_cameras() if recorder is not None else None
    st = measure_storage(svc.index, svc.registry, svc.settings, node.identity.id, held)
    usage, fc, totals, bitrates, reserve = st.usage, st.forecast, st.totals, st.bitrates_bps, st.reserve_bytes
    tz = svc.settings.tz
    return {
        "disk": {"total_bytes": usage.total, "used_bytes": usage.used, "free_bytes": usage.free,
                 "reserve_bytes": reserve},
        "archive_bytes": fc.used_bytes,
        "daily_bytes": round(fc.daily_bytes),
        "days_capacity": round(fc.days_capacity, 2) if fc.days_capacity is not None else None,
        "required_days": fc.required_days,
        "short": fc.short,
        "cameras": {
            cid: {"bytes": t[0], "recorded_seconds": t[1], "oldest": format_time(t[2], tz),
                  "bitrate_kbps": round(bitrates[cid] / 1000, 1) if cid in bitrates else None}
            for cid, t in totals.items()
        },
        "nodes": nodes,
    }


@router.get("/archive")
def archive(caller: Caller = guard("system.view"), svc: AppServices = Depends(services)) -> dict:
    """The archive's backend, whether the bucket itself protects held footage (Object Lock),
    and how far shipping to it is behind (the city, and each node)."""
    from varta.storage.shipping import archive_status

    return archive_status(svc.settings, svc.engine, svc.files.store)


@router.get("/alarms")
def alarms(active: bool = False, caller: Caller = guard("system.view"),
           svc: AppServices = Depends(services)) -> list[dict]:
    tz = svc.settings.tz
    registry = getattr(svc.node, "registry", None)
    names = registry.names() if registry is not None else {}
    return [
        {**a, "node_name": names.get(a["node"], a["node"]), "created": format_time(a["created_us"], tz),
         "cleared": format_time(a["cleared_us"], tz) if a["cleared_us"] else None}
        for a in svc.alarms.list(active_only=active)
    ]
