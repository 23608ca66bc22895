"""Journal reports: CSV (every field, chain included, so an export can itself be checked)
and PDF (a printable table for the Responsible Department), in the city's time zone."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from varta.access.policy import ROLE_TITLES
from varta.clock import US, format_time

CSV_COLUMNS = ("seq", "time", "time_us", "account", "full_name", "role", "source", "access", "action", "object",
               "result", "detail", "prev_hash", "hash")

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")


def journal_csv(lines: list[dict], tz) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ln in lines:
        w.writerow([ln["seq"], format_time(ln["time_us"], tz), *(ln[c] for c in CSV_COLUMNS[2:])])
    return buf.getvalue()


def _font() -> Path:
    for d in _FONT_DIRS:
        p = Path(d) / "DejaVuSans.ttf"
        if p.is_file():
            return p
    raise RuntimeError("PDF reports need the DejaVu fonts (Cyrillic): apt-get install fonts-dejavu-core")


def _short_time(us: int, tz) -> str:
    return datetime.fromtimestamp(us / US, tz).strftime("%Y-%m-%d %H:%M:%S")


def journal_pdf(lines: list[dict], tz, title: str, subtitle: str, verified: str) -> bytes:
    """A landscape A4 table; the last page carries the chain's head for the record."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    font = _font()
    pdf.add_font("DejaVu", "", str(font))
    bold = font.with_name("DejaVuSans-Bold.ttf")
    pdf.add_font("DejaVu", "B", str(bold if bold.is_file() else font))
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 5, f"{subtitle}\n{verified}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    head = ("№", "Час / Time", "Обліковий запис / Account", "Роль / Role", "Звідки / From", "Дія / Action",
            "Об'єкт / Object", "Результат", "Подробиці / Detail")
    widths = (14, 32, 52, 26, 30, 26, 30, 18, 49)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4, first_row_as_headings=True) as table:
        pdf.set_font("DejaVu", "", 6.5)
        row = table.row()
        for h in head:
            row.cell(h)
        for ln in lines:
            role = ROLE_TITLES.get(ln["role"], (ln["role"],))[0]
            row = table.row()
            for value in (str(ln["seq"]), _short_time(ln["time_us"], tz), f"{ln['account']}\n{ln['full_name']}",
                          role, f"{ln['source']}\n{ln['access']}", ln["action"], ln["object"], ln["result"],
                          ln["detail"][:300]):
                row.cell(value)
    if lines:
        pdf.ln(3)
        pdf.set_font("DejaVu", "", 7)
        pdf.multi_cell(0, 4, f"Останній рядок / last line {lines[-1]['seq']}: sha256 {lines[-1]['hash']}",
                       new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def journal_report_pdf(journal, heads: list[dict], lines: list[dict], tz, instance: str, period: str,
                       filters: str, exporter: str) -> bytes:
    """The printable report: the lines asked for, and whether the whole chain verifies now."""
    from varta.clock import now_us

    v = journal.verify(heads)
    verdict = (f"Журнал перевірено / chain verified: {v.lines} lines, intact" if v.ok
               else f"УВАГА / WARNING: chain broken — {v.problems[0]}")
    return journal_pdf(lines, tz, f"{instance}: журнал доступу / access journal",
                       f"{period}  {filters}  exported by {exporter} {format_time(now_us(), tz)}", verdict)
