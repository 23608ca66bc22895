"""The incident register (R7: documenting and registering unlawful acts and emergencies).

Pure rules, no I/O. An incident is a record of what happened — type, time, place, cameras,
description — with its history, and the links that make it evidence: the alarms that showed
it, the holds that keep its footage, the requests and packages made from it.
"""

from __future__ import annotations

TYPES = {
    "offence": ("Правопорушення", "Offence"),
    "crime": ("Кримінальне правопорушення", "Crime"),
    "traffic_accident": ("ДТП", "Traffic accident"),
    "public_order": ("Порушення громадського порядку", "Breach of public order"),
    "vandalism": ("Пошкодження комунального майна", "Damage to community property"),
    "fire": ("Пожежа", "Fire"),
    "emergency": ("Надзвичайна ситуація", "Emergency"),
    "missing_person": ("Зникнення людини", "Missing person"),
    "other": ("Інше", "Other"),
}

OPEN, INVESTIGATING, CLOSED = "open", "investigating", "closed"
STATUSES = {
    OPEN: ("Відкрито", "Open"),
    INVESTIGATING: ("Розглядається", "Under review"),
    CLOSED: ("Закрито", "Closed"),
}

EDITABLE = ("type", "title", "description", "place", "cameras", "start_us", "end_us", "status")


class IncidentError(ValueError):
    pass


def validate(fields: dict, now_us: int) -> None:
    """Raise IncidentError naming the first field that is wrong."""
    if fields.get("type") not in TYPES:
        raise IncidentError(f"unknown incident type {fields.get('type')!r}; types: {', '.join(TYPES)}")
    if fields.get("status", OPEN) not in STATUSES:
        raise IncidentError(f"unknown status {fields.get('status')!r}; statuses: {', '.join(STATUSES)}")
    if not str(fields.get("title", "")).strip():
        raise IncidentError("a short title is required")
    start, end = fields.get("start_us"), fields.get("end_us")
    if start is None:
        raise IncidentError("when it happened (from) is required")
    if end is not None and end < start:
        raise IncidentError("the end of the incident is before its start")
    if start > now_us + 60_000_000:
        raise IncidentError("the incident starts in the future")
    if not fields.get("cameras") and not str(fields.get("place", "")).strip():
        raise IncidentError("name the place or at least one camera")


def changes(before: dict, after: dict) -> dict:
    """{field: [old, new]} for the history line."""
    return {k: [before.get(k), after.get(k)] for k in EDITABLE if k in after and before.get(k) != after.get(k)}
