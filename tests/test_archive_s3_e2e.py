"""One archive for the city in an S3-compatible bucket (issue 13, A4.1, A4.6, MVS-1), tried as a
city's IT department would: two real ``varta recorder`` processes with no shared disk and a
``varta web`` node on one PostgreSQL, a real S3 server over HTTP (moto) with Object Lock,
real RTSP cameras; the recorder that recorded a minute is killed, the store is frozen, a
recorder is killed while it ships.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import time

import pytest
import s3server
from conftest import have_ffmpeg, wait_until
from test_cluster_e2e import Cluster, _iso, _now_us, _us
from test_playback_retention_e2e import _decode_playlist_start

from varta.storage import layout

pytestmark = [pytest.mark.e2e, pytest.mark.postgres,
              pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]

s3_server = s3server.s3_server


def _archive_settings(srv, bucket: str) -> dict:
    return dict(archive_storage="s3", archive_s3_endpoint_url=srv.endpoint_url, archive_s3_bucket=bucket,
                archive_s3_prefix="kyiv/", archive_s3_region=srv.region, archive_s3_access_key=srv.access_key,
                archive_s3_secret_key=srv.secret_key, archive_s3_path_style="true",
                archive_local_cache_hours="0", archive_backlog_alarm_s="15")


def _in_bucket(c: Cluster, srv, bucket: str, camera: str) -> dict[str, dict]:
    """Index rows of a camera → the bucket's object (None when absent)."""
    s3 = srv.client()
    rows = c.db("select path, stored, sha256, bytes from segments where camera_id = :c and status <> 'missing'",
                c=camera)
    out = {}
    for path, stored, sha, size in rows:
        key = "kyiv/" + layout.segment_key(camera, path)
        try:
            h = s3.head_object(Bucket=bucket, Key=key)
            obj = {"size": h["ContentLength"], "sha256": h["Metadata"].get("sha256")}
        except Exception:  # noqa: BLE001 - absent
            obj = None
        out[path] = {"stored": stored, "sha256": sha, "bytes": size, "object": obj}
    return out


def _all_shipped(c, srv, bucket, camera, at_least: int) -> bool:
    """At least ``at_least`` segments, and every one that ended over 12 s ago in the bucket (a
    segment is due 10 s after it ends)."""
    due = {p for (p,) in c.db("select path from segments where camera_id = :c and end_us < :t",
                              c=camera, t=_now_us() - 12_000_000)}
    rows = _in_bucket(c, srv, bucket, camera)
    return len(due) >= at_least and all(rows[p]["stored"] in layout.IN_BUCKET and rows[p]["object"]
                                        for p in due if p in rows)


