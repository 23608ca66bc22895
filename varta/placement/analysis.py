"""The placement analysis (pure computation on what the caller read; no I/O but the solver's
own process): coverage of today's fields of view, a density surface and Getis-Ord Gi* hot
spots, the maximal covering location problem for k new sites with its baselines, and a
temporal check (fit on the earlier period, score on the later one). docs/design/placement.md.

Everything arrives in WGS84 degrees and leaves in them; inside, one azimuthal equidistant
plane centred on the data (metres, exact to centimetres across a city) carries the geometry.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from varta.cameras.geo import View, sector


class AnalysisError(ValueError):
    pass


@dataclass(frozen=True)
class Incident:
    lat: float
    lon: float
    time_us: int | None = None
    category: str = "incident"
    severity: float = 1.0
    source: str = "imported"  # imported | register | alarm


@dataclass(frozen=True)
class Site:
    id: int
    lat: float
    lon: float
    name: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Options:
    k: int = 10
    radius_m: float = 50.0  # a new camera covers what happens within this distance (any direction)
    min_spacing_m: float = 0.0  # no two proposed sites closer than this
    excluded: tuple[tuple[tuple[float, float], ...], ...] = ()  # zones no site may stand in: (lat, lon) rings
    chosen: tuple[int, ...] = ()  # site ids already decided: in every proposal, counted within k
    cell_m: float | None = None  # hot-spot grid; default from the data's extent
    bandwidth_m: float | None = None  # density kernel; default the cell
    permutations: int = 9999  # the least p is 1/(n+1): enough for a false discovery rate over thousands of cells
    alpha: float = 0.05  # false discovery rate for hot spots
    time_limit_s: float = 20.0  # the exact solver's; past it, the best of its incumbent and greedy
    seed: int = 0
    split_us: int | None = None  # the temporal check: fit before, score from here on
    random_draws: int = 200

    def checked(self) -> "Options":
        if not 1 <= self.k <= 1000:
            raise AnalysisError("k: from 1 to 1000 sites")
        if not 5 <= self.radius_m <= 2000:
            raise AnalysisError("radius: from 5 to 2000 metres")
        if not 0 <= self.min_spacing_m <= 10_000:
            raise AnalysisError("minimum spacing: from 0 to 10000 metres")
        if self.cell_m is not None and not 10 <= self.cell_m <= 20_000:
            raise AnalysisError("cell: from 10 to 20000 metres")
        if not 0 < self.alpha < 0.5:
            raise AnalysisError("alpha: between 0 and 0.5")
        if not 0 <= self.permutations <= 9999:
            raise AnalysisError("permutations: from 0 to 9999")
        if len(self.chosen) > self.k:
            raise AnalysisError(f"{len(self.chosen)} sites already chosen, more than k = {self.k}")
        return self


class Plane:
    """WGS84 ↔ metres on an azimuthal equidistant plane centred on the data (pyproj)."""

    def __init__(self, lat0: float, lon0: float):
        from pyproj import Transformer

        crs = f"+proj=aeqd +lat_0={lat0:.7f} +lon_0={lon0:.7f} +datum=WGS84 +units=m +no_defs"
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    @classmethod
    def around(cls, lats, lons) -> "Plane":
        return cls(float(np.median(lats)), float(np.median(lons)))

    def xy(self, lats, lons) -> np.ndarray:
        x, y = self._fwd.transform(np.asarray(lons, float), np.asarray(lats, float))
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])

    def latlon(self, xs, ys) -> np.ndarray:
        lon, lat = self._inv.transform(np.asarray(xs, float), np.asarray(ys, float))
        return np.column_stack([np.atleast_1d(lat), np.atleast_1d(lon)])


def _polygons(plane: Plane, rings) -> list:
    from shapely import Polygon

    out = []
    for ring in rings:
        if len(ring) >= 3:
            p = Polygon(plane.xy([c[0] for c in ring], [c[1] for c in ring]))
            out.append(p if p.is_valid else p.buffer(0))
    return out


def inside_any(polys, xy: np.ndarray) -> np.ndarray:
    from shapely import contains_xy, union_all

    if not polys or len(xy) == 0:
        return np.zeros(len(xy), bool)
    return contains_xy(union_all(polys), xy[:, 0], xy[:, 1])


# ---------------------------------------------------------------- coverage of sites


class Cover:
    """Which candidate sites reach which incidents (within the radius), with incidents that
    reach the same sites merged into one demand group (exact for every objective here)."""

    def __init__(self, inc_xy: np.ndarray, weights: np.ndarray, site_xy: np.ndarray, radius: float):
        from scipy.spatial import cKDTree

        self.n_sites = len(site_xy)
        groups: dict[tuple, float] = {}
        counts: dict[tuple, int] = {}
        if len(inc_xy) and len(site_xy):
            near = cKDTree(site_xy).query_ball_point(inc_xy, radius)
            for lst, w in zip(near, weights):
                if lst:
                    key = tuple(sorted(lst))
                    groups[key] = groups.get(key, 0.0) + float(w)
                    counts[key] = counts.get(key, 0) + 1
        self.keys = list(groups)
        self.weight = np.array([groups[k] for k in self.keys], float)
        self.count = np.array([counts[k] for k in self.keys], int)
        self.by_site: dict[int, list[int]] = {}
        for g, key in enumerate(self.keys):
            for j in key:
                self.by_site.setdefault(j, []).append(g)

    def value(self, picked, of: str = "weight") -> float:
        arr = self.weight if of == "weight" else self.count
        seen = set()
        for j in picked:
            seen.update(self.by_site.get(j, ()))
        return float(arr[list(seen)].sum()) if seen else 0.0

    def gains(self, order) -> list[tuple[float, int]]:
        """Each site's marginal (weight, count) in this order."""
        seen: set[int] = set()
        out = []
        for j in order:
            new = [g for g in self.by_site.get(j, ()) if g not in seen]
            seen.update(new)
            out.append((float(self.weight[new].sum()) if new else 0.0, int(self.count[new].sum()) if new else 0))
        return out


