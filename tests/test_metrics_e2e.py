"""Monitoring end to end: /metrics of a real `varta serve` recording a real RTSP camera,
guarded like every route, matching what the API says, scraped by a real Prometheus with a
bearer token from a file, with the example alert rules loaded (deploy/prometheus/)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import s3server
from conftest import ROOT, free_port, have_ffmpeg, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed")]

ALERTS = ROOT / "deploy" / "prometheus" / "varta-alerts.yml"
EXAMPLE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict, name: str, **labels) -> float | None:
    want = set(labels.items())
    for (n, lab), v in samples.items():
        if n == name and want <= set(lab):
            return v
    return None


def _token(v, login: str, role: str, scope: str) -> str:
    v.account(login, role)
    out = v.run("token", "create", login, "--name", f"{login}-{scope}", "--scope", scope).stdout
    return out.strip().splitlines()[-1].strip()


def _prometheus_bin() -> tuple[str, str]:
    prom, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prom or not promtool:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    return prom, promtool


def test_metrics_guarded_match_the_api_and_prometheus_scrapes_them(varta, camsim, tmp_path):
    prom, promtool = _prometheus_bin()
    open_port = free_port()
    v = varta(metrics_listen=f"127.0.0.1:{open_port}", metrics_journal_verify_s=2)
    v.run("camera", "add", "mel-gen1", "--url", camsim.url("gen1"), "--kind", "street", "--name", "gen1")
    v.start()
    v.wait_for(lambda: v.status("mel-gen1").get("state") == "recording" and v.status("mel-gen1").get("fps"),
               60, "mel-gen1 recording with its fps measured")

    good = _token(v, "prometheus", "admin", "system.view")
    narrow = _token(v, "dispatch", "admin", "camera.list")
    url = f"{v.base_url}/metrics"
    # Guarded like every route: nobody anonymous, and a token needs system.view.
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer varta_not-a-token"}, timeout=10).status_code == 401
    r = httpx.get(url, headers={"Authorization": f"Bearer {narrow}"}, timeout=10)
    assert r.status_code == 403, r.text
    auth = {"Authorization": f"Bearer {good}"}

    texts = []

    def scrape() -> dict:
        resp = httpx.get(url, headers=auth, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/plain")
        texts.append(resp.text)
        return _samples(resp.text)

    # The storage forecast comes with the janitor's first pass (every 5 s in tests).
    first = wait_until(lambda: (s := scrape()) and _value(s, "varta_storage_forecast_days", node="test-node")
                       is not None and _value(s, "varta_camera_archive_bytes", camera="mel-gen1") and s,
                       60, "a storage forecast and footage in the metrics")
    assert _value(first, "varta_camera_recording", camera="mel-gen1", node="test-node") == 1
    assert _value(first, "varta_camera_state", camera="mel-gen1", state="recording") == 1
    assert _value(first, "varta_camera_state", camera="mel-gen1", state="failed") is None  # the current one only
    assert _value(first, "varta_camera_enabled", camera="mel-gen1") == 1
    assert _value(first, "varta_cameras") == 1
    assert _value(first, "varta_camera_in_gap", camera="mel-gen1") == 0
    assert _value(first, "varta_node_up", node="test-node") == 1
    assert _value(first, "varta_node_state", node="test-node", state="active") == 1
    assert 0 <= _value(first, "varta_node_heartbeat_age_seconds", node="test-node") < 10
    assert _value(first, "varta_journal_lines") > 0
    for section in ("build", "nodes", "cameras", "storage", "archive", "analytics", "jobs", "journal", "alarms"):
        assert _value(first, "varta_metrics_section_up", section=section) == 1, section

    # The same figures as the API's.
    with v.api() as c:
        status = c.get("/api/cameras/mel-gen1/status").json()
        storage = c.get("/api/system/storage").json()
        nodes = c.get("/api/nodes").json()
    assert _value(first, "varta_camera_fps", camera="mel-gen1") == pytest.approx(status["fps"], abs=0.5)
    assert _value(first, "varta_camera_bitrate_bits_per_second", camera="mel-gen1") / 1000 == \
        pytest.approx(status["bitrate_kbps"], rel=0.25)
    assert _value(first, "varta_storage_required_days", node="test-node") == storage["required_days"]
    assert _value(first, "varta_storage_disk_total_bytes", node="test-node") == storage["disk"]["total_bytes"]
    assert [n["name"] for n in nodes] == ["test-node"]
    assert _value(first, "varta_jobs", kind="export", status="queued") == 0

    # Footage grows; the journal was verified in the background (and found intact).
    b1 = _value(first, "varta_camera_archive_bytes", camera="mel-gen1")
    later = wait_until(lambda: (s := scrape()) and _value(s, "varta_camera_archive_bytes", camera="mel-gen1") > b1
                       and _value(s, "varta_journal_verify_ok") is not None and s, 30, "more footage, journal verified")
    assert _value(later, "varta_journal_verify_ok") == 1
    assert _value(later, "varta_journal_verify_problems") == 0

    # metrics_listen: the same metrics without sign-in on the monitoring address, nothing else there.
    open_r = httpx.get(f"http://127.0.0.1:{open_port}/metrics", timeout=30)
    assert open_r.status_code == 200
    assert _value(_samples(open_r.text), "varta_camera_recording", camera="mel-gen1") == 1

    # Every metric the example alert rules use exists (the archive's only with archive_storage = "s3").
    names = set(re.findall(r"^# TYPE (\S+)", texts[-1], re.M))  # families, with samples or not yet
    source = (ROOT / "varta" / "monitoring" / "metrics.py").read_text()
    for used in set(re.findall(r"\bvarta_[a-z0-9_]+", ALERTS.read_text())):
        assert used in names or (used.startswith("varta_archive_") and f'"{used}"' in source), used

    # --- a real Prometheus scrapes it with the token from a file, and loads the rules ---
    check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    token_file = tmp_path / "varta.token"
    token_file.write_text(good + "\n")
    token_file.chmod(0o600)
    shutil.copy(ALERTS, tmp_path / "varta-alerts.yml")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [varta-alerts.yml]
scrape_configs:
  - job_name: varta
    authorization:
      type: Bearer
      credentials_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{v.port}"]
""")
    for cfg in (config, EXAMPLE_CONFIG):
        # the example's token file is not here; check it only as far as syntax goes
        res = subprocess.run([promtool, "check", "config", "--syntax-only", str(cfg)], capture_output=True, text=True)
        assert res.returncode == 0, f"{cfg}: {res.stdout}{res.stderr}"
    prom_port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([prom, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    try:
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        context = lambda: (tmp_path / "prometheus.log").read_text()[-3000:]  # noqa: E731

        def query(q: str):
            try:
                r = httpx.get(f"{api}/query", params={"query": q}, timeout=5)
            except httpx.HTTPError:
                return None
            if r.status_code != 200:
                return None
            res = r.json()["data"]["result"]
            return res or None

        res = wait_until(lambda: query('varta_camera_recording{camera="mel-gen1"}'), 60,
                         "Prometheus's first sample of Varta", context=context)
        assert res[0]["metric"]["job"] == "varta"
        assert float(res[0]["value"][1]) == 1
        assert float(wait_until(lambda: query('up{job="varta"}'), 10, "up", context=context)[0]["value"][1]) == 1
        grown = wait_until(lambda: query('delta(varta_camera_archive_bytes{camera="mel-gen1"}[1m]) > 0'), 60,
                           "footage growing in Prometheus", context=context)
        assert float(grown[0]["value"][1]) > 0

        # The rules are loaded and evaluate against the real series without error, and none of
        # the critical ones fires on a healthy town.
        def rules():
            r = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
            evaluated = [rule for g in r for rule in g["rules"] if rule.get("lastEvaluation", "").startswith("20")]
            return r if len(evaluated) == sum(len(g["rules"]) for g in r) else None

        groups = wait_until(rules, 30, "every alert rule evaluated", context=context)
        loaded = {rule["name"]: rule for g in groups for rule in g["rules"]}
        assert {"VartaCameraDown", "VartaRecordingLag", "VartaStorageForecastShort", "VartaNodeHeartbeatStale",
                "VartaJournalBroken", "VartaAnalyticsDegraded", "VartaArchiveShippingBacklog"} <= set(loaded)
        assert all(r["health"] == "ok" for r in loaded.values()), {n: r.get("lastError") for n, r in loaded.items()}
        for name in ("VartaCameraDown", "VartaNodeHeartbeatStale", "VartaJournalBroken", "VartaMetricsDown"):
            assert loaded[name]["state"] == "inactive", (name, loaded[name])

        # A camera that goes away: the state metric says so, and the alert becomes pending.
        camsim.stop()
        wait_until(lambda: query('varta_camera_state{camera="mel-gen1",state=~"reconnecting|failed"} == 1'), 60,
                   "the camera's outage in Prometheus", context=context)
        alerts = wait_until(lambda: [a for a in httpx.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]
                                     if a["labels"]["alertname"] == "VartaCameraDown"], 30,
                            "VartaCameraDown pending", context=context)
        assert alerts[0]["labels"]["camera"] == "mel-gen1" and alerts[0]["state"] in ("pending", "firing")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


s3_server = s3server.s3_server


@pytest.mark.postgres
def test_a_capitals_metrics_from_one_web_node_see_a_recorder_die(tmp_path, postgres_url, camsim, s3_server):
    """Two recorders and a web node on PostgreSQL with the archive in a bucket (moto over
    HTTP): the web node's /metrics shows every node's heartbeat, each recorder's disk and
    shipping backlog; when the recorder holding the camera is killed (-9) its heartbeat ages,
    it is down, and the camera is recorded again by the other with the gap counted."""
    from test_cluster_e2e import Cluster

    bucket = "metrics-archive"
    s3_server.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    archive = dict(archive_storage="s3", archive_s3_endpoint_url=s3_server.endpoint_url, archive_s3_bucket=bucket,
                   archive_s3_region=s3_server.region, archive_s3_access_key=s3_server.access_key,
                   archive_s3_secret_key=s3_server.secret_key, archive_s3_path_style="true",
                   metrics_journal_verify_s="0")
    c = Cluster(tmp_path, postgres_url)
    try:
        web = c.start("web-1", "web", **archive)
        for name in ("rec-1", "rec-2"):
            c.start(name, "recorder", **archive)
        web.run("camera", "add", "mel-gen1", "--url", camsim.url("gen1"), "--kind", "street")
        token = _token(web, "prometheus", "admin", "system.view")

        def scrape() -> dict:
            r = httpx.get(f"{web.base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert r.status_code == 200, r.text
            return _samples(r.text)

        def ready():
            s = scrape()
            holder = next((dict(lab)["node"] for (n, lab), v in s.items()
                           if n == "varta_camera_recording" and dict(lab)["camera"] == "mel-gen1" and v == 1), None)
            have_disks = all(_value(s, "varta_storage_forecast_days", node=n) is not None
                             or _value(s, "varta_storage_disk_total_bytes", node=n) for n in ("rec-1", "rec-2"))
            return holder and have_disks and (s, holder)

        wait_until(ready, 90, "the camera recorded and both recorders' disks in the metrics",
                   context=lambda: (tmp_path / "rec-1" / "serve.log").read_text()[-2000:])

        def settled():
            """The lease holder (cameras move while the recorders join), the same twice in a row,
            with no move in progress, and the metrics naming it."""
            nodes = httpx.get(f"{web.base_url}/api/nodes", headers={"Authorization": f"Bearer {token}"},
                              timeout=30).json()
            holders = [n["name"] for n in nodes if "mel-gen1" in n["cameras"]]
            if len(holders) != 1 or any(n["moving_in"] for n in nodes):
                settled.last = None
                return None
            same = settled.last == holders[0]
            settled.last = holders[0]
            s = scrape()
            return same and _value(s, "varta_camera_recording", camera="mel-gen1", node=holders[0]) == 1 \
                and (s, holders[0])

        settled.last = None
        s, holder = wait_until(settled, 60, "the camera settled on one recorder", interval=3)
        for name in ("web-1", "rec-1", "rec-2"):
            assert _value(s, "varta_node_up", node=name) == 1, name
            assert _value(s, "varta_node_heartbeat_age_seconds", node=name) < 5, name
        assert _value(s, "varta_build_info", database="postgresql", archive_storage="s3") == 1
        for name in ("rec-1", "rec-2"):
            assert _value(s, "varta_archive_backlog_segments", node=name) is not None, name
            assert _value(s, "varta_archive_shipping_failing", node=name) == 0, name
        assert _value(s, "varta_storage_disk_total_bytes", node="web-1") is None  # no recorder, no disk of footage
        assert _value(s, "varta_metrics_section_up", section="archive") == 1

        victim = c.nodes[holder]
        survivor = "rec-2" if holder == "rec-1" else "rec-1"
        victim.kill9()
        after = wait_until(lambda: (s := scrape()) and _value(s, "varta_node_up", node=holder) == 0
                           and _value(s, "varta_camera_recording", camera="mel-gen1", node=survivor) == 1 and s,
                           60, f"{holder} down and the camera recorded by {survivor}")
        assert _value(after, "varta_node_state", node=holder, state="down") == 1
        assert _value(after, "varta_node_heartbeat_age_seconds", node=holder) >= 5  # cluster_lease_s
        assert _value(after, "varta_node_up", node=survivor) == 1
        gaps = wait_until(lambda: _value(scrape(), "varta_camera_gaps_24h", camera="mel-gen1"), 30,
                          "the failover's gap counted", context=lambda: str(c.db("select * from outages")))
        assert gaps >= 1
    finally:
        c.stop_all()


def test_alert_rules_fire_on_made_up_series():
    """promtool's unit tests of the example rules (deploy/prometheus/varta-alerts.test.yml):
    a camera down, a node silent (but not one stopped on purpose), a short disk, a broken
    journal, a shipping backlog, degraded analytics — each fires, with its words, when due."""
    _, promtool = _prometheus_bin()
    res = subprocess.run([promtool, "test", "rules", "varta-alerts.test.yml"], cwd=ALERTS.parent,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_collector_counts_gaps_jobs_and_alarms(engine, tmp_path):
    """The collector's queries on both databases: gaps in the last 24 h (an open one too),
    jobs by status, active alarms, a node whose heartbeat stopped."""
    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.clock import now_us
    from varta.cluster.nodes import NodeRegistry
    from varta.config import Settings
    from varta.db.schema import jobs
    from varta.events.system_alarms import SystemAlarms
    from varta.monitoring.metrics import exposition, make_registry
    from varta.recording.index import ArchiveIndex

    settings = Settings(home=tmp_path, metrics_journal_verify_s=0)
    CameraRegistry(engine).add(Camera(id="cam-1", main_url="rtsp://10.0.0.1/s"))
    CameraRegistry(engine).add(Camera(id="cam-2", main_url="rtsp://10.0.0.2/s"))
    index = ArchiveIndex(engine)
    t = now_us()
    h = 3600 * 1_000_000
    index.record_outage("cam-1", t - 30 * h, t - 23 * h, "camera_unreachable", "", "n1")  # 1 h inside the window
    index.record_outage("cam-1", t - 2 * h, t - h, "camera_unreachable", "", "n1")  # 1 h
    index.open_outage("cam-2", t - 600 * 1_000_000, "camera_unreachable", "", "n1")  # 10 min, still open
    index.set_status("cam-2", "n1", "reconnecting", "camera_unreachable", "no answer")
    with engine.begin() as conn:
        for i, status in enumerate(("queued", "running", "failed")):
            conn.execute(jobs.insert().values(id=f"j{i}", kind="export", status=status, progress=0.0, params={},
                                              error="", node="n1", attempts=0, created_by="t", created_us=t - h,
                                              finished_us=t if status == "failed" else None))
    SystemAlarms(engine, "n1").raise_alarm("disk_full", "critical", "disk full")
    nodes = NodeRegistry(engine, ttl_us=1)
    nodes.register(node_id="n1", name="rec-1", roles=["recorder"], address="", version="x", capacity=0, groups=[],
                   takes_unpinned=True, public_key="", wrap_key="", pid=1)
    time.sleep(0.05)

    body, ctype = exposition(make_registry(settings, engine))
    s = _samples(body.decode())
    assert _value(s, "varta_camera_gaps_24h", camera="cam-1") == 2
    assert _value(s, "varta_camera_gap_seconds_24h", camera="cam-1") == pytest.approx(7200, abs=5)
    assert _value(s, "varta_camera_in_gap", camera="cam-1") == 0
    assert _value(s, "varta_camera_gaps_24h", camera="cam-2") == 1
    assert _value(s, "varta_camera_gap_seconds_24h", camera="cam-2") == pytest.approx(600, abs=5)
    assert _value(s, "varta_camera_in_gap", camera="cam-2") == 1
    assert _value(s, "varta_camera_state", camera="cam-2", state="reconnecting") == 1
    assert _value(s, "varta_camera_recording", camera="cam-2") == 0
    assert _value(s, "varta_camera_state", camera="cam-1", state="unknown") == 1
    assert _value(s, "varta_jobs", kind="export", status="queued") == 1
    assert _value(s, "varta_jobs", kind="export", status="running") == 1
    assert _value(s, "varta_jobs_failed_24h", kind="export") == 1
    assert _value(s, "varta_jobs_oldest_queued_seconds", kind="export") == pytest.approx(3600, abs=5)
    assert _value(s, "varta_system_alarms_active", kind="disk_full", severity="critical") == 1
    assert _value(s, "varta_node_up", node="rec-1") == 0
    assert _value(s, "varta_node_state", node="rec-1", state="down") == 1
    assert _value(s, "varta_node_heartbeat_age_seconds", node="rec-1") > 0
    assert all(v == 1 for (n, _), v in s.items() if n == "varta_metrics_section_up")
    # OpenMetrics when Prometheus asks for it.
    body, ctype = exposition(make_registry(settings, engine), "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.rstrip().endswith(b"# EOF")
