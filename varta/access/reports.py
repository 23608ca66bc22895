"""Journal reports: CSV (every field, chain included, so an export can itself be checked)
and PDF (a printable table for the Responsible Department), in the city's time zone."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from varta.access.policy import ROLE_TITLES
from varta.clock import US, format_time
from varta.pdftable import table_pdf

CSV_COLUMNS = ("seq", "time", "time_us", "account", "full_name", "role", "source", "access", "action", "object",
               "result", "detail", "prev_hash", "hash")


def journal_csv(lines: list[dict], tz) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ln in lines:
        w.writerow([ln["seq"], format_time(ln["time_us"], tz), *(ln[c] for c in CSV_COLUMNS[2:])])
    return buf.getvalue()


def _short_time(us: int, tz) -> str:
    return datetime.fromtimestamp(us / US, tz).strftime("%Y-%m-%d %H:%M:%S")


def journal_pdf(lines: list[dict], tz, title: str, subtitle: str, verified: str) -> bytes:
    """A landscape A4 table; the last page carries the chain's head for the record."""
    head = ("№", "Час / Time", "Обліковий запис / Account", "Роль / Role", "Звідки / From", "Дія / Action",
            "Об'єкт / Object", "Результат", "Подробиці / Detail")
    widths = (14, 32, 52, 26, 30, 26, 30, 18, 49)
    rows = ((str(ln["seq"]), _short_time(ln["time_us"], tz), f"{ln['account']}\n{ln['full_name']}",
             ROLE_TITLES.get(ln["role"], (ln["role"],))[0], f"{ln['source']}\n{ln['access']}", ln["action"],
             ln["object"], ln["result"], ln["detail"][:300]) for ln in lines)
    footer = f"Останній рядок / last line {lines[-1]['seq']}: sha256 {lines[-1]['hash']}" if lines else ""
    return table_pdf(title, f"{subtitle}\n{verified}", head, widths, rows, footer)


def journal_report_pdf(journal, heads: list[dict], lines: list[dict], tz, instance: str, period: str,
                       filters: str, exporter: str) -> bytes:
    """The printable report: the lines asked for, and whether the whole chain verifies now."""
    from varta.clock import now_us

    v = journal.verify(heads)
    verdict = (f"Журнал перевірено / chain verified: {v.lines} lines, intact" if v.ok
               else f"УВАГА / WARNING: chain broken — {v.problems[0]}")
    return journal_pdf(lines, tz, f"{instance}: журнал доступу / access journal",
                       f"{period}  {filters}  exported by {exporter} {format_time(now_us(), tz)}", verdict)
