"""Prometheus metrics, read from the database at scrape time (docs/design/operations.md).

Everything a city's IT department watches is already in the database: each camera's
recording state (written by the recorder that holds it), the archive index, the analytics
workers' reports, the job queue, the journal and every node's heartbeat with its published
load (disk, forecast, shipping). So one collector on any web node sees the whole city, and
a recorder needs no HTTP endpoint of its own: a dead recorder shows up as a stale heartbeat
and as stale camera states, which is exactly what an alert should see.

Each section is collected on its own: a section that fails (a table locked, a query timing
out) is reported by ``varta_metrics_section_up{section} 0`` and the others still come.
The full journal verification is too slow for a scrape: it runs in a background thread at
most every ``metrics_journal_verify_s`` and the scrape shows its last result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import case, func, literal, select

from varta import __version__
from varta.db.dbclock import read_db_now
from varta.db.schema import analytics_status, jobs, outages, system_alarms

log = logging.getLogger(__name__)

US = 1_000_000
NODE_STATES = ("active", "draining", "stopping", "down", "stopped")
GAP_WINDOW_S = 24 * 3600


def _g(name: str, doc: str, labels=(), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit)


class JournalVerifier:
    """Verifies the whole journal chain against the published heads, in the background, at
    most every ``interval_s``; the collector reads the last verdict."""

    def __init__(self, engine, home, interval_s: float):
        self.engine, self.home, self.interval_s = engine, home, interval_s
        self.result: dict | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_start = 0.0

    def poke(self) -> None:
        """Start a verification if none runs and the last one is older than the interval."""
        if self.interval_s <= 0:
            return
        with self._lock:
            busy = self._thread is not None and self._thread.is_alive()
            if busy or (self._last_start and time.monotonic() - self._last_start < self.interval_s):
                return
            self._last_start = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="metrics-journal-verify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from varta.access.journal import Journal, heads_dir, load_heads

        t0 = time.monotonic()
        try:
            v = Journal(self.engine).verify(load_heads(heads_dir(self.home)))
            self.result = {"ok": v.ok, "problems": len(v.problems), "lines": v.lines, "heads": v.heads_checked,
                           "finished": time.time(), "seconds": time.monotonic() - t0}
            if not v.ok:
                log.error("journal verification (monitoring): %d problem(s), the first: %s",
                          len(v.problems), v.problems[0])
        except Exception as exc:  # noqa: BLE001 - reported as a failed verification
            log.warning("journal verification (monitoring) could not run: %s", exc)
            self.result = {"ok": False, "problems": -1, "lines": 0, "heads": 0, "finished": time.time(),
                           "seconds": time.monotonic() - t0, "error": str(exc)}


class VartaCollector(Collector):
    """One scrape = a handful of queries, whatever the number of nodes."""

    def __init__(self, settings, engine, node=None):
        self.settings = settings
        self.engine = engine
        self.node = node  # the running node (varta/node/runtime.py), or a stand-in, or None
        self.verifier = JournalVerifier(engine, settings.home, settings.metrics_journal_verify_s)
        self._scrape = threading.local()  # per scrape: two Prometheus servers may scrape at once

    def describe(self):
        return []  # collected only at scrape time (registering must not query the database)

    # --- one scrape -------------------------------------------------------------------
    def collect(self):
        t0 = time.monotonic()
        up = _g("varta_metrics_section_up", "1 if this section of the metrics was collected, "
                "0 if it failed (see the web node's log)", ["section"])
        self._scrape.nodes = None
        for section, fn in (("build", self._build), ("nodes", self._nodes), ("cameras", self._cameras),
                            ("storage", self._storage), ("archive", self._archive), ("analytics", self._analytics),
                            ("jobs", self._jobs), ("journal", self._journal), ("alarms", self._alarms),
                            ("lockdown", self._lockdown)):
            try:
                families = list(fn())
            except Exception:  # noqa: BLE001 - one broken section must not hide the others
                log.exception("metrics: section %s failed", section)
                up.add_metric([section], 0)
                continue
            up.add_metric([section], 1)
            yield from families
        yield up
        d = _g("varta_metrics_collect_seconds", "time this scrape took to collect")
        d.add_metric([], time.monotonic() - t0)
        yield d

    def _node_rows(self):
        if getattr(self._scrape, "nodes", None) is None:
            from varta.cluster.nodes import NodeRegistry

            registry = getattr(self.node, "registry", None) or NodeRegistry(self.engine)
            self._scrape.nodes = registry.list()
        return self._scrape.nodes

    def _names(self) -> dict[str, str]:
        return {n.id: n.name for n in self._node_rows()}

    def _build(self):
        info = InfoMetricFamily("varta_build", "this web node's Varta version and database")
        info.add_metric([], {"version": __version__, "database": self.engine.dialect.name,
                             "archive_storage": self.settings.archive_storage})
        yield info

    def _nodes(self):
        rows = self._node_rows()
        db_now = read_db_now(self.engine)
        up = _g("varta_node_up", "1 while the node heartbeats (its session has not lapsed)", ["node"])
        state = _g("varta_node_state", "the node's state (1 for the current one)", ["node", "state"])
        age = _g("varta_node_heartbeat_age_seconds", "seconds since the node's last heartbeat "
                 "(the database's clock)", ["node"])
        info = InfoMetricFamily("varta_node", "each node's roles, version and host", labels=["node"])
        cams = _g("varta_node_cameras", "cameras the node's recorder runs now", ["node"])
        rec = _g("varta_node_cameras_recording", "of those, cameras recording now", ["node"])
        for n in rows:
            up.add_metric([n.name], 1 if n.alive else 0)
            for s in NODE_STATES:
                state.add_metric([n.name, s], 1 if n.status == s else 0)
            age.add_metric([n.name], max(0.0, (db_now - n.heartbeat_us) / US))
            info.add_metric([n.name], {"id": n.id, "roles": ",".join(n.roles), "version": n.version,
                                       "hostname": n.hostname})
            if "recorder" in n.roles and n.status != "stopped":
                cams.add_metric([n.name], float((n.load or {}).get("cameras", 0)))
                rec.add_metric([n.name], float((n.load or {}).get("recording", 0)))
        lease = _g("varta_cluster_lease_seconds", "a node that stops heartbeating loses its work after this long")
        lease.add_metric([], self.settings.cluster_lease_s)
        yield from (up, state, age, info, cams, rec, lease)

    def _cameras(self):
        from varta.cameras.registry import CameraRegistry
        from varta.recording.index import ArchiveIndex

        now = time.time()
        now_us = int(now * US)
        cams = CameraRegistry(self.engine).list()
        index = ArchiveIndex(self.engine)
        statuses = index.statuses()
        totals = index.camera_totals()
        names = self._names()
        enabled = _g("varta_camera_enabled", "1 if the camera is enabled in the registry", ["camera"])
        recording = _g("varta_camera_recording", "1 while the camera is being recorded", ["camera", "node"])
        # Only the current state, as 1 (recording, reconnecting, failed, off, stopped, unknown): a
        # 0 for every other state would double a capital's scrape for nothing an alert needs.
        state = _g("varta_camera_state", "the camera's recording state: one series, 1, labelled with it",
                   ["camera", "state"])
        since = _g("varta_camera_state_seconds", "seconds the camera has been in its current state", ["camera"])
        fps = _g("varta_camera_fps", "frames per second of the recorded stream", ["camera"])
        bitrate = _g("varta_camera_bitrate_bits_per_second", "bitrate of the recorded stream", ["camera"])
        lag = _g("varta_camera_lag_seconds", "how far the recorder's index is behind the camera", ["camera"])
        last = _g("varta_camera_last_segment_age_seconds", "seconds since the end of the camera's newest "
                  "indexed segment", ["camera"])
        updated = _g("varta_camera_status_age_seconds", "seconds since the recorder last reported on the camera "
                     "(grows when its recorder is dead)", ["camera"])
        archive = _g("varta_camera_archive_bytes", "bytes of the camera's footage in the archive", ["camera"])
        seconds = _g("varta_camera_archive_seconds", "seconds of the camera's footage in the archive", ["camera"])
        oldest = _g("varta_camera_oldest_recording_timestamp_seconds", "start of the camera's oldest footage "
                    "(Unix time)", ["camera"])
        gaps = _g("varta_camera_gaps_24h", "outages (gaps in the recording) that touched the last 24 hours",
                  ["camera"])
        gap_s = _g("varta_camera_gap_seconds_24h", "seconds of the last 24 hours lost to outages", ["camera"])
        in_gap = _g("varta_camera_in_gap", "1 while an outage of the camera goes on", ["camera"])

        window = now_us - GAP_WINDOW_S * US
        end = func.coalesce(outages.c.end_us, literal(now_us))
        start = case((outages.c.start_us > window, outages.c.start_us), else_=literal(window))
        q = (select(outages.c.camera_id, func.count(), func.sum(end - start),
                    func.sum(case((outages.c.end_us.is_(None), 1), else_=0)))
             .where((outages.c.end_us.is_(None)) | (outages.c.end_us > window))
             .group_by(outages.c.camera_id))
        with self.engine.connect() as conn:
            gap_rows = {r[0]: (int(r[1]), max(0, int(r[2] or 0)) / US, int(r[3] or 0)) for r in conn.execute(q)}

        for c in cams:
            cid = c.id
            enabled.add_metric([cid], 1 if c.enabled else 0)
            row = statuses.get(cid)
            current = row["state"] if row else "unknown"
            node = names.get(row["recorder"], row["recorder"]) if row else ""
            recording.add_metric([cid, node], 1 if current == "recording" else 0)
            state.add_metric([cid, current], 1)
            if row:
                since.add_metric([cid], max(0.0, (now_us - row["since_us"]) / US))
                updated.add_metric([cid], max(0.0, (now_us - row["updated_us"]) / US))
                if row["fps"] is not None:
                    fps.add_metric([cid], row["fps"])
                if row["bitrate_bps"] is not None:
                    bitrate.add_metric([cid], row["bitrate_bps"])
                if row["lag_s"] is not None:
                    lag.add_metric([cid], row["lag_s"])
                if row["last_segment_end_us"]:
                    last.add_metric([cid], max(0.0, (now_us - row["last_segment_end_us"]) / US))
            t = totals.get(cid)
            archive.add_metric([cid], t[0] if t else 0)
            seconds.add_metric([cid], t[1] if t else 0)
            if t and t[2]:
                oldest.add_metric([cid], t[2] / US)
            n_gaps, lost, open_ = gap_rows.get(cid, (0, 0.0, 0))
            gaps.add_metric([cid], n_gaps)
            gap_s.add_metric([cid], min(lost, GAP_WINDOW_S))
            in_gap.add_metric([cid], 1 if open_ else 0)
        total = _g("varta_cameras", "cameras in the registry (not removed)")
        total.add_metric([], len(cams))
        yield from (total, enabled, recording, state, since, fps, bitrate, lag, last, updated, archive, seconds,
                    oldest, gaps, gap_s, in_gap)

    def _storage(self):
        """Each recorder's disk and forecast, as its janitor measured them (heartbeat load)."""
        fams = {
            "disk_total_bytes": _g("varta_storage_disk_total_bytes", "size of the recordings disk", ["node"]),
            "disk_free_bytes": _g("varta_storage_disk_free_bytes", "free space on the recordings disk", ["node"]),
            "reserve_bytes": _g("varta_storage_reserve_bytes", "free space the janitor keeps (min_free_percent, "
                                "min_free_mb)", ["node"]),
            "archive_bytes": _g("varta_storage_archive_bytes", "footage on this node's disk", ["node"]),
            "daily_bytes": _g("varta_storage_daily_bytes", "bytes a day the node's cameras record at the "
                              "measured bitrates", ["node"]),
            "days_capacity": _g("varta_storage_forecast_days", "days of footage the disk holds at the measured "
                                "bitrates (the storage forecast)", ["node"]),
            "required_days": _g("varta_storage_required_days", "the longest retention of the node's cameras "
                                "(the forecast must stay above it)", ["node"]),
            "short": _g("varta_storage_short", "1 if the disk cannot hold the required days", ["node"]),
        }
        for n in self._node_rows():
            st = (n.load or {}).get("storage")
            if "recorder" not in n.roles or n.status == "stopped" or not st:
                continue
            for key, fam in fams.items():
                v = st.get(key)
                if v is not None:
                    fam.add_metric([n.name], float(v))
        yield from fams.values()

    def _archive(self):
        """Shipping to the city's bucket (archive_storage = "s3"): the backlog per node."""
        if self.settings.archive_storage != "s3":
            return
        from varta.storage.shipping import Backlog, backlog_by_node

        per_node = backlog_by_node(self.engine)
        segs = _g("varta_archive_backlog_segments", "finished segments not yet shipped to the bucket", ["node"])
        nbytes = _g("varta_archive_backlog_bytes", "bytes not yet shipped to the bucket", ["node"])
        age = _g("varta_archive_backlog_seconds", "how far shipping is behind (age of the oldest segment due)",
                 ["node"])
        failing = _g("varta_archive_shipping_failing", "1 while the node's uploads to the bucket fail", ["node"])
        now = None
        rows = self._node_rows()
        names = {n.id: n.name for n in rows}
        for node_id in set(names) | set(per_node):
            b = per_node.get(node_id, Backlog(0, 0, None))
            name = names.get(node_id, node_id)
            segs.add_metric([name], b.segments)
            nbytes.add_metric([name], b.bytes)
            age.add_metric([name], b.seconds(now))
        for n in rows:
            arch = (n.load or {}).get("archive")
            if arch and n.status != "stopped":
                failing.add_metric([n.name], 1 if arch.get("state") == "failing" else 0)
        alarm = _g("varta_archive_backlog_alarm_seconds", "the backlog that raises a system alarm "
                   "(archive_backlog_alarm_s)")
        alarm.add_metric([], self.settings.archive_backlog_alarm_s)
        yield from (segs, nbytes, age, failing, alarm)

    def _analytics(self):
        now_us = int(time.time() * US)
        names = self._names()
        state = _g("varta_analytics_state", "the camera's analysis state (analysing, degraded, motion_only, "
                   "no_video, off): one series, 1, labelled with it", ["camera", "state"])
        degraded = _g("varta_analytics_degraded", "1 if the camera is analysed below its target rate (the "
                      "worker is overloaded)", ["camera", "node"])
        target = _g("varta_analytics_target_fps", "frames a second the camera should be analysed at", ["camera"])
        actual = _g("varta_analytics_fps", "frames a second analysed", ["camera"])
        detect = _g("varta_analytics_detect_fps", "frames a second run through the detector", ["camera"])
        allowed = _g("varta_analytics_allowed_fps", "the rate the governor allows now", ["camera"])
        lag = _g("varta_analytics_lag_seconds", "longest delay from frame to analysis in the last report", ["camera"])
        age = _g("varta_analytics_status_age_seconds", "seconds since the worker last reported", ["camera"])
        with self.engine.connect() as conn:
            rows = conn.execute(select(analytics_status)).all()
        for r in rows:
            cid = r.camera_id
            state.add_metric([cid, r.state], 1)
            slowed = r.allowed_fps is not None and r.allowed_fps < r.target_fps - 1e-6
            degraded.add_metric([cid, names.get(r.worker, r.worker)],
                                1 if (r.state == "degraded" or slowed) else 0)
            target.add_metric([cid], r.target_fps)
            actual.add_metric([cid], r.actual_fps or 0.0)
            detect.add_metric([cid], r.detect_fps or 0.0)
            if r.allowed_fps is not None:
                allowed.add_metric([cid], r.allowed_fps)
            if r.lag_s is not None:
                lag.add_metric([cid], r.lag_s)
            age.add_metric([cid], max(0.0, (now_us - r.updated_us) / US))
        yield from (state, degraded, target, actual, detect, allowed, lag, age)

    def _jobs(self):
        now_us = int(time.time() * US)
        count = _g("varta_jobs", "background jobs (exports, evidence packages, transfers) by status", ["kind", "status"])
        oldest = _g("varta_jobs_oldest_queued_seconds", "age of the oldest job still queued", ["kind"])
        failed = _g("varta_jobs_failed_24h", "jobs that failed in the last 24 hours", ["kind"])
        with self.engine.connect() as conn:
            by_status = conn.execute(select(jobs.c.kind, jobs.c.status, func.count(), func.min(jobs.c.created_us))
                                     .group_by(jobs.c.kind, jobs.c.status)).all()
            recent = conn.execute(select(jobs.c.kind, func.count()).where(
                jobs.c.status == "failed", jobs.c.finished_us > now_us - 24 * 3600 * US).group_by(jobs.c.kind)).all()
        kinds = {"export", "package", "transfer"} | {r[0] for r in by_status}
        seen = defaultdict(int)
        for kind, status, n, first in by_status:
            seen[(kind, status)] = n
            if status == "queued" and first:
                oldest.add_metric([kind], max(0.0, (now_us - first) / US))
        for kind in sorted(kinds):
            for status in ("queued", "running", "done", "failed"):
                count.add_metric([kind, status], seen[(kind, status)])
        recent_d = dict((k, n) for k, n in recent)
        for kind in sorted(kinds):
            failed.add_metric([kind], recent_d.get(kind, 0))
        yield from (count, oldest, failed)

    def _journal(self):
        from varta.access.journal import Journal

        seq, _ = Journal(self.engine).head()
        lines = _g("varta_journal_lines", "lines in the access journal (its newest line's number)")
        lines.add_metric([], seq)
        yield lines
        self.verifier.poke()
        res = self.verifier.result
        if res is None:
            return
        ok = _g("varta_journal_verify_ok", "1 if the last verification of the journal's hash chain (against the "
                "published heads) found it intact")
        ok.add_metric([], 1 if res["ok"] else 0)
        problems = _g("varta_journal_verify_problems", "problems the last verification found (-1: it could not run)")
        problems.add_metric([], res["problems"])
        checked = _g("varta_journal_verified_lines", "lines the last verification walked")
        checked.add_metric([], res["lines"])
        when = _g("varta_journal_verify_timestamp_seconds", "when the last verification finished (Unix time)")
        when.add_metric([], res["finished"])
        took = _g("varta_journal_verify_duration_seconds", "how long the last verification took")
        took.add_metric([], res["seconds"])
        yield from (ok, problems, checked, when, took)

    def _alarms(self):
        q = (select(system_alarms.c.kind, system_alarms.c.severity, func.count())
             .where(system_alarms.c.cleared_us.is_(None)).group_by(system_alarms.c.kind, system_alarms.c.severity))
        active = _g("varta_system_alarms_active", "system alarms not cleared (the console's Health page)",
                    ["kind", "severity"])
        with self.engine.connect() as conn:
            for kind, severity, n in conn.execute(q):
                active.add_metric([kind, severity], n)
        yield active


    def _lockdown(self):
        from varta.lockdown.store import LockdownStore

        st = LockdownStore(self.engine).current()
        active = _g("varta_lockdown_active", "1 while a lockdown is in force (varta/lockdown), by scope", ["scope"])
        since = _g("varta_lockdown_since_seconds", "when the lockdown in force began (Unix time; 0: none)")
        for scope in ("sensitive", "all"):
            active.add_metric([scope], 1 if st is not None and st.scope == scope else 0)
        since.add_metric([], st.started_us / 1e6 if st is not None else 0)
        yield active
        yield since


def make_registry(settings, engine, node=None) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one): one per app, and no
    process metrics of the library's that would describe only this web process."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(VartaCollector(settings, engine, node))
    return reg


def exposition(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The scrape's body and content type (OpenMetrics when Prometheus asks for it)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


# --- the optional unauthenticated listener (metrics_listen) --------------------------------
class MetricsListener:
    """Serves /metrics without sign-in on ``metrics_listen`` (a monitoring network only)."""

    def __init__(self, registry: CollectorRegistry, listen: str):
        self.registry, self.listen = registry, listen
        self.server = None
        self.thread = None

    def start(self) -> "MetricsListener":
        from prometheus_client.exposition import start_http_server

        host, _, port = self.listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self.server, self.thread = start_http_server(int(port), addr=host, registry=self.registry)
        log.info("metrics: serving /metrics without sign-in at http://%s/metrics", self.listen)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