def _conflicts(site_xy: np.ndarray, spacing: float) -> dict[int, set[int]]:
    if spacing <= 0 or len(site_xy) < 2:
        return {}
    from scipy.spatial import cKDTree

    out: dict[int, set[int]] = {}
    for a, b in cKDTree(site_xy).query_pairs(spacing):
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out


def greedy(cover: Cover, k: int, eligible: np.ndarray, conflicts: dict, chosen=()) -> list[int]:
    """Lazy greedy: the site adding the most uncovered weight, k times (within 1 − 1/e of the
    optimum, Nemhauser et al. 1978), honouring spacing and the sites already chosen."""
    picked = list(chosen)
    blocked = set()
    covered: set[int] = set()
    for j in picked:
        covered.update(cover.by_site.get(j, ()))
        blocked |= conflicts.get(j, set()) | {j}
    heap = [(-float(cover.weight[gs].sum()), j) for j, gs in cover.by_site.items() if eligible[j] and j not in blocked]
    heapq.heapify(heap)
    while len(picked) < k and heap:
        neg, j = heapq.heappop(heap)
        if j in blocked:
            continue
        now = float(sum(cover.weight[g] for g in cover.by_site[j] if g not in covered))
        if now <= 0:
            continue
        if heap and now < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-now, j))
            continue
        picked.append(j)
        covered.update(cover.by_site[j])
        blocked |= conflicts.get(j, set()) | {j}
    return picked


