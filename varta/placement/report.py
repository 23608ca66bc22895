"""The placement report for a council session (PDF): the map (density, hot spots, today's
fields of view, the proposed sites with their radius), the tables, and the method in plain
words, in Ukrainian or English. Drawn with matplotlib on the analysis's metric plane."""

from __future__ import annotations

import io

import numpy as np

from varta.placement.analysis import Plane

TEXT = {
    "uk": {
        "title": "Пріоритети розміщення нових камер",
        "period": "Період", "incidents": "Подій з місцем", "k": "Нових місць",
        "radius": "Радіус огляду нової камери", "spacing": "Мінімальна відстань між місцями",
        "now": "Охоплено камерами сьогодні", "proposed": "Охоплено з пропозицією",
        "weighted": "з урахуванням тяжкості",
        "table_sites": "Запропоновані місця (у порядку внеску)",
        "head_sites": ("№", "Місце", "Широта", "Довгота", "Додає подій", "Додає (вага)"),
        "table_cmp": "Порівняння способів вибору",
        "head_cmp": ("Спосіб", "Охоплено (частка)", "З вагою", "Перевірка на пізнішому періоді"),
        "mip": "Оптимізація (MCLP, точний розв'язок)", "greedy": "Жадібний вибір",
        "densest": "Найщільніші місця", "random": "Випадкові місця (середнє)",
        "hot": "Гарячі точки (Gi*, FDR {alpha})", "hot_cells": "комірок {cell} м, у них {share} подій",
        "legend": ("події", "охоплені сьогодні", "гаряча точка", "поле зору камери", "нове місце"),
        "temporal": "Перевірка прогнозу: підібрано на подіях до {split} ({fit}), перевірено на пізніших ({test}).",
        "method_title": "Як це пораховано",
        "method": (
            "1. Події періоду (з реєстру, тривоги і завантажені записи поліції) переведено в метри на площині "
            "з центром у місті. Подія охоплена сьогодні, якщо лежить у полі зору наявної камери (сектор за "
            "напрямком, кутом і дальністю).\n"
            "2. Щільність подій — гауссове ядро (scikit-learn). Гарячі точки — статистика Getis-Ord Gi* на "
            "сітці комірок з перестановочною перевіркою (PySAL esda) і поправкою на множинні порівняння "
            "(FDR), тож випадкове скупчення не називається гарячою точкою.\n"
            "3. Нові місця вибрано з переліку можливих (опори, перехрестя, зупинки) так, щоб охопити "
            "найбільше ще не охоплених подій з урахуванням тяжкості: задача максимального покриття "
            "(MCLP), розв'язана точно (CBC через PuLP), з обмеженнями: кількість, мінімальна відстань, "
            "заборонені зони, уже вибрані місця. Внесок кожного місця — скільки подій воно додає до вищих "
            "у списку.\n"
            "4. Перевірка прогнозу: те саме підібрано на ранішій частині періоду і оцінено на пізнішій.\n"
            "Обмеження: поле зору — наближення (без будівель і дерев); дані про події зміщені туди, де "
            "поліція і камери вже дивляться; нова камера вважається такою, що бачить на весь радіус."),
    },
    "en": {
        "title": "Where the next cameras should go",
        "period": "Period", "incidents": "Incidents with a place", "k": "New sites",
        "radius": "A new camera's radius", "spacing": "Minimum spacing between sites",
        "now": "Covered by today's cameras", "proposed": "Covered with the proposal",
        "weighted": "weighted by severity",
        "table_sites": "Proposed sites (in the order of what they add)",
        "head_sites": ("#", "Site", "Latitude", "Longitude", "Adds incidents", "Adds (weight)"),
        "table_cmp": "Methods compared",
        "head_cmp": ("Method", "Covered (share)", "Weighted", "Checked on the later period"),
        "mip": "Optimisation (MCLP, exact)", "greedy": "Greedy choice",
        "densest": "Densest places", "random": "Random sites (mean)",
        "hot": "Hot spots (Gi*, FDR {alpha})", "hot_cells": "cells of {cell} m holding {share} of incidents",
        "legend": ("incidents", "covered today", "hot spot", "camera field of view", "new site"),
        "temporal": "Prediction check: fitted on incidents before {split} ({fit}), scored on the later ones ({test}).",
        "method_title": "How it is computed",
        "method": (
            "1. The period's incidents (the register, alarms and imported police records) are put on a metric "
            "plane centred on the city. An incident is covered today when it lies in an existing camera's "
            "field of view (a sector by direction, angle and range).\n"
            "2. Density is a Gaussian kernel (scikit-learn). Hot spots are Getis-Ord Gi* on a grid of cells "
            "with a permutation test (PySAL esda) and a false-discovery-rate correction, so a chance cluster "
            "is not called a hot spot.\n"
            "3. New sites are chosen from the list of candidates (poles, crossings, stops) to cover the most "
            "not-yet-covered incidents weighted by severity: the maximal covering location problem (MCLP), "
            "solved exactly (CBC through PuLP), under the constraints: how many, minimum spacing, excluded "
            "zones, sites already chosen. Each site's gain is what it adds to those above it.\n"
            "4. Prediction check: the same fitted on the earlier part of the period, scored on the later.\n"
            "Limits: fields of view are approximations (no buildings or trees); incident data is biased "
            "toward where police and cameras already look; a new camera is taken to see its whole radius."),
    },
}


