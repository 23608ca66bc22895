"""The registers as files: CSV (every field, for spreadsheets and archives) and PDF (the
printable register the Responsible Department files), plus the daily deadline report."""

from __future__ import annotations

import csv
import io

from varta.access.policy import ROLE_TITLES
from varta.evidence import requests as rules
from varta.evidence.incidents import STATUSES, TYPES
from varta.pdftable import table_pdf


def _csv(header: tuple[str, ...], rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _items(items: list[dict]) -> str:
    return "\n".join(f"{i['camera_id']}: {i['from'][:16]} – {i['to'][11:16] if i['to'][:10] == i['from'][:10] else i['to'][:16]}"
                     for i in items)


def _office(role: str | None) -> str:
    return ROLE_TITLES.get(role or "", (role or "",))[0]


# --- requests ----------------------------------------------------------------------------
REQUEST_COLUMNS = ("number", "kind", "state", "incoming_no", "incoming_date", "requester", "contact", "basis",
                   "purpose", "items", "registered", "registered_by", "decision", "resolution_date", "resolver",
                   "resolver_office", "resolution_text", "due_date", "deadline", "package_sha256", "transferred",
                   "location", "closed")


def requests_csv(reqs: list[dict]) -> str:
    def row(r):
        res = r["resolution"] or {}
        tr = r["transfer"] or {}
        return (r["number"], r["kind"], r["state"], r["incoming_no"], r["incoming_date"], r["requester"], r["contact"],
                r["basis"], r["purpose"], "; ".join(f"{i['camera_id']} {i['from']} – {i['to']}" for i in r["items"]),
                r["registered"], r["registered_by"], res.get("decision"), res.get("date"), res.get("name"),
                res.get("office"), res.get("text"), r["due_date"], r["deadline"],
                (r["package"] or {}).get("sha256"), tr.get("at"), tr.get("location"), r["closed"])
    return _csv(REQUEST_COLUMNS, (row(r) for r in reqs))


def requests_pdf(reqs: list[dict], title: str, subtitle: str) -> bytes:
    head = ("№", "Вид / Kind", "Вхідний / Incoming", "Запитувач / Requester", "Камери та інтервали / Cameras",
            "Резолюція / Resolution", "Строк / Due", "Стан / State")
    widths = (24, 28, 30, 44, 52, 48, 22, 29)

    def row(r):
        res = r["resolution"]
        resolution = (f"{'погоджено' if res['decision'] == 'approved' else 'відмовлено'} {res['date']}\n"
                      f"{_office(res['office'])} {res['name']}") if res else ""
        due = r["due_date"] or ""
        if r["deadline"] in ("overdue", "due_today", "due_soon"):
            due = f"{due}\n!! {r['deadline']}"
        return (r["number"], rules.KINDS[r["kind"]][0], f"{r['incoming_no']}\n{r['incoming_date']}",
                f"{r['requester']}\n{r['contact']}", _items(r["items"]), resolution, due,
                rules.STATE_TITLES[r["state"]][0])
    return table_pdf(title, subtitle, head, widths, (row(r) for r in reqs))


# --- holds -------------------------------------------------------------------------------
HOLD_COLUMNS = ("number", "kind", "active", "reason", "instruction_no", "instruction_date", "author", "author_office",
                "intervals", "created", "created_by", "request_id", "incident_id", "released", "released_by",
                "destruction_no", "destruction_date", "destruction_author", "destruction_office", "release_note")


def holds_csv(holds: list[dict]) -> str:
    def row(h):
        ins, de = h["instruction"] or {}, h["destruction"] or {}
        return (h["number"], h["kind"], h["active"], h["reason"], ins.get("number"), ins.get("date"), ins.get("author"),
                ins.get("office"), "; ".join(f"{i['camera_id']} {i['from']} – {i['to']}" for i in h["intervals"]),
                h["created"], h["created_by"], h["request_id"], h["incident_id"], h["released"], h["released_by"],
                de.get("number"), de.get("date"), de.get("author"), de.get("office"), h["release_note"])
    return _csv(HOLD_COLUMNS, (row(h) for h in holds))


def holds_pdf(holds: list[dict], title: str, subtitle: str) -> bytes:
    head = ("№", "Підстава / Grounds", "Камери та інтервали / Cameras", "Внесено / Entered",
            "Знищення / Destruction", "Стан / State")
    widths = (24, 62, 62, 36, 55, 38)

    def row(h):
        ins, de = h["instruction"], h["destruction"]
        grounds = (f"доручення № {ins['number']} від {ins['date']}\n{_office(ins['office'])} {ins['author']}"
                   if ins else h["reason"])
        destroyed = (f"№ {de['number']} від {de['date']}\n{_office(de['office'])} {de['author']}" if de
                     else (h["release_note"] or ""))
        state = "діє / active" if h["active"] else f"знято / released\n{(h['released'] or '')[:16]}"
        return (h["number"], grounds, _items(h["intervals"]), f"{h['created'][:16]}\n{h['created_by']}", destroyed, state)
    return table_pdf(title, subtitle, head, widths, (row(h) for h in holds))


# --- incidents ---------------------------------------------------------------------------
INCIDENT_COLUMNS = ("number", "type", "status", "title", "from", "to", "place", "cameras", "description", "events",
                    "created", "created_by", "updated")


def incidents_csv(incs: list[dict]) -> str:
    return _csv(INCIDENT_COLUMNS, ((i["number"], i["type"], i["status"], i["title"], i["from"], i["to"], i["place"],
                                    " ".join(i["cameras"]), i["description"], " ".join(map(str, i["events"])),
                                    i["created"], i["created_by"], i["updated"]) for i in incs))


def incidents_pdf(incs: list[dict], title: str, subtitle: str) -> bytes:
    head = ("№", "Тип / Type", "Час / Time", "Місце, камери / Place", "Опис / Description", "Стан / Status")
    widths = (26, 36, 34, 54, 100, 27)
    return table_pdf(title, subtitle, head, widths, (
        (i["number"], TYPES[i["type"]][0], f"{i['from'][:16]}\n{(i['to'] or '')[:16]}",
         f"{i['place']}\n{' '.join(i['cameras'])}", f"{i['title']}\n{i['description'][:400]}",
         STATUSES[i["status"]][0]) for i in incs))


# --- the daily deadline report -------------------------------------------------------------
def deadline_report_pdf(deadlines: dict[str, list[dict]], title: str, subtitle: str) -> bytes:
    """Overdue first, then due today, then due soon: what the department must answer now."""
    order = (("overdue", "ПРОСТРОЧЕНО / OVERDUE"), ("due_today", "СЬОГОДНІ / DUE TODAY"),
             ("due_soon", "НЕЗАБАРОМ / DUE SOON"), ("on_time", "у строк / on time"))
    rows = []
    for key, label in order:
        for r in deadlines.get(key, []):
            rows.append((label, r["number"], r["due_date"], rules.KINDS[r["kind"]][0], r["requester"],
                         _items(r["items"]), rules.STATE_TITLES[r["state"]][0]))
    head = ("Строк / Deadline", "№", "До / Due", "Вид / Kind", "Запитувач / Requester", "Камери / Cameras",
            "Стан / State")
    counts = ", ".join(f"{label.split(' / ')[-1].lower()}: {len(deadlines.get(k, []))}" for k, label in order)
    return table_pdf(title, f"{subtitle}\n{counts}", head, (38, 26, 22, 40, 60, 60, 31), rows)