def exact(cover: Cover, k: int, eligible: np.ndarray, conflicts: dict, chosen=(),
          time_limit: float = 20.0, prefer: np.ndarray | None = None) -> tuple[list[int], dict]:
    """The maximal covering location problem (Church & ReVelle 1974) as a MIP, solved by
    HiGHS through SciPy: max Σ w_g y_g subject to y_g ≤ Σ_{j reaches g} x_j, Σ x_j ≤ k,
    x_j = 1 for the sites already chosen, x_i + x_j ≤ 1 for sites closer than the spacing;
    x binary, 0 ≤ y ≤ 1. Returns the sites and the solver's word (status, bound).

    ``prefer`` (a score per site, e.g. the incident density around it) breaks ties: among
    proposals covering the same weight, the one whose sites stand where incidents are denser.
    Many proposals tie (a hot street seen from either corner), and the one the solver happens
    to return overfits the period it was fitted on; the tie-break is bounded to half the
    smallest incident weight, so it never trades away a covered incident."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    relevant = sorted({j for j in cover.by_site if eligible[j]} | set(chosen))
    if not relevant or not cover.keys:
        return list(chosen), {"status": "optimal", "seconds": 0.0, "variables": 0, "bound": 0.0,
                              "solver": "HiGHS (SciPy milp)"}
    col = {j: i for i, j in enumerate(relevant)}
    nx, ny = len(relevant), len(cover.keys)
    rows, cols, vals = [], [], []
    for g, key in enumerate(cover.keys):  # y_g − Σ x_j ≤ 0
        rows.append(g), cols.append(nx + g), vals.append(1.0)
        for j in key:
            if j in col:
                rows.append(g), cols.append(col[j]), vals.append(-1.0)
    r = ny
    for i in range(nx):  # Σ x ≤ k
        rows.append(r), cols.append(i), vals.append(1.0)
    r += 1
    for a in relevant:  # x_a + x_b ≤ 1 for sites closer than the spacing
        for b in conflicts.get(a, ()):
            if a < b and b in col:
                rows += [r, r]
                cols += [col[a], col[b]]
                vals += [1.0, 1.0]
                r += 1
    ub = np.ones(r)
    ub[:ny] = 0
    ub[ny] = k
    a_mat = coo_matrix((vals, (rows, cols)), shape=(r, nx + ny)).tocsr()
    lo = np.zeros(nx + ny)
    lo[[col[j] for j in chosen]] = 1
    t0 = time.monotonic()
    cx = np.zeros(nx)
    if prefer is not None:
        score = np.asarray([max(0.0, float(prefer[j])) for j in relevant])
        if score.max() > 0:
            cx = -score / score.max() * (0.5 * float(cover.weight.min()) / (k + 1))
    res = milp(np.concatenate([cx, -cover.weight]), constraints=LinearConstraint(a_mat, -np.inf, ub),
               integrality=np.concatenate([np.ones(nx), np.zeros(ny)]), bounds=Bounds(lo, np.ones(nx + ny)),
               options={"time_limit": float(time_limit), "disp": False})
    seconds = time.monotonic() - t0
    word = {"seconds": round(seconds, 2), "variables": nx + ny, "constraints": r, "solver": "HiGHS (SciPy milp)"}
    if res.x is None:
        return list(chosen), word | {"status": "no solution in time", "bound": math.inf}
    picked = [j for j, i in col.items() if res.x[i] > 0.5]
    bound = getattr(res, "mip_dual_bound", None)
    return picked, word | {"status": "optimal" if res.status == 0 else "time limit",
                           "bound": -float(bound) if bound is not None and math.isfinite(bound) else math.inf}


def densest(density_at_sites: np.ndarray, k: int, eligible: np.ndarray, conflicts: dict, chosen=()) -> list[int]:
    """The baseline a city would draw by eye: the k sites where incidents are densest."""
    picked, blocked = list(chosen), set()
    for j in picked:
        blocked |= conflicts.get(j, set()) | {j}
    for j in np.argsort(-density_at_sites, kind="stable"):
        if len(picked) >= k:
            break
        j = int(j)
        if eligible[j] and j not in blocked and density_at_sites[j] > 0:
            picked.append(j)
            blocked |= conflicts.get(j, set()) | {j}
    return picked


def random_sets(n_sites: int, k: int, eligible: np.ndarray, conflicts: dict, chosen, draws: int, seed: int):
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(eligible)
    for _ in range(draws):
        picked, blocked = list(chosen), set()
        for j in picked:
            blocked |= conflicts.get(j, set()) | {j}
        for j in rng.permutation(pool):
            if len(picked) >= k:
                break
            if int(j) not in blocked:
                picked.append(int(j))
                blocked |= conflicts.get(int(j), set()) | {int(j)}
        yield picked


# ---------------------------------------------------------------- hot spots and density


@dataclass
class Grid:
    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def over(cls, xy: np.ndarray, cell: float | None) -> "Grid":
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        extent = float(max(hi - lo))
        if cell is None:  # about two incidents a cell on average: fine enough to place a camera,
            # coarse enough that a cell's count is not all chance
            area = max(float(np.prod(np.maximum(hi - lo, 1.0))), extent * 50.0)
            cell = float(min(500.0, max(50.0, round(math.sqrt(area / max(len(xy) / 2, 1)) / 10) * 10)))
        # Just the data's extent (centred), no empty margin: the permutation test takes every
        # cell as exchangeable, and a frame of cells empty by construction would make the
        # interior look hot by itself.
        nx = max(1, int(math.ceil((hi[0] - lo[0]) / cell - 1e-9)))
        ny = max(1, int(math.ceil((hi[1] - lo[1]) / cell - 1e-9)))
        if nx * ny > 250_000:
            raise AnalysisError(f"{nx}×{ny} cells of {cell:g} m: choose a larger cell")
        x0 = float((lo[0] + hi[0]) / 2 - nx * cell / 2)
        y0 = float((lo[1] + hi[1]) / 2 - ny * cell / 2)
        return cls(x0, y0, cell, nx, ny)

    def index(self, xy: np.ndarray) -> np.ndarray:
        col = np.clip(np.floor((xy[:, 0] - self.x0) / self.cell).astype(int), 0, self.nx - 1)
        row = np.clip(np.floor((xy[:, 1] - self.y0) / self.cell).astype(int), 0, self.ny - 1)
        return row * self.nx + col

    def centres(self) -> np.ndarray:
        c = (np.arange(self.nx) + 0.5) * self.cell + self.x0
        r = (np.arange(self.ny) + 0.5) * self.cell + self.y0
        xx, yy = np.meshgrid(c, r)
        return np.column_stack([xx.ravel(), yy.ravel()])


def grid_weights(grid: "Grid"):
    """Queen neighbours on the grid (libpysal), cells numbered row by row as Grid.index does."""
    from libpysal.weights import lat2W

    return lat2W(grid.ny, grid.nx, rook=False)


@dataclass(frozen=True)
class GiStar:
    z: np.ndarray  # Gi* as a standard score (the analytical one)
    p: np.ndarray  # esda's pseudo p-value from the conditional permutations (p_sim)
    high: np.ndarray  # the observed local sum lies above the permutations' (a hot, not a cold, cell)


def getis_ord(values: np.ndarray, w, permutations: int, seed: int, star: bool = True) -> GiStar:
    """Gi* (Getis & Ord 1992; Ord & Getis 1995) with conditional-permutation pseudo p-values:
    esda's G_Local, binary weights. esda's p_sim is folded (the nearer tail), so the side is
    read from the permutations' z: a lone incident among empty cells lies in the *low* tail
    and is no hot spot. The permutation p-value, not the normal one: counts of incidents
    are skewed, and the normal approximation calls chance clusters hot (measured on uniform
    random points: 2 in 10 draws with FDR; the permutation p-value 0 in 10, docs/design)."""
    import warnings

    from esda.getisord import G_Local

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = G_Local(values.astype(float), w, transform="B", star=star, permutations=permutations, seed=seed)
    z = np.asarray(g.Zs, float)
    if permutations:
        zs = np.nan_to_num(np.asarray(g.z_sim, float))
        return GiStar(z, np.asarray(g.p_sim, float), (zs > 0) & (z > 0))
    return GiStar(z, np.asarray(g.p_norm, float), z > 0)


def fdr_threshold(p: np.ndarray, alpha: float) -> float:
    """Benjamini–Hochberg's cut (esda.fdr): so that a chance cluster is not called a hot spot."""
    from esda import fdr

    return float(fdr(p, alpha))