def map_png(result: dict, width_in: float = 10.0, lang: str = "uk") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle, Polygon, Rectangle

    t = TEXT[lang]
    inc = result["layers"]["incidents"]
    lats = [i[0] for i in inc] + [s["lat"] for s in result["sites"]]
    lons = [i[1] for i in inc] + [s["lon"] for s in result["sites"]]
    plane = Plane.around(lats, lons)
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.72), dpi=110)
    cells = result["layers"]["cells"]
    if cells:
        sw = plane.xy([c["bounds"][0][0] for c in cells], [c["bounds"][0][1] for c in cells])
        ne = plane.xy([c["bounds"][1][0] for c in cells], [c["bounds"][1][1] for c in cells])
        dens = np.array([c["density"] for c in cells])
        dmax = float(dens.max()) or 1.0
        rects = [Rectangle((a[0], a[1]), b[0] - a[0], b[1] - a[1]) for a, b in zip(sw, ne)]
        pc = PatchCollection(rects, cmap="YlOrRd", alpha=0.55, linewidths=0)
        pc.set_array(dens / dmax)
        ax.add_collection(pc)
        hot = [r for r, c in zip(rects, cells) if c["hot"]]
        hot_pc = PatchCollection([Rectangle(r.get_xy(), r.get_width(), r.get_height()) for r in hot],
                                 facecolor="none", edgecolor="#b30000", linewidths=1.2)
        ax.add_collection(hot_pc)
    for ring in result["layers"]["views"]:
        xy = plane.xy([p[0] for p in ring], [p[1] for p in ring])
        ax.add_patch(Polygon(xy, closed=True, facecolor="#3b82f6", alpha=0.25, edgecolor="#1d4ed8", linewidth=0.6))
    if inc:
        xy = plane.xy([i[0] for i in inc], [i[1] for i in inc])
        now = np.array([i[2] for i in inc], bool)
        ax.scatter(xy[~now, 0], xy[~now, 1], s=4, c="#444444", label=t["legend"][0], zorder=3)
        ax.scatter(xy[now, 0], xy[now, 1], s=4, c="#1d4ed8", label=t["legend"][1], zorder=3)
    radius = result["options"]["radius_m"]
    if result["sites"]:
        sxy = plane.xy([s["lat"] for s in result["sites"]], [s["lon"] for s in result["sites"]])
        for (x, y), s in zip(sxy, result["sites"]):
            ax.add_patch(Circle((x, y), radius, facecolor="#16a34a", alpha=0.25, edgecolor="#15803d", zorder=4))
            ax.annotate(str(s["rank"]), (x, y), ha="center", va="center", fontsize=7, color="white", zorder=6,
                        bbox={"boxstyle": "circle,pad=0.2", "fc": "#15803d", "ec": "none"})
    ax.plot([], [], "s", mfc="none", mec="#b30000", label=t["legend"][2])
    ax.plot([], [], "s", color="#3b82f6", alpha=0.4, label=t["legend"][3])
    ax.plot([], [], "o", color="#15803d", label=t["legend"][4])
    ax.set_aspect("equal")
    ax.autoscale_view()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    bar = 10 ** int(np.floor(np.log10(max((x1 - x0) / 4, 1))))
    ax.plot([x0 + (x1 - x0) * 0.04, x0 + (x1 - x0) * 0.04 + bar], [y0 + (y1 - y0) * 0.04] * 2, color="black", lw=2)
    ax.text(x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.06, f"{bar:g} m" if bar < 1000 else f"{bar / 1000:g} km",
            fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def report_pdf(result: dict, title: str = "", lang: str = "uk", status: str = "") -> bytes:
    from fpdf import FPDF

    from varta.pdftable import _font

    t = TEXT[lang if lang in TEXT else "uk"]
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=14)
    font = _font()
    pdf.add_font("DejaVu", "", str(font))
    bold = font.with_name("DejaVuSans-Bold.ttf")
    pdf.add_font("DejaVu", "B", str(bold if bold.is_file() else font))
    pdf.set_title(title or t["title"])
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 7, title or t["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    o, per = result["options"], result.get("period") or {}
    lines = [f"{t['period']}: {per.get('from', '')[:16].replace('T', ' ')} – {per.get('to', '')[:16].replace('T', ' ')}"
             + (f"  ·  {status}" if status else ""),
             f"{t['incidents']}: {result['incidents']}  ·  {t['k']}: {o['k']}  ·  {t['radius']}: {o['radius_m']:g} m"
             + (f"  ·  {t['spacing']}: {o['min_spacing_m']:g} m" if o["min_spacing_m"] else ""),
             f"{t['now']}: {_pct(result['coverage_now']['share'])} ({t['weighted']} "
             f"{_pct(result['coverage_now']['weighted_share'])})  →  {t['proposed']}: "
             f"{_pct(result['coverage_proposed']['share'])} ({_pct(result['coverage_proposed']['weighted_share'])})",
             t["hot"].format(alpha=o["alpha"]) + ": " + str(result["hotspots"]["hot"]) + " "
             + t["hot_cells"].format(cell=f"{result['hotspots']['cell_m']:g}",
                                     share=_pct(result["hotspots"]["share_in_hot"]))]
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.image(io.BytesIO(map_png(result, lang=lang)), w=pdf.epw)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, t["table_sites"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    with pdf.table(col_widths=(8, 70, 24, 24, 22, 22), text_align="LEFT", line_height=4.5) as table:
        row = table.row()
        for h in t["head_sites"]:
            row.cell(h)
        for s in result["sites"]:
            row = table.row()
            for v in (s["rank"], s["name"] or f"#{s['id']}", f"{s['lat']:.6f}", f"{s['lon']:.6f}", s["gain"],
                      f"{s['gain_weighted']:g}"):
                row.cell(str(v))
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, t["table_cmp"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    temporal = result.get("temporal") or {}
    b = result["baselines"]
    rows = [(t["mip"], result["coverage_proposed"], temporal.get("mip")),
            (t["greedy"], b["greedy"]["coverage_proposed"], temporal.get("greedy")),
            (t["densest"], b["densest"]["coverage_proposed"], temporal.get("densest"))]
    with pdf.table(col_widths=(62, 38, 30, 50), text_align="LEFT", line_height=4.5) as table:
        row = table.row()
        for h in t["head_cmp"]:
            row.cell(h)
        for name, cov, tm in rows:
            row = table.row()
            for v in (name, _pct(cov["share"]), _pct(cov["weighted_share"]),
                      _pct(tm["test"]["weighted_share"]) if tm else "—"):
                row.cell(v)
        row = table.row()
        for v in (t["random"], "—", _pct(b["random"]["weighted_share_mean"]),
                  _pct(temporal["random"]["test_weighted_share_mean"]) if temporal else "—"):
            row.cell(v)
    if temporal:
        pdf.ln(2)
        pdf.multi_cell(0, 4.5, t["temporal"].format(split=temporal["split"][:10], fit=temporal["fit_incidents"],
                                                    test=temporal["test_incidents"]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, t["method_title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 4.5, t["method"], new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