def test_two_recorders_without_a_shared_disk_and_a_web_node_on_one_bucket(tmp_path, postgres_url, camsim, s3_server):
    bucket = f"kyiv-archive-{secrets.token_hex(3)}"
    s3_server.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    archive = _archive_settings(s3_server, bucket)
    c = Cluster(tmp_path, postgres_url)
    try:
        a = c.node("rec-a", **archive)
        a.run("camera", "add", "s3-a", "--url", camsim.url("gen1"), "--recorder", "rec-a")
        a.run("camera", "add", "s3-b", "--url", camsim.url("gen2"), "--recorder", "rec-b")
        c.start("rec-a", **archive)
        c.start("rec-b", **archive)
        zone = dict(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
        web = c.start("web-1", "web", **archive, **zone)
        status = web.json("storage", "status", "--json")
        assert status["backend"] == "s3" and status["object_lock"] is True and status["reachable"] is True
        assert "Object Lock" in status["holds_protected_by"]
        assert status["index"]["partitioned_by"] == "day (UTC)" and status["index"]["rows_outside_days"] == 0

        # --- every finished segment is in the bucket within seconds, hash-verified --------
        wait_until(lambda: _all_shipped(c, s3_server, bucket, "s3-a", 6), 90, "six segments of s3-a shipped")
        rows = _in_bucket(c, s3_server, bucket, "s3-a")
        for path, r in rows.items():
            if r["stored"] in layout.IN_BUCKET:
                assert r["object"]["size"] == r["bytes"] and r["object"]["sha256"] == r["sha256"], (path, r)
        # --- the store freezes for 60 s: recording goes on, the backlog shows; then the
        #     recorder is killed with an upload in flight, and nothing is lost or doubled ---
        b = c.nodes["rec-b"]
        wait_until(lambda: _all_shipped(c, s3_server, bucket, "s3-b", 3), 60, "s3-b shipping")
        t_freeze = _now_us()
        os.killpg(s3_server.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(30)
            res = web.run("storage", "status", "--json", check=False)
            behind = json.loads(res.stdout)
            assert res.returncode == 1 and behind["reachable"] is False  # said plainly, exit 1 for monitoring
            with web.api() as api:
                alarms = api.get("/api/system/alarms?active=true").json()
                shown = {n["name"]: (n["load"] or {}).get("archive") for n in api.get("/api/nodes").json()}
            time.sleep(28)
            t_kill = _now_us()
            b.kill9()  # its shipper waits on an upload the frozen store has not answered
        finally:
            os.killpg(s3_server.proc.pid, signal.SIGCONT)
        b_node = next(n for n in behind["nodes"] if n["node"] == "rec-b")
        assert b_node["backlog_segments"] >= 5 and b_node["backlog_s"] >= 15, behind
        assert any(al["kind"] in ("archive_backlog", "archive_unreachable") for al in alarms), alarms
        # The Nodes page shows what waits on each recorder's disk (from its heartbeat).
        assert shown["rec-b"]["backlog_segments"] >= 3 and shown["rec-b"]["state"] == "failing", shown
        b.start("recorder")

        def drained():
            st = web.json("storage", "status", "--json")
            return next(n for n in st["nodes"] if n["node"] == "rec-b")["backlog_segments"] <= 1

        wait_until(drained, 120, "the backlog drained")
        with web.api() as api:  # up to the segment the kill tore
            rep = api.get("/api/cameras/s3-b/recordings",
                          params={"from": _iso(t_freeze), "to": _iso(t_kill - 6_000_000)}).json()
        assert [g for g in rep["gaps"] if g["reason"] != "in_progress"] == [], "no frame lost while the store was away"
        rows = _in_bucket(c, s3_server, bucket, "s3-b")
        listed = s3_server.client().list_object_versions(Bucket=bucket, Prefix="kyiv/" + layout.segment_key("s3-b", ""))
        versions = [v["Key"] for v in listed.get("Versions", [])]
        assert sorted(versions) == sorted(set(versions)), "a segment was stored twice"
        assert set(versions) <= {"kyiv/" + layout.segment_key("s3-b", p) for p in rows}, \
            "an object in the bucket that the index does not know"
        shipped = 0
        for path, r in rows.items():
            if r["stored"] not in layout.IN_BUCKET:
                continue  # recorded since the wait above: not shipped yet
            shipped += 1
            assert r["object"]["sha256"] == r["sha256"] and r["object"]["size"] == r["bytes"], (path, r)
            local = b.home / "recordings" / "s3-b" / path
            if local.exists():
                assert hashlib.sha256(local.read_bytes()).hexdigest() == r["sha256"]
        assert shipped >= 30
        wait_until(lambda: not any(al["kind"] in ("archive_backlog", "archive_unreachable")
                                   for al in web.api().get("/api/system/alarms?active=true").json()),
                   60, "the archive alarms cleared")

        # The local copies are only a cache (0 h here): the janitor releases them.
        wait_until(lambda: any(r["stored"] == layout.S3 for r in _in_bucket(c, s3_server, bucket, "s3-a").values()),
                   60, "a local copy released")
        released = [p for p, r in _in_bucket(c, s3_server, bucket, "s3-a").items() if r["stored"] == layout.S3]
        assert not (a.home / "recordings" / "s3-a" / released[0]).exists()
        seg_id, seg_start = c.db("select id, start_us from segments where camera_id = 's3-a' and stored = 's3' "
                                 "order by start_us limit 1")[0]

        # --- the recorder of that minute dies: the web node still plays and exports it ---
        a.kill9()
        t = seg_start + 1_340_000  # between two frames of a segment that is only in the bucket
        with web.api() as api:
            r = api.get("/api/cameras/s3-a/playback.m3u8", params={"from": _iso(t)})
            assert r.status_code == 200, r.text
            want, shown = _decode_playlist_start(api, r.text, tmp_path)
            assert shown is not None and shown[0] <= want + 1e-6 and want - shown[0] < 1 / 25 + 1e-6
            job = api.post("/api/exports", json={"cameras": ["s3-a"], "from": _iso(t),
                                                 "to": _iso(t + 4_000_000)}).json()
            done = wait_until(lambda: (j := api.get(f"/api/exports/{job['id']}").json())["status"]
                              in ("done", "failed") and j, 90, "the export from the bucket")
            assert done["status"] == "done", done
            got = api.get(f"/api/exports/{job['id']}/files/{done['files'][0]['name']}")
            assert got.status_code == 200 and got.content[4:8] == b"ftyp"
            # The export is in the bucket too: served from there when the web node's disk lost it.
            made = next(p for p in (web.home / "exports").rglob(done["files"][0]["name"]))
            key = "kyiv/" + layout.file_key("exports", made.relative_to(web.home / "exports").as_posix())
            head = s3_server.client().head_object(Bucket=bucket, Key=key)
            assert head["Metadata"]["sha256"] == hashlib.sha256(got.content).hexdigest()
            made.unlink()
            again = api.get(f"/api/exports/{job['id']}/files/{done['files'][0]['name']}",
                            headers={"Range": "bytes=0-99"})
            assert again.status_code == 206 and again.content == got.content[:100]

        # --- a hold is enforced by the bucket: not even the service's own keys delete it ---
        from botocore.exceptions import ClientError

        s3c = s3_server.client()
        lo, hi = c.db("select min(start_us), max(end_us) from segments where camera_id = 's3-a' "
                      "and stored <> 'local'")[0]
        t1, t2 = (lo + hi) // 2 - 3_000_000, (lo + hi) // 2 + 3_000_000
        order = {"number": "77-р", "date": _iso(_now_us())[:10], "author": "Петренко Іван Васильович",
                 "office": "mayor"}
        with web.api("olena.dept", "department") as dept:
            r = dept.post("/api/holds", json={"intervals": [{"camera_id": "s3-a", "from": _iso(t1), "to": _iso(t2)}],
                                              "reason": "ДТП на перехресті", "instruction": order})
            assert r.status_code == 201, r.text
            hold = r.json()
        # The interval as Varta keeps it (times to the millisecond, as entered), not t1/t2 to the µs.
        h1, h2 = _us(hold["intervals"][0]["from"]), _us(hold["intervals"][0]["to"])
        held = ["kyiv/" + layout.segment_key("s3-a", p) for (p,) in
                c.db("select path from segments where camera_id = 's3-a' and start_us < :e and end_us > :s",
                     s=h1, e=h2)]
        assert len(held) >= 3

        def legal_holds():
            return {k: s3c.get_object_legal_hold(Bucket=bucket, Key=k)["LegalHold"].get("Status", "OFF") for k in held}

        def why() -> str:
            rows = c.db("select path, stored, locked, recorder, start_us, end_us from segments where camera_id = 's3-a' "
                        "and start_us < :e and end_us > :s", s=h1, e=h2)
            logs = "\n".join(f"--- {n}: " + "\n".join((node.home / "serve.log").read_text(errors="replace")
                                                      .splitlines()[-15:]) for n, node in c.nodes.items()
                             if (node.home / "serve.log").exists())
            kept = c.db("select start_us, end_us, released_us from holds where camera_id = 's3-a'")
            return f"hold {hold['intervals']} rows {kept} (asked {t1}–{t2})\nheld rows {rows}\nlegal holds " \
                   f"{legal_holds()}\n{logs}"

        wait_until(lambda: set(legal_holds().values()) == {"ON"}, 30, "legal holds on the held footage", context=why)
        version = s3c.head_object(Bucket=bucket, Key=held[0])["VersionId"]
        with pytest.raises(ClientError, match="AccessDenied"):
            s3c.delete_object(Bucket=bucket, Key=held[0], VersionId=version)
        with web.api("olena.dept", "department") as dept:
            r = dept.post(f"/api/holds/{hold['id']}/release",
                          json={"instruction": {**order, "number": "78-р"}, "note": "провадження закрито"})
            assert r.status_code == 200, r.text
        wait_until(lambda: set(legal_holds().values()) == {"OFF"}, 30, "the legal holds lifted by the destruction "
                                                                         "instruction")

        # --- retention deletes expired footage from the bucket too (every version), the dead
        #     recorder's included: one node does it for the city ------------------------------
        age = 11 * 86_400_000_000
        rec_a = a.node_id()
        with a.engine().begin() as conn:
            from sqlalchemy import text

            conn.execute(text("update segments set start_us = start_us - :a, end_us = end_us - :a "
                              "where camera_id = 's3-a' and recorder = :r"), {"a": age, "r": rec_a})
        gone = ["kyiv/" + layout.segment_key("s3-a", p) for (p,) in
                c.db("select path from segments where camera_id = 's3-a' and recorder = :r and stored = 's3'",
                     r=rec_a)]
        assert len(gone) >= 5
        res = web.run("retention")  # by hand on the web node (the duty does the same every pass)
        assert "deleted" in res.stdout, res.stdout + res.stderr
        assert c.db("select count(*) from segments where camera_id = 's3-a' and recorder = :r and stored = 's3'",
                    r=rec_a)[0][0] == 0
        left = s3_server.client().list_object_versions(Bucket=bucket, Prefix="kyiv/" + layout.segment_key("s3-a", ""))
        kept = {v["Key"] for v in left.get("Versions", []) + left.get("DeleteMarkers", [])}
        assert not kept & set(gone), "expired footage left in the bucket"
    finally:
        c.stop_all()