def density(xy: np.ndarray, weights: np.ndarray, at: np.ndarray, bandwidth: float) -> np.ndarray:
    """A Gaussian kernel density of the incidents (scikit-learn), as incidents per km²."""
    from sklearn.neighbors import KernelDensity

    if len(xy) == 0:
        return np.zeros(len(at))
    kde = KernelDensity(bandwidth=bandwidth, kernel="gaussian", rtol=1e-4).fit(xy, sample_weight=weights)
    return np.exp(kde.score_samples(at)) * float(weights.sum()) * 1e6


# ---------------------------------------------------------------- the whole analysis


@dataclass
class Prepared:
    plane: Plane
    inc_xy: np.ndarray
    weights: np.ndarray
    covered_now: np.ndarray
    site_xy: np.ndarray
    eligible: np.ndarray
    conflicts: dict
    chosen: tuple[int, ...]
    site_index: dict[int, int] = field(default_factory=dict)


def _shares(mask: np.ndarray, weights: np.ndarray) -> dict:
    n = int(len(mask))
    return {"incidents": n, "covered": int(mask.sum()), "share": round(float(mask.mean()), 4) if n else 0.0,
            "weighted_share": round(float(weights[mask].sum() / weights.sum()), 4) if n and weights.sum() else 0.0}


