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
    """Disk use and how many days of footage the disk holds at the measured bitrates."""
    st = measure_storage(svc.index, svc.registry, svc.settings)
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
    }


@router.get("/alarms")
def alarms(active: bool = False, caller: Caller = guard("system.view"),
           svc: AppServices = Depends(services)) -> list[dict]:
    tz = svc.settings.tz
    return [
        {**a, "created": format_time(a["created_us"], tz),
         "cleared": format_time(a["cleared_us"], tz) if a["cleared_us"] else None}
        for a in svc.alarms.list(active_only=active)
    ]
