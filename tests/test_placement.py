"""Camera placement analysis (issue 17), its pure parts on real public data shipped inside
PySAL: GeoDaNet's crimes (Arizona) and their streets' intersections as candidate sites.
The end-to-end side (imports, proposals, the police's token, the console) is in
test_placement_e2e.py."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from placement_data import burkitt, crimes, halves, intersections
from varta.cameras.geo import View, destination, distance_m
from varta.placement import proposals as pr
from varta.placement.analysis import (AnalysisError, Grid, Incident, Options, Plane, Site, analyze, getis_ord,
                                      grid_weights, fdr_threshold, score)
from varta.placement.inputs import InputError, parse_incidents, parse_sites, parse_zones

TZ = ZoneInfo("Europe/Kyiv")


@pytest.fixture(scope="module")
def data():
    pts = crimes()
    fit, held = halves(pts)
    sites = [Site(n + 1, lat, lon, f"x{n + 1}") for n, (lat, lon) in enumerate(intersections())]
    return {"all": pts, "fit": [Incident(a, b) for a, b in fit], "held": [Incident(a, b) for a, b in held],
            "sites": sites}


def test_the_data_is_what_pysal_ships():
    assert len(crimes()) == 287  # libpysal's README: crimes.shp, n=287
    lat, lon = np.mean(crimes(), axis=0)
    assert 33.0 < lat < 34.0 and -112.5 < lon < -111.5  # Arizona, State Plane Central → WGS84


def test_gi_star_is_esdas_documented_result():
    """Our Gi* call is esda's, as esda documents it (esda/tests/test_getisord.py, the
    G_Local docstring): six points, distance band 15, binary weights, star."""
    from libpysal.weights import DistanceBand

    w = DistanceBand([(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)], threshold=15)
    y = np.array([2, 3, 3.2, 5, 8, 7])
    star = getis_ord(y, w, permutations=999, seed=10)
    assert star.z[0] == pytest.approx(-1.39727626, abs=1e-7)
    assert star.p[0] == pytest.approx(0.102, abs=1e-6)
    plain = getis_ord(y, w, permutations=999, seed=10, star=False)
    assert plain.z[0] == pytest.approx(-1.0136729, abs=1e-7)
    assert plain.p[0] == pytest.approx(0.102, abs=1e-6)
    assert not plain.high[0]  # point 0 is a low value: its small p is the cold side


def _burkitt_incidents():
    """Burkitt's cases (x, y on the survey's grid, taken as km and placed on a plane around
    Kyiv; the day each was seen)."""
    cases = burkitt()
    plane = Plane(50.45, 30.52)
    xs, ys = np.array([c[0] for c in cases]) * 1000, np.array([c[1] for c in cases]) * 1000
    ll = plane.latlon(xs - xs.mean(), ys - ys.mean())
    t0 = 1_500_000_000_000_000
    sites = plane.latlon(*[g.ravel() for g in np.meshgrid(np.arange(-40e3, 40e3 + 1, 2000),
                                                           np.arange(-40e3, 40e3 + 1, 2000))])
    return ([Incident(a, b, t0 + c[2] * 86_400_000_000) for (a, b), c in zip(ll, cases)],
            [Site(n, a, b) for n, (a, b) in enumerate(sites)])


def test_hot_spots_are_found_where_cases_cluster_and_chance_makes_none(data):
    incs, sites = _burkitt_incidents()
    h = analyze(incs, sites, [], Options(k=3, radius_m=2000, cell_m=8000), TZ)["hotspots"]
    print(f"Burkitt: {h['hot']} hot cells of {h['cells']} ({h['cell_m']:g} m); with their neighbours they hold "
          f"{h['share_in_hot_area']:.1%} of the cases on {h['area_share_hot_area']:.1%} of the area")
    assert h["hot"] >= 1 and h["share_in_hot_area"] >= 1.5 * h["area_share_hot_area"]

    res = analyze([Incident(a, b) for a, b in data["all"]], data["sites"], [], Options(k=3, radius_m=60), TZ)
    h = res["hotspots"]
    print(f"GeoDaNet crimes: {h['hot']} hot cells after FDR, {h['warm']} more at p ≤ 0.05 alone, of {h['cells']} "
          f"cells of {h['cell_m']:g} m")
    # The same test built independently: esda's G_Local on the same counts, neighbours from
    # libpysal's distance band over the cells' centres (the queen's eight are within 1.5 cells).
    from esda import fdr
    from esda.getisord import G_Local
    from libpysal.weights import DistanceBand

    plane = Plane.around(*zip(*data["all"]))
    xy = plane.xy(*zip(*data["all"]))
    grid = Grid.over(xy, h["cell_m"])
    counts = np.bincount(grid.index(xy), minlength=grid.nx * grid.ny).astype(float)
    g = G_Local(counts, DistanceBand(grid.centres(), threshold=1.5 * grid.cell, silence_warnings=True),
                transform="B", star=True, permutations=9999, seed=0)
    hot = (g.z_sim > 0) & (g.p_sim <= fdr(g.p_sim, 0.05))
    warm = (g.z_sim > 0) & (g.p_sim <= 0.05) & ~hot
    assert (h["hot"], h["warm"]) == (int(hot.sum()), int(warm.sum()))
    assert sorted(round(c["z"], 3) for c in res["layers"]["cells"] if c["hot"] or c["warm"]) == \
        sorted(round(float(v), 3) for v in g.Zs[hot | warm])

    # As many points thrown uniformly over the same box, 40 times: under no clustering at all
    # the FDR procedure calls anything hot in about α = 5 % of the draws (measured 3 of 40;
    # the normal p-value instead: about 20 %).
    rng = np.random.default_rng(5)
    found = []
    for _ in range(40):
        u = rng.uniform(xy.min(axis=0), xy.max(axis=0), size=xy.shape)
        grid = Grid.over(u, h["cell_m"])
        gi = getis_ord(np.bincount(grid.index(u), minlength=grid.nx * grid.ny), grid_weights(grid), 9999, 1)
        found.append(int((gi.high & (gi.p <= fdr_threshold(gi.p, 0.05))).sum()))
    print("hot cells found in uniform random points (40 draws):", found)
    assert sum(1 for f in found if f) <= 4, found


def test_mip_covers_held_out_crimes_at_least_as_well_as_greedy_and_densest_and_beats_random(data):
    """Fit on one random half of the crimes, count the other half's crimes the ten sites
    cover; five fixed splits, summed (bench/placement_bench.py runs twenty)."""
    radius = 60.0
    got = {"mip": 0, "greedy": 0, "densest": 0}
    rand, held_n = [], 0
    for seed in range(5):
        fit, held = halves(data["all"], seed)
        held = [Incident(a, b) for a, b in held]
        held_n += len(held)
        res = analyze([Incident(a, b) for a, b in fit], data["sites"], [],
                      Options(k=10, radius_m=radius, permutations=99), TZ)
        assert res["solver"]["status"] == "optimal"
        for name, sites in (("mip", res["sites"]), ("greedy", res["baselines"]["greedy"]["sites"]),
                            ("densest", res["baselines"]["densest"]["sites"])):
            assert len(sites) == 10
            got[name] += score(held, [], [(s["lat"], s["lon"]) for s in sites], radius)["covered"]
        # On the fitted half the MIP is optimal: nothing covers more.
        fitted = res["coverage_proposed"]["covered"]
        assert fitted >= res["baselines"]["greedy"]["coverage_proposed"]["covered"]
        assert fitted >= res["baselines"]["densest"]["coverage_proposed"]["covered"]
        # The marginal gains add up to the coverage gained.
        assert sum(s["gain"] for s in res["sites"]) == fitted - res["coverage_now"]["covered"]
        rng = np.random.default_rng(seed)
        rand += [score(held, [], [(data["sites"][j].lat, data["sites"][j].lon)
                                  for j in rng.choice(len(data["sites"]), 10, replace=False)], radius)["covered"]
                 for _ in range(40)]
    rand_total = float(np.mean(rand)) * 5
    print(f"held-out crimes covered (of {held_n}, five splits): MIP {got['mip']}, greedy {got['greedy']}, "
          f"densest {got['densest']}, random {rand_total:.1f}")
    assert got["mip"] >= got["greedy"] and got["mip"] >= got["densest"]
    assert got["mip"] > 2 * rand_total


def test_constraints_are_honoured(data):
    sites = data["sites"]
    lat0, lon0 = np.mean(data["all"], axis=0)
    zone = tuple(destination(lat0, lon0, b, 400) for b in range(0, 360, 30))
    chosen = sites[0].id
    res = analyze(data["fit"], sites, [], Options(k=8, radius_m=60, min_spacing_m=250, excluded=(zone,),
                                                  chosen=(chosen,)), TZ)
    picked = res["sites"]
    assert len(picked) <= 8 and picked[0]["id"] == chosen and picked[0]["chosen"]
    for a in picked:
        for b in picked:
            if a is not b:
                assert distance_m(a["lat"], a["lon"], b["lat"], b["lon"]) >= 250
    from varta.cameras.geo import inside

    assert not any(inside(list(zone), s["lat"], s["lon"]) for s in picked)
    assert res["sites_excluded"] > 0
    with pytest.raises(AnalysisError, match="excluded zone"):
        inner = next(s for s in sites if inside(list(zone), s.lat, s.lon))
        analyze(data["fit"], sites, [], Options(k=3, excluded=(zone,), chosen=(inner.id,)), TZ)


def test_todays_fields_of_view_count_as_covered(data):
    lat, lon = data["all"][0]
    view = View(lat, lon, 0.0, 360.0, 80.0)
    res = analyze(data["fit"] + [Incident(lat, lon, category="robbery")], data["sites"], [view],
                  Options(k=3, radius_m=60), TZ)
    seen = sum(1 for i in data["fit"] + [Incident(lat, lon)] if distance_m(lat, lon, i.lat, i.lon) <= 80)
    assert res["coverage_now"]["covered"] == seen >= 1
    assert res["by_category"]["robbery"]["covered"] == 1
    assert res["coverage_proposed"]["covered"] > res["coverage_now"]["covered"]


def test_temporal_check_fits_on_the_earlier_period_and_scores_on_the_later():
    incs, sites = _burkitt_incidents()
    res = analyze(incs, sites, [], Options(k=8, radius_m=2000, cell_m=5000), TZ)
    t = res["temporal"]
    assert t["fit_incidents"] + t["test_incidents"] == len(incs)
    assert t["fit_incidents"] > t["test_incidents"] > 10
    print(f"Burkitt, fitted before {t['split'][:10]} ({t['fit_incidents']}), scored after ({t['test_incidents']}): "
          f"MIP {t['mip']['test']['share']:.2f}, greedy {t['greedy']['test']['share']:.2f}, densest "
          f"{t['densest']['test']['share']:.2f}, random {t['random']['test_weighted_share_mean']:.2f}")
    assert t["mip"]["fit"]["share"] >= t["greedy"]["fit"]["share"]
    assert t["mip"]["test"]["share"] > t["random"]["test_weighted_share_mean"]


def test_imports_name_the_bad_line_and_take_nothing():
    good = "lat,lon,time,category,severity\n50.45,30.52,2026-03-01T10:00,theft,2\n"
    rows = parse_incidents(good, TZ)
    assert rows[0].category == "theft" and rows[0].severity == 2 and rows[0].time_us is not None
    with pytest.raises(InputError, match="line 3: 95.0, 30.52 is not a place on Earth"):
        parse_incidents(good + "95,30.52,2026-03-01T11:00,theft,1\n", TZ)
    with pytest.raises(InputError, match="line 3: time 'вчора'"):
        parse_incidents(good + "50.4,30.5,вчора,theft,1\n", TZ)
    with pytest.raises(InputError, match="line 2: latitude 'abc' is not a number"):
        parse_sites("lat,lon\nabc,30\n")
    with pytest.raises(InputError, match="feature 2: a point is expected, not LineString"):
        parse_sites('{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point",'
                    '"coordinates":[30.5,50.4]}},{"type":"Feature","geometry":{"type":"LineString","coordinates":'
                    '[[30.5,50.4],[30.6,50.5]]}}]}')
    with pytest.raises(InputError, match="line 1: not valid JSON"):
        parse_zones('{"type": ')
    z = parse_zones('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"ТЕЦ-5"},'
                    '"geometry":{"type":"Polygon","coordinates":[[[30.5,50.4],[30.6,50.4],[30.6,50.5],[30.5,50.4]]]}}]}')
    assert z[0].name == "ТЕЦ-5" and z[0].polygon[0] == (50.4, 30.5)
    # dd.mm.yyyy as the city's registers write it, in the city's time.
    r = parse_incidents("широта;довгота;дата;категорія\n50,45;30,52;01.03.2026 10:00;крадіжка\n", TZ)
    assert r[0].time_us == 1772352000_000000 and r[0].category == "крадіжка"


def test_a_proposal_goes_to_the_police_and_is_approved_once_agreed():
    assert pr.next_status("draft", "send", "department") == "sent"
    assert pr.next_status("sent", "comment", "police") == "commented"
    assert pr.next_status("commented", "send", "department") == "sent"
    assert pr.next_status("sent", "agree", "police") == "agreed"
    assert pr.next_status("agreed", "approve", "mayor") == "approved"
    for status, step, role in (("draft", "approve", "department"), ("sent", "agree", "department"),
                               ("draft", "agree", "police"), ("approved", "comment", "police"),
                               ("sent", "send", "police")):
        with pytest.raises(pr.ProposalError):
            pr.next_status(status, step, role)
    assert pr.visible_to("police.1", "police.1", "police") and not pr.visible_to("police.1", "police.2", "police")
    assert not pr.visible_to(None, "police.1", "police")
