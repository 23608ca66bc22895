"""/api/system: storage forecast, disk use, system alarms, health."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Depends

from varta import __version__
from varta.clock import format_time, now_us
from varta.recording import retention
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/system", tags=["system"])


@router.get("/health")
def health(svc: AppServices = Depends(services)) -> dict:
    with svc.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return {"status": "ok", "version": __version__, "time": format_time(now_us(), svc.settings.tz)}


@router.get("/storage")
def storage(svc: AppServices = Depends(services)) -> dict:
    """Disk use and how many days of footage the disk holds at the measured bitrates."""
    root = svc.settings.recordings_dir
    root.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(root)
    totals = svc.index.camera_totals()
    cams = svc.registry.list()
    bitrates = {c.id: b for c in cams if (b := svc.index.recent_bitrate_bps(c.id))}
    reserve = retention.free_target_bytes(usage.total, svc.settings.min_free_percent, svc.settings.min_free_mb)
    fc = retention.forecast(usage.free, sum(t[0] for t in totals.values()), reserve, bitrates,
                            {c.id: c.retention_days for c in cams})
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
    }


@router.get("/alarms")
def alarms(active: bool = False, svc: AppServices = Depends(services)) -> list[dict]:
    tz = svc.settings.tz
    return [
        {**a, "created": format_time(a["created_us"], tz),
         "cleared": format_time(a["cleared_us"], tz) if a["cleared_us"] else None}
        for a in svc.alarms.list(active_only=active)
    ]
