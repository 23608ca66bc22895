"""Printable tables (A4 PDF with Cyrillic) for the journal, the evidence registers and the
daily deadline report: one layout, so every printed register of the city looks alike."""

from __future__ import annotations

import logging
from pathlib import Path

# fpdf2 subsets the font with fontTools, which logs every table and glyph count at INFO:
# hundreds of lines per PDF in a node's log. Its warnings still come through.
logging.getLogger("fontTools").setLevel(logging.WARNING)

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")


def _font() -> Path:
    for d in _FONT_DIRS:
        p = Path(d) / "DejaVuSans.ttf"
        if p.is_file():
            return p
    raise RuntimeError("PDF reports need the DejaVu fonts (Cyrillic): apt-get install fonts-dejavu-core")


def table_pdf(title: str, subtitle: str, head: tuple[str, ...], widths: tuple[float, ...], rows, footer: str = "",
              font_size: float = 6.5) -> bytes:
    """A landscape A4 table with a title block; ``rows`` are sequences of strings."""
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
    pdf.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4, first_row_as_headings=True) as table:
        pdf.set_font("DejaVu", "", font_size)
        row = table.row()
        for h in head:
            row.cell(h)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell("" if value is None else str(value))
    if footer:
        pdf.ln(3)
        pdf.set_font("DejaVu", "", 7)
        pdf.multi_cell(0, 4, footer, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