def covered_by(prep: Prepared, picked: list[int], radius: float, xy=None, now=None) -> np.ndarray:
    from scipy.spatial import cKDTree

    xy = prep.inc_xy if xy is None else xy
    mask = (prep.covered_now if now is None else now).copy()
    if picked and len(xy):
        d, _ = cKDTree(prep.site_xy[picked]).query(xy, k=1, distance_upper_bound=radius)
        mask |= np.isfinite(d)
    return mask


def propose(prep: Prepared, opts: Options, mask: np.ndarray, dens_sites: np.ndarray | None,
            ties: np.ndarray | None = None) -> dict:
    """MIP, greedy, densest and random on the incidents in ``mask`` (uncovered ones count)."""
    demand = mask & ~prep.covered_now
    cover = Cover(prep.inc_xy[demand], prep.weights[demand], prep.site_xy, opts.radius_m)
    t0 = time.monotonic()
    g = greedy(cover, opts.k, prep.eligible, prep.conflicts, prep.chosen)
    greedy_s = time.monotonic() - t0
    m, solver = exact(cover, opts.k, prep.eligible, prep.conflicts, prep.chosen, opts.time_limit_s,
                      prefer=ties if ties is not None else dens_sites)
    gv, mv = cover.value(g), cover.value(m)
    if solver["status"] != "optimal" and gv > mv:
        m, mv = g, gv
        solver["status"] += "; greedy kept"
    # The optimum lies under the solver's dual bound, and under greedy / (1 − 1/e) (Nemhauser
    # et al. 1978; without spacing): what the council is told the proposal may miss.
    bound = mv if solver["status"] == "optimal" else min(solver["bound"], gv / (1 - 1 / math.e))
    solver |= {"greedy_seconds": round(greedy_s, 3), "objective": round(mv, 3), "bound": round(bound, 3),
               "gap": round((bound - mv) / bound, 4) if bound and math.isfinite(bound) else 0.0}
    d = densest(dens_sites, opts.k, prep.eligible, prep.conflicts, prep.chosen) if dens_sites is not None else []
    return {"mip": _order(cover, m, prep.chosen), "greedy": g, "densest": d, "cover": cover, "solver": solver}


