"""A transfer cut by a crash goes on on another node: the parts already in the bucket are not
sent again, and the request ends transferred with a working link; a build cut by a crash is
built again elsewhere, its half-written files removed."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import date

import httpx
import pytest
from sqlalchemy import insert

from s3server import ACCESS_KEY, SECRET_KEY, s3_server  # noqa: F401 (the fixture)
from varta.access.policy import Principal
from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.clock import now_us
from varta.config import Settings
from varta.db.engine import open_database
from varta.db.schema import jobs
from varta.evidence import requests as rules
from varta.evidence.jobs import _RowState, principal_dict, transfer_target
from varta.evidence.service import Evidence
from varta.evidence.transfer import TransferInterrupted, upload_to_s3

DEPT = Principal("olena", "Шевченко Олена Петрівна", "department", access="direct", restricted=True,
                 source="127.0.0.1")
MAYOR = Principal("mayor", "Петренко Іван Васильович", "mayor")
MiB = 1 << 20


class _Journal:
    """Collects what the jobs journal (the access journal itself is tested elsewhere)."""

    def __init__(self):
        self.lines = []

    def record(self, who, action, obj="", result="ok", detail=""):
        self.lines.append((action, obj, result, detail))


def test_a_transfer_cut_by_a_crash_goes_on_on_another_node(tmp_path, s3_server):  # noqa: F811
    from varta.cluster.leases import LeaseStore
    from varta.cluster.nodes import NodeRegistry
    from varta.jobs.runner import JobContext, JobRunner
    from varta.recording.index import ArchiveIndex

    settings = Settings(home=tmp_path, s3_endpoint_url=s3_server.endpoint_url, s3_bucket="resume-evidence",
                        s3_access_key=ACCESS_KEY, s3_secret_key=SECRET_KEY, s3_part_size_mb=5)
    engine = open_database(settings.db_url)
    CameraRegistry(engine).add(Camera(id="mel-0012", main_url="rtsp://127.0.0.1:9/x"))
    journal = _Journal()
    nodes = NodeRegistry(engine)
    for node in ("node-a", "node-b"):
        nodes.register(node_id=node, name=node, roles=["cli"], address="", version="t", capacity=0, groups=[],
                       takes_unpinned=True, public_key="", wrap_key="", pid=1)

    def evidence(node):
        runner = JobRunner(engine, node)
        return Evidence(engine, settings, registry=CameraRegistry(engine), index=ArchiveIndex(engine),
                        ffmpeg="ffmpeg", access=journal, runner=runner), runner

    ev, runner_a = evidence("node-a")
    t = now_us() - 3600 * 1_000_000
    req = ev.requests.register(DEPT, kind="police", incoming_no="1", incoming_date=date.today(), requester="РВП",
                               basis="КПК", items=[rules.Interval("mel-0012", t, t + 60_000_000)])
    ev.requests.resolve(req["id"], MAYOR, approve=True, text="Погоджую")
    # A prepared package of 96 MiB (20 parts of 5 MiB; up to 8 are sent at once).
    packages = settings.evidence_dir / "packages"
    packages.mkdir(parents=True)
    data = os.urandom(96 * MiB)
    zpath = packages / "pkg.zip"
    zpath.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    ev.requests.prepared(req["id"], DEPT, {"name": "pkg", "zip": "pkg.zip", "bytes": len(data), "sha256": digest,
                                           "fingerprint": "f" * 64, "files": 3, "node": "node-a"})
    # Node a was uploading when it died: a running job, under its lease, whose state holds two parts.
    job_id = "resumejob0001"
    with engine.begin() as conn:
        conn.execute(insert(jobs).values(
            id=job_id, kind="transfer", subject=req["id"], status="running", progress=0.4,
            params={"by": principal_dict(DEPT)}, error="", node="node-a", attempts=1, created_by="olena",
            created_us=now_us()))
    fence = LeaseStore(engine).create_held("job", job_id, "node-a")
    ctx = JobContext(runner_a, job_id, "transfer", req["id"], {"by": principal_dict(DEPT)}, fence, 1, "")
    target = transfer_target(settings)
    from varta.evidence.transfer import check_target

    check_target(target)
    sent = []
    with pytest.raises(TransferInterrupted):
        upload_to_s3(zpath, f"{req['number']}/pkg.zip", target, _RowState(ctx),
                     progress=lambda done, total: sent.append(done), should_stop=lambda: len(sent) > 2, sha256=digest)
    saved = _RowState(ctx).load()
    assert 2 <= len(saved["parts"]) < 20
    nodes.stopped("node-a")  # its session ends: the job's lease is free

    # Node b takes the job over and goes on from the parts already in the bucket.
    ev2, runner_b = evidence("node-b")
    assert runner_b.take_over() == ["job:" + job_id]
    deadline = time.monotonic() + 60
    while ev2.jobs.get(job_id)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    job = ev2.jobs.get(job_id)
    assert job["status"] == "done" and job["attempts"] == 2, job
    assert job["result"]["resumed_parts"] == len(saved["parts"])
    final = ev2.requests.get(req["id"])
    assert final["state"] == "transferred"
    assert hashlib.sha256(httpx.get(final["transfer"]["url"], timeout=60).content).hexdigest() == digest
    assert ("request.transfer", f"request:{req['number']}", "ok") in [ln[:3] for ln in journal.lines]
    # Node a, woken, cannot write over node b's result: its lease moved on (fencing).
    from varta.cluster.leases import Fenced

    with pytest.raises(Fenced):
        _RowState(ctx).save({"stale": True})

    # A package build that was running when its node died is built again by the node that
    # takes it over, after removing the dead build's half-written files (by name: not those
    # of a build by another node sharing the folder); here the footage is gone, and it says so.
    req2 = ev2.requests.register(DEPT, kind="police", incoming_no="2", incoming_date=date.today(),
                                 requester="РВП", basis="КПК", items=[rules.Interval("mel-0012", t, t + 60_000_000)])
    ev2.requests.resolve(req2["id"], MAYOR, approve=True, text="Погоджую")
    nodes.register(node_id="node-c", name="node-c", roles=["cli"], address="", version="t", capacity=0, groups=[],
                   takes_unpinned=True, public_key="", wrap_key="", pid=1)
    with engine.begin() as conn:
        conn.execute(insert(jobs).values(
            id="buildjob0001", kind="package", subject=req2["id"], status="running", progress=0.5,
            params={"by": principal_dict(DEPT), "name": "REQ-X-1"}, error="", node="node-c", attempts=1,
            created_by="olena", created_us=now_us()))
    LeaseStore(engine).create_held("job", "buildjob0001", "node-c")
    leftovers = [packages / "REQ-X-1.part" / "video", settings.evidence_dir / "redact-buildjob0001" / "orig"]
    for d in leftovers:
        d.mkdir(parents=True)
        (d / "half.mp4").write_bytes(b"\0" * 1000)
    (packages / "REQ-X-1.zip.part").write_bytes(b"PK")
    (packages / "REQ-Y-2.part").mkdir()  # another node's build in progress
    nodes.stopped("node-c")
    runner_b.take_over()
    deadline = time.monotonic() + 60
    while ev2.jobs.get("buildjob0001")["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    build = ev2.jobs.get("buildjob0001")
    assert build["status"] == "failed" and build["attempts"] == 2 and "no recording" in build["error"], build
    assert not (packages / "REQ-X-1.part").exists() and not (packages / "REQ-X-1.zip.part").exists()
    assert not (settings.evidence_dir / "redact-buildjob0001").exists()
    assert (packages / "REQ-Y-2.part").is_dir() and zpath.is_file()
    engine.dispose()
