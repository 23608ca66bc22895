#!/usr/bin/env python3
"""Camera placement analysis (issue 17): how long the whole analysis takes for a capital's
size — 10,000 incidents × 5,000 candidate sites × k = 20 (target ≤ 30 s on 2 cores) — beside
the floor, the greedy choice alone on the same coverage (what any placement must at least
compute); and how well each method predicts: coverage of held-out incidents for MIP /
greedy / densest / random.

Timing data (synthetic, as a capital's register would look): a 10 × 10 km city, 60 hot
places of Pareto-distributed weight holding 70 % of the incidents within ~120 m, the rest
spread evenly; a year of time stamps; 5,000 candidate sites (poles) spread evenly; one
camera field of view in twenty hot places. Held-out coverage on real data shipped inside
PySAL: GeoDaNet's 287 crimes (fit on one random half, score on the other, 20 splits) and
Burkitt's 188 cases (fit on the first two thirds of the period, score on the rest).

Usage::

    .venv/bin/python bench/placement_bench.py            # the full size
    .venv/bin/python bench/placement_bench.py --quick    # 2,000 × 1,000 × 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH.parent / "tests"))

from varta.cameras.geo import View  # noqa: E402
from varta.placement import analysis as an  # noqa: E402

TZ = ZoneInfo("Europe/Kyiv")


def city(n_inc: int, n_sites: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    plane = an.Plane(50.45, 30.52)
    centres = rng.uniform(-5000, 5000, (60, 2))
    w = rng.pareto(1.5, 60) + 1
    hot = int(n_inc * 0.7)
    pts = np.vstack([centres[rng.choice(60, hot, p=w / w.sum())] + rng.normal(0, 120, (hot, 2)),
                     rng.uniform(-5000, 5000, (n_inc - hot, 2))])
    ll = plane.latlon(pts[:, 0], pts[:, 1])
    t0 = 1_767_225_600_000_000  # 2026-01-01
    times = np.sort(rng.integers(0, 365 * 86_400, n_inc)) * 1_000_000 + t0
    order = rng.permutation(n_inc)
    incs = [an.Incident(float(ll[i, 0]), float(ll[i, 1]), int(times[j]), ("theft", "robbery", "vandalism")[i % 3],
                        float(1 + i % 3)) for j, i in enumerate(order)]
    sp = plane.latlon(*rng.uniform(-5000, 5000, (n_sites, 2)).T)
    sites = [an.Site(i, float(a), float(b)) for i, (a, b) in enumerate(sp)]
    views = [View(*plane.latlon(*c)[0], float(rng.uniform(0, 360)), 90.0, 80.0) for c in centres[::20]]
    return incs, sites, views


def timing(n_inc: int, n_sites: int, k: int) -> None:
    incs, sites, views = city(n_inc, n_sites)
    opts = an.Options(k=k, radius_m=50)
    t = time.monotonic()
    cpu = time.process_time()
    res = an.analyze(incs, sites, views, opts, TZ)
    wall, cpu = time.monotonic() - t, time.process_time() - cpu
    # The floor: the greedy choice alone on the same coverage (projection and neighbour
    # search included: what any placement must compute).
    t = time.monotonic()
    prep = an.prepare(incs, sites, views, opts)
    cover = an.Cover(prep.inc_xy[~prep.covered_now], prep.weights[~prep.covered_now], prep.site_xy, opts.radius_m)
    an.greedy(cover, k, prep.eligible, prep.conflicts, prep.chosen)
    floor = time.monotonic() - t
    parts = {}
    t = time.monotonic()
    grid = an.Grid.over(prep.inc_xy, None)
    counts = np.bincount(grid.index(prep.inc_xy), weights=prep.weights, minlength=grid.nx * grid.ny)
    an.getis_ord(counts, an.grid_weights(grid), 9999, 0)
    parts["Gi* (9999 permutations)"] = time.monotonic() - t
    t = time.monotonic()
    an.density(prep.inc_xy, prep.weights, grid.centres(), grid.cell)
    parts["density"] = time.monotonic() - t
    t = time.monotonic()
    an.exact(cover, k, prep.eligible, prep.conflicts, prep.chosen, 20)
    parts["MIP (HiGHS)"] = time.monotonic() - t
    print(f"analysis of {n_inc:,} incidents × {n_sites:,} sites × k = {k}: {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(target ≤ 30 s on 2 cores); floor (greedy alone) {floor:.2f} s")
    print("  of which, measured apart: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) +
          "; the temporal check repeats the proposal on the earlier period")
    s = res["solver"]
    print(f"  solver {s['status']} in {s['seconds']} s ({s['variables']:,} variables), objective {s['objective']}, "
          f"bound {s['bound']}; hot cells {res['hotspots']['hot']} of {res['hotspots']['cells']:,} "
          f"({res['hotspots']['cell_m']:g} m)")
    t = res["temporal"]
    print(f"  coverage now {res['coverage_now']['weighted_share']:.3f}; proposed {res['coverage_proposed']['weighted_share']:.3f}"
          f" (greedy {res['baselines']['greedy']['coverage_proposed']['weighted_share']:.3f}, densest "
          f"{res['baselines']['densest']['coverage_proposed']['weighted_share']:.3f}, random "
          f"{res['baselines']['random']['weighted_share_mean']:.3f}); on the later third: MIP "
          f"{t['mip']['test']['weighted_share']:.3f}, greedy {t['greedy']['test']['weighted_share']:.3f}, densest "
          f"{t['densest']['test']['weighted_share']:.3f}, random {t['random']['test_weighted_share_mean']:.3f}")


def held_out(splits: int) -> None:
    from placement_data import burkitt, crimes, halves, intersections

    pts = crimes()
    sites = [an.Site(n, a, b) for n, (a, b) in enumerate(intersections())]
    got = {m: [] for m in ("mip", "greedy", "densest", "random")}
    for seed in range(splits):
        fit, held = halves(pts, seed)
        res = an.analyze([an.Incident(a, b) for a, b in fit], sites, [], an.Options(k=10, radius_m=60,
                                                                                     permutations=99), TZ)
        held_i = [an.Incident(a, b) for a, b in held]
        for m, ss in (("mip", res["sites"]), ("greedy", res["baselines"]["greedy"]["sites"]),
                      ("densest", res["baselines"]["densest"]["sites"])):
            got[m].append(an.score(held_i, [], [(s["lat"], s["lon"]) for s in ss], 60)["share"])
        rng = np.random.default_rng(seed)
        got["random"].append(np.mean([an.score(held_i, [], [(sites[j].lat, sites[j].lon) for j in
                                                           rng.choice(len(sites), 10, replace=False)], 60)["share"]
                                      for _ in range(50)]))
    print(f"GeoDaNet crimes, k = 10, radius 60 m, held-out half over {splits} splits (mean share covered; "
          f"MIP ≥ greedy in {sum(a >= b for a, b in zip(got['mip'], got['greedy']))}/{splits}, "
          f"≥ densest in {sum(a >= b for a, b in zip(got['mip'], got['densest']))}/{splits}):")
    print("  " + ", ".join(f"{m} {np.mean(v):.3f}" for m, v in got.items()))
    cases = burkitt()
    plane = an.Plane(50.45, 30.52)
    xs, ys = np.array([c[0] for c in cases]) * 1000, np.array([c[1] for c in cases]) * 1000
    ll = plane.latlon(xs - xs.mean(), ys - ys.mean())
    incs = [an.Incident(a, b, 1_500_000_000_000_000 + c[2] * 86_400_000_000) for (a, b), c in zip(ll, cases)]
    gx, gy = np.meshgrid(np.arange(-40e3, 40e3 + 1, 2000), np.arange(-40e3, 40e3 + 1, 2000))
    bsites = [an.Site(n, a, b) for n, (a, b) in enumerate(plane.latlon(gx.ravel(), gy.ravel()))]
    t = an.analyze(incs, bsites, [], an.Options(k=8, radius_m=2000, cell_m=5000), TZ)["temporal"]
    print(f"Burkitt's cases, k = 8, radius 2 km, fitted on {t['fit_incidents']} before {t['split'][:10]}, scored on "
          f"{t['test_incidents']} after: MIP {t['mip']['test']['share']:.3f}, greedy {t['greedy']['test']['share']:.3f}, "
          f"densest {t['densest']['test']['share']:.3f}, random {t['random']['test_weighted_share_mean']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--splits", type=int, default=20)
    a = ap.parse_args()
    load0 = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average before {load0[0]:.2f}")
    if a.quick:
        timing(2000, 1000, 10)
        held_out(3)
    else:
        timing(10_000, 5_000, 20)
        held_out(a.splits)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