def _order(cover: Cover, picked: list[int], chosen) -> list[int]:
    """The proposal's sites in the order they add most (chosen ones first): the marginal
    gain each is listed with is then what it adds to those above it."""
    rest = greedy(cover, len(picked), np.isin(np.arange(cover.n_sites), picked), {}, chosen)
    return rest + [j for j in picked if j not in rest]


def prepare(incidents: list[Incident], sites: list[Site], views: list[View], opts: Options) -> Prepared:
    if not incidents:
        raise AnalysisError("no incidents with a place in the period and categories chosen")
    if not sites:
        raise AnalysisError("no candidate sites: import the city's list first (varta placement import-sites)")
    plane = Plane.around([i.lat for i in incidents], [i.lon for i in incidents])
    inc_xy = plane.xy([i.lat for i in incidents], [i.lon for i in incidents])
    weights = np.array([i.severity for i in incidents], float)
    view_polys = _polygons(plane, [sector(v) for v in views])
    covered_now = inside_any(view_polys, inc_xy)
    site_xy = plane.xy([s.lat for s in sites], [s.lon for s in sites])
    index = {s.id: n for n, s in enumerate(sites)}
    missing = [c for c in opts.chosen if c not in index]
    if missing:
        raise AnalysisError(f"sites {missing} are not among the candidate sites")
    chosen = tuple(index[c] for c in opts.chosen)
    eligible = ~inside_any(_polygons(plane, opts.excluded), site_xy)
    bad = [sites[j].id for j in chosen if not eligible[j]]
    if bad:
        raise AnalysisError(f"sites {bad} are already chosen but stand in an excluded zone")
    return Prepared(plane, inc_xy, weights, covered_now, site_xy, eligible, _conflicts(site_xy, opts.min_spacing_m),
                    chosen, index)


