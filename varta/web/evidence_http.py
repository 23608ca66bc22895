"""What the evidence routers share: domain errors as HTTP answers, camera intervals in,
register files out."""

from __future__ import annotations

from contextlib import contextmanager

from fastapi import HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.clock import format_time, now_us
from varta.evidence.holds import HoldError
from varta.evidence.incidents import IncidentError
from varta.evidence.jobs import JobError
from varta.evidence.records import NotFound
from varta.evidence.requests import RequestError
from varta.web.deps import AppServices, time_param


class IntervalIn(BaseModel):
    camera_id: str = Field(examples=["mel-0012"])
    from_: str = Field(alias="from", examples=["2026-03-03T14:05:00"])
    to: str = Field(examples=["2026-03-03T14:40:00"])


def intervals(items: list[IntervalIn], svc: AppServices) -> list[tuple[str, int, int]]:
    """Camera intervals in city time (or with an offset); 404 for a camera Varta does not know."""
    out = []
    for it in items:
        if svc.registry.get(it.camera_id, include_removed=True) is None:
            raise HTTPException(404, f"no camera {it.camera_id}")
        out.append((it.camera_id, time_param(it.from_, "from", svc), time_param(it.to, "to", svc)))
    return out


@contextmanager
def domain_errors(caller=None, action: str = "", obj: str = ""):
    """The registers' refusals as HTTP answers; a refusal by the order's rules is journaled."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None
    except PermissionError as exc:
        if caller is not None:
            caller.record(action, obj, "refused", str(exc))
        raise HTTPException(403, str(exc)) from None
    except (RequestError, HoldError, IncidentError, JobError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None


def register_file(fmt: str, name: str, csv_text, pdf_bytes) -> Response:
    """``fmt`` csv or pdf: the register as a download (callables, so only one is rendered)."""
    stamp = format_time(now_us())[:10]
    if fmt == "csv":
        return Response(csv_text(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="varta-{name}-{stamp}.csv"'})
    return Response(pdf_bytes(), media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="varta-{name}-{stamp}.pdf"'})