def analyze(incidents: list[Incident], sites: list[Site], views: list[View], opts: Options,
            tz: ZoneInfo) -> dict:
    """The whole analysis as the console, the CLI and the report show it."""
    opts = opts.checked()
    t_start = time.monotonic()
    prep = prepare(incidents, sites, views, opts)
    w, xy = prep.weights, prep.inc_xy
    everyone = np.ones(len(incidents), bool)

    # Hot spots: incident weight per cell, Gi* with FDR; the density surface on the same cells.
    grid = Grid.over(xy, opts.cell_m)
    counts = np.bincount(grid.index(xy), weights=w, minlength=grid.nx * grid.ny)
    gi = getis_ord(counts, w_grid := grid_weights(grid), opts.permutations, opts.seed)
    z, p = gi.z, gi.p
    cut = fdr_threshold(p, opts.alpha)
    hot = gi.high & (p <= cut)
    warm = gi.high & (p <= opts.alpha) & ~hot  # significant alone, not after the correction
    # A Gi* hot cell speaks for its neighbourhood (the statistic sums the cell and its eight
    # neighbours): the hot area is the hot cells with their neighbours.
    hot_area = hot.copy()
    for n in np.flatnonzero(hot):
        hot_area[w_grid.neighbors[n]] = True
    bw = opts.bandwidth_m or grid.cell
    centres = grid.centres()
    dens = density(xy, w, centres, bw)
    uncovered = ~prep.covered_now
    dens_sites = density(xy[uncovered], w[uncovered], prep.site_xy, opts.bandwidth_m or opts.radius_m)

    res = propose(prep, opts, everyone, dens_sites, ties=_ties(prep, uncovered, opts))
    cover: Cover = res["cover"]

    def summary(picked: list[int]) -> dict:
        mask = covered_by(prep, picked, opts.radius_m)
        gains = cover.gains(picked)
        out_sites = []
        for rank, (j, (gw, gc)) in enumerate(zip(picked, gains), start=1):
            s = sites[j]
            out_sites.append({"rank": rank, "id": s.id, "lat": round(s.lat, 7), "lon": round(s.lon, 7), "name": s.name,
                              "kind": s.kind, "gain": gc, "gain_weighted": round(gw, 3),
                              "chosen": j in prep.chosen})
        return {"sites": out_sites, "coverage": _shares(mask, w), "mask": mask}

    mip, gre, den = summary(res["mip"]), summary(res["greedy"]), summary(res["densest"])
    rand = [_shares(covered_by(prep, s, opts.radius_m), w)["weighted_share"]
            for s in random_sets(len(sites), opts.k, prep.eligible, prep.conflicts, prep.chosen,
                                 opts.random_draws, opts.seed)]

    # Today's coverage per category and per hour of the city's day.
    by_cat: dict[str, dict] = {}
    cats = np.array([i.category for i in incidents])
    for c in sorted(set(cats)):
        m = cats == c
        by_cat[c] = _shares(prep.covered_now[m], w[m]) | {
            "proposed_share": round(float(mip["mask"][m].mean()), 4)}
    hours = np.array([_hour(i.time_us, tz) for i in incidents])
    by_hour = []
    for h in range(24):
        m = hours == h
        by_hour.append({"hour": h} | _shares(prep.covered_now[m], w[m]))

    temporal = _temporal(incidents, prep, opts, tz) if opts.split_us or any(i.time_us for i in incidents) else None

    inc_out = [[round(i.lat, 6), round(i.lon, 6), int(prep.covered_now[n]), int(mip["mask"][n]), i.category]
               for n, i in enumerate(incidents[:20_000])]
    cells = []
    corners = grid_corners(prep.plane, grid)
    dmax = float(dens.max()) or 1.0
    for n in range(grid.nx * grid.ny):
        if counts[n] > 0 or hot[n] or warm[n] or dens[n] > 0.02 * dmax:
            cells.append({"bounds": corners[n], "count": round(float(counts[n]), 3), "density": round(float(dens[n]), 2),
                          "z": round(float(z[n]), 3), "p": round(float(p[n]), 4),
                          "hot": bool(hot[n]), "warm": bool(warm[n])})
    return {
        "incidents": len(incidents),
        "sites_considered": int(prep.eligible.sum()),
        "sites_excluded": int((~prep.eligible).sum()),
        "cameras_with_view": len([v for v in views if v.range_m]),
        "options": {"k": opts.k, "radius_m": opts.radius_m, "min_spacing_m": opts.min_spacing_m,
                    "cell_m": grid.cell, "bandwidth_m": bw, "alpha": opts.alpha, "permutations": opts.permutations,
                    "chosen": list(opts.chosen), "excluded_zones": len(opts.excluded)},
        "coverage_now": _shares(prep.covered_now, w),
        "coverage_proposed": mip["coverage"],
        "sites": mip["sites"],
        "solver": res["solver"],
        "baselines": {
            "greedy": {"sites": gre["sites"], "coverage_proposed": gre["coverage"]},
            "densest": {"sites": den["sites"], "coverage_proposed": den["coverage"]},
            "random": {"draws": len(rand), "weighted_share_mean": round(float(np.mean(rand)), 4) if rand else 0.0,
                       "weighted_share_p95": round(float(np.percentile(rand, 95)), 4) if rand else 0.0},
        },
        "by_category": by_cat,
        "by_hour": by_hour,
        "hotspots": {"cells": int(grid.nx * grid.ny), "hot": int(hot.sum()), "warm": int(warm.sum()),
                     "fdr_p": round(cut, 5), "cell_m": grid.cell,
                     "share_in_hot": round(float(counts[hot].sum() / counts.sum()), 4) if counts.sum() else 0.0,
                     "area_share_hot": round(float(hot.mean()), 4),
                     "share_in_hot_area": round(float(counts[hot_area].sum() / counts.sum()), 4) if counts.sum() else 0.0,
                     "area_share_hot_area": round(float(hot_area.mean()), 4)},
        "temporal": temporal,
        "layers": {"cells": cells, "incidents": inc_out, "views": [[list(p) for p in sector(v)] for v in views if v.range_m]},
        "seconds": round(time.monotonic() - t_start, 2),
    }


def score(incidents: list[Incident], views: list[View], sites: list[tuple[float, float]], radius_m: float) -> dict:
    """The share of these incidents that today's views and the given sites (lat, lon) cover:
    how a proposal does on incidents it was not fitted on."""
    if not incidents:
        raise AnalysisError("no incidents to score")
    plane = Plane.around([i.lat for i in incidents], [i.lon for i in incidents])
    xy = plane.xy([i.lat for i in incidents], [i.lon for i in incidents])
    w = np.array([i.severity for i in incidents], float)
    now = inside_any(_polygons(plane, [sector(v) for v in views]), xy)
    mask = now.copy()
    if sites:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(plane.xy([s[0] for s in sites], [s[1] for s in sites])).query(
            xy, k=1, distance_upper_bound=radius_m)
        mask |= np.isfinite(d)
    return _shares(mask, w)


def _ties(prep: Prepared, mask: np.ndarray, opts: Options) -> np.ndarray:
    """What breaks ties between equally good proposals: the incident density around each
    site at three radii (the neighbourhood a camera's street belongs to)."""
    return density(prep.inc_xy[mask], prep.weights[mask], prep.site_xy, 3 * opts.radius_m)


def grid_corners(plane: Plane, grid: Grid) -> list:
    """Each cell as [[south, west], [north, east]] for the map (the plane's square, nearly so)."""
    c = grid.centres()
    h = grid.cell / 2
    sw = plane.latlon(c[:, 0] - h, c[:, 1] - h)
    ne = plane.latlon(c[:, 0] + h, c[:, 1] + h)
    return [[[round(a, 6), round(b, 6)], [round(cc, 6), round(d, 6)]] for (a, b), (cc, d) in zip(sw, ne)]


def _hour(time_us: int | None, tz: ZoneInfo) -> int:
    if time_us is None:
        return -1
    from datetime import datetime, timezone

    return datetime.fromtimestamp(time_us / 1e6, timezone.utc).astimezone(tz).hour


def _temporal(incidents: list[Incident], prep: Prepared, opts: Options, tz: ZoneInfo) -> dict | None:
    """Fit on the earlier period, score on the later one: how well each method predicts."""
    times = np.array([i.time_us if i.time_us is not None else -1 for i in incidents], np.int64)
    timed = times >= 0
    if timed.sum() < 10:
        return None
    split = opts.split_us
    if split is None:
        lo, hi = int(times[timed].min()), int(times[timed].max())
        split = lo + (hi - lo) * 2 // 3
    early, late = timed & (times < split), timed & (times >= split)
    if early.sum() < 5 or late.sum() < 5:
        return None
    uncovered_early = early & ~prep.covered_now
    dens_sites = density(prep.inc_xy[uncovered_early], prep.weights[uncovered_early], prep.site_xy,
                         opts.bandwidth_m or opts.radius_m)
    res = propose(prep, opts, early, dens_sites, ties=_ties(prep, uncovered_early, opts))
    w_late = prep.weights[late]

    def on_late(picked):
        return _shares(covered_by(prep, picked, opts.radius_m)[late], w_late)

    def on_early(picked):
        return _shares(covered_by(prep, picked, opts.radius_m)[early], prep.weights[early])

    rand = [on_late(s)["weighted_share"] for s in random_sets(len(prep.site_xy), opts.k, prep.eligible, prep.conflicts,
                                                             prep.chosen, opts.random_draws, opts.seed)]
    from varta.clock import format_time

    return {"split": format_time(split, tz), "split_us": split, "fit_incidents": int(early.sum()),
            "test_incidents": int(late.sum()),
            "now": _shares(prep.covered_now[late], w_late),
            "mip": {"fit": on_early(res["mip"]), "test": on_late(res["mip"])},
            "greedy": {"fit": on_early(res["greedy"]), "test": on_late(res["greedy"])},
            "densest": {"fit": on_early(res["densest"]), "test": on_late(res["densest"])},
            "random": {"test_weighted_share_mean": round(float(np.mean(rand)), 4) if rand else 0.0}}
