"""Package builds and transfers as background jobs (the row in ``evidence_jobs`` is the
shared state, like export jobs: any web node can report on a job another node runs).

A build interrupted by a restart is marked failed (start it again: a package is rebuilt
from the archive, which the request's hold keeps). A transfer interrupted by a restart
resumes by itself when the node comes back: its multipart state is in the row.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from pathlib import Path

from sqlalchemy import insert, select, update

from varta import __version__
from varta.access.policy import Principal
from varta.clock import format_time, now_us
from varta.db.schema import evidence_jobs, evidence_requests
from varta.evidence import requests as rules
from varta.evidence.package import PackageError, PackageItem, build_package, video_name, zip_package
from varta.evidence.records import NotFound, fmt
from varta.evidence.redaction import RedactionError, RedactionOptions, load_redaction_detector, redact_file
from varta.playback.export import ExportError, export_camera, sha256_file
from varta.evidence.transfer import (FolderTarget, S3Target, TransferError, TransferInterrupted, check_target,
                                     copy_to_folder, presign, upload_to_s3)

log = logging.getLogger("varta.evidence")

PACKAGE, TRANSFER = "package", "transfer"


class JobError(RuntimeError):
    pass


def principal_dict(who: Principal) -> dict:
    return {"login": who.login, "full_name": who.full_name, "role": who.role, "access": who.access,
            "restricted": who.restricted, "source": who.source}


def principal_from(d: dict) -> Principal:
    return Principal(login=d["login"], full_name=d["full_name"], role=d["role"], access=d["access"],
                     restricted=d["restricted"], source=d["source"])


def transfer_target(settings) -> S3Target | FolderTarget:
    """The configured destination: an S3-compatible bucket, else a folder; else say how to set one."""
    if settings.s3_bucket:
        return S3Target(endpoint_url=settings.s3_endpoint_url or None, bucket=settings.s3_bucket,
                        region=settings.s3_region, access_key=settings.s3_access_key,
                        secret_key=settings.s3_secret_key, prefix=settings.s3_prefix, sse=settings.s3_sse,
                        link_expiry_s=int(settings.transfer_link_days * 86400), part_size_mb=settings.s3_part_size_mb)
    if settings.transfer_folder:
        return FolderTarget(Path(settings.transfer_folder))
    raise JobError("no transfer target is configured: set s3_bucket (with s3_endpoint_url and keys) "
                   "or transfer_folder in varta.toml")


class _RowState:
    """A transfer's multipart state, kept in its job row so a restart can resume it."""

    def __init__(self, engine, job_id: str):
        self.engine, self.job_id = engine, job_id

    def load(self) -> dict | None:
        with self.engine.connect() as conn:
            return conn.execute(select(evidence_jobs.c.resume).where(evidence_jobs.c.id == self.job_id)).scalar()

    def save(self, state: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(evidence_jobs).where(evidence_jobs.c.id == self.job_id).values(resume=state))


class EvidenceJobs:
    def __init__(self, evidence, node: str):
        self.ev = evidence
        self.engine = evidence.engine
        self.node = node
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.packages_dir = evidence.settings.evidence_dir / "packages"

    def recover(self) -> None:
        """After a restart: builds cannot continue (failed, start again; their half-written
        files are removed); transfers resume."""
        with self.engine.begin() as conn:
            broken = conn.execute(select(evidence_jobs).where(
                evidence_jobs.c.node == self.node, evidence_jobs.c.kind == PACKAGE,
                evidence_jobs.c.status.in_(("queued", "running")))).all()
            conn.execute(update(evidence_jobs)
                         .where(evidence_jobs.c.id.in_([j.id for j in broken]))
                         .values(status="failed", error="interrupted: the server restarted during the build; "
                                                        "prepare the package again", finished_us=now_us()))
            pending = conn.execute(select(evidence_jobs).where(
                evidence_jobs.c.node == self.node, evidence_jobs.c.kind == TRANSFER,
                evidence_jobs.c.status.in_(("queued", "running")))).all()
        for job in broken:
            self._remove_leftovers(job)
        for job in pending:
            log.info("resuming transfer %s of request %s", job.id, job.request_id)
            self._spawn(job.id, TRANSFER, self._run_transfer, job.request_id, principal_from(job.params["by"]))

    def _remove_leftovers(self, job) -> None:
        """A killed build leaves NAME.part/, NAME.zip.part and its redaction scratch folder;
        only this job's (by name), so a build running on another node sharing the folder
        is never touched."""
        root = self.ev.settings.evidence_dir
        name = (job.params or {}).get("name")
        doomed = [root / f"redact-{job.id}"]
        if name:
            doomed += [self.packages_dir / f"{name}.part", self.packages_dir / f"{name}.zip.part"]
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink(missing_ok=True)

    def stop(self) -> None:
        self._stopping.set()
        for t in self._threads:
            t.join(timeout=10)

    # --- starting ----------------------------------------------------------------------
    def start(self, kind: str, request_id: int, who: Principal) -> dict:
        row = self.ev.requests.row(request_id)
        if kind == PACKAGE:
            rules.next_state(row.state, "prepare")  # approved (or rebuilding a prepared one)
            run = self._run_package
        else:
            rules.next_state(row.state, "transfer")
            if not row.package:
                raise rules.RequestError("build the package first")
            transfer_target(self.ev.settings)  # fail now, not in the background, when none is set
            run = self._run_transfer
        with self.engine.connect() as conn:
            busy = conn.execute(select(evidence_jobs.c.id).where(
                evidence_jobs.c.request_id == request_id, evidence_jobs.c.status.in_(("queued", "running")))).first()
        if busy:
            raise rules.RequestError(f"job {busy.id} of this request is still running")
        job_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(insert(evidence_jobs).values(
                id=job_id, request_id=request_id, kind=kind, status="queued", progress=0.0,
                params={"by": principal_dict(who)}, error="", node=self.node, created_by=who.login,
                created_us=now_us()))
        self._spawn(job_id, kind, run, request_id, who)
        return self.get(job_id)

    def _spawn(self, job_id: str, kind: str, run, request_id: int, who: Principal) -> None:
        def body() -> None:
            self._set(job_id, status="running")
            try:
                result = run(job_id, request_id, who)
            except (PackageError, TransferError, JobError, rules.RequestError, NotFound, RedactionError) as exc:
                self._set(job_id, status="failed", error=str(exc), finished_us=now_us())
                self.ev.record_failure(who, job_id, kind, request_id, str(exc))
                return
            except Exception as exc:  # a bug must still end the job visibly
                log.exception("evidence job %s failed", job_id)
                self._set(job_id, status="failed", error=f"internal error: {exc}", finished_us=now_us())
                return
            if result is None:  # stopped for shutdown: stays "running", resumed at the next start
                return
            self._set(job_id, status="done", progress=1.0, result=result, finished_us=now_us())

        t = threading.Thread(target=body, name=f"evidence-{job_id}", daemon=True)
        self._threads.append(t)
        t.start()

    def _set(self, job_id: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(evidence_jobs).where(evidence_jobs.c.id == job_id).values(**values))

    def _progress(self, job_id: str):
        last = [0.0]

        def report(p: float) -> None:
            if p - last[0] >= 0.01 or p >= 1.0:
                last[0] = p
                self._set(job_id, progress=round(min(p, 1.0), 3))
        return report

    # --- the work ----------------------------------------------------------------------
    def _run_package(self, job_id: str, request_id: int, who: Principal) -> dict:
        ev, settings = self.ev, self.ev.settings
        row = ev.requests.row(request_id)
        tz = settings.tz
        items = []
        for it in row.items:
            cam = ev.registry.get(it["camera_id"], include_removed=True)
            items.append(PackageItem(it["camera_id"], it["start_us"], it["end_us"],
                                     camera_name=cam.name if cam else "", address=cam.address if cam else ""))
        out_dir = self.packages_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{row.number}-{format_time(now_us(), tz)[:19].replace(':', '').replace('-', '')}"
        self._set(job_id, params={"by": principal_dict(who), "name": name})  # to clean up after a crash
        progress = self._progress(job_id)
        key = ev.key
        scratch = settings.evidence_dir / f"redact-{job_id}"
        try:
            extras = []
            if row.redaction:
                extras = self._redacted_copies(scratch, items, row.redaction, lambda p: progress(p * 0.5))
                base, span = 0.5, 0.45
            else:
                base, span = 0.0, 0.95
            built = build_package(
                index=ev.index, recordings_dir=settings.recordings_dir, ffmpeg=ev.ffmpeg, out_dir=out_dir, name=name,
                items=items, request=ev.manifest_request(row), exported_by=principal_dict(who),
                instance={"name": settings.instance_name, "id": key.fingerprint()[:16], "version": __version__},
                key=key, tz=tz, progress=lambda p: progress(base + span * p), extra_files=extras)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        zipped = zip_package(built.path)
        shutil.rmtree(built.path)  # the zip holds every file; one copy on disk is enough
        package = {"name": name, "zip": zipped.name, "bytes": zipped.stat().st_size, "sha256": sha256_file(zipped),
                   "fingerprint": key.fingerprint(), "files": len(built.files),
                   "redacted": bool(row.redaction), "built": format_time(now_us(), tz), "built_by": who.login,
                   "gaps": sum(len(i.get("gaps", [])) for i in built.manifest.get("items", []))}
        ev.after_package(who, request_id, package, built.manifest)
        return package

    def _redacted_copies(self, tmp: Path, items: list[PackageItem], options: dict, progress) -> list:
        """A4.8: a re-encoded, redacted copy of each file, beside the untouched original."""
        detector = load_redaction_detector(self.ev.settings)
        out = []
        for n, item in enumerate(items):
            rel = video_name(item, self.ev.settings.tz)
            src = tmp / "orig" / rel
            try:
                export_camera(self.ev.index, self.ev.settings.recordings_dir, self.ev.ffmpeg, item.camera_id,
                              item.start_us, item.end_us, src, self.ev.settings.tz)
            except ExportError as exc:
                raise PackageError(str(exc)) from None
            dst = tmp / "redacted" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            report = redact_file(src, dst, detector, RedactionOptions(**options),
                                 progress=lambda p, n=n: progress((n + p) / len(items)))
            src.unlink()
            out.append((dst, f"redacted/{rel}", {"redacted": True, "original": f"video/{rel}",
                                                 "method": report.method}))
        return out

    def _run_transfer(self, job_id: str, request_id: int, who: Principal) -> dict | None:
        ev, settings = self.ev, self.ev.settings
        row = ev.requests.row(request_id)
        zpath = self.packages_dir / row.package["zip"]
        if not zpath.is_file():
            raise JobError(f"the package file {zpath.name} is gone from the server; prepare the package again")
        target = transfer_target(settings)
        total = zpath.stat().st_size
        report = self._progress(job_id)

        def progress(done: int, _total: int) -> None:
            report(done / total if total else 1.0)

        if isinstance(target, S3Target):
            check_target(target)  # endpoint, keys and bucket (made private if missing), said plainly
            try:
                res = upload_to_s3(zpath, f"{row.number}/{zpath.name}", target, _RowState(self.engine, job_id),
                                   progress, should_stop=self._stopping.is_set, sha256=row.package["sha256"])
            except TransferInterrupted:
                return None  # the server is stopping: resumed from the saved parts at the next start
        else:
            if not target.folder.is_dir():  # an unmounted drive must not fill the system disk
                raise JobError(f"the transfer folder {target.folder} does not exist (is the drive mounted?)")
            sub = target.folder / row.number
            sub.mkdir(exist_ok=True)
            res = copy_to_folder(zpath, FolderTarget(sub), progress)
        if res.sha256 and res.sha256 != row.package["sha256"]:
            raise JobError(f"the uploaded copy's SHA-256 {res.sha256} differs from the package's "
                           f"{row.package['sha256']}: not transferred")
        transfer = {"target": res.target, "location": res.location, "bytes": res.bytes, "sha256": row.package["sha256"],
                    "sse": res.sse, "url": res.url,
                    "expires": format_time(res.url_expires_us, settings.tz) if res.url_expires_us else None,
                    "resumed_parts": res.resumed_parts, "at": format_time(now_us(), settings.tz), "by": who.login}
        ev.after_transfer(who, request_id, transfer)
        return transfer

    def new_link(self, request_id: int) -> tuple[str, int]:
        """A fresh presigned link for a transferred package (the old one expired or leaked)."""
        row = self.ev.requests.row(request_id)
        if row.state != rules.TRANSFERRED or not row.transfer or row.transfer.get("target") != "s3":
            raise rules.RequestError("a new link is for packages transferred to S3 storage")
        target = transfer_target(self.ev.settings)
        if not isinstance(target, S3Target):
            raise JobError("the S3 target is no longer configured")
        return presign(target, row.transfer["location"])

    # --- reading -----------------------------------------------------------------------
    def get(self, job_id: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence_jobs).where(evidence_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return self._describe(row)

    def for_request(self, request_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(evidence_jobs).where(evidence_jobs.c.request_id == request_id)
                                .order_by(evidence_jobs.c.created_us.desc())).all()
        return [self._describe(r) for r in rows]

    def _describe(self, r) -> dict:
        tz = self.ev.settings.tz
        return {"id": r.id, "request_id": r.request_id, "kind": r.kind, "status": r.status, "progress": r.progress,
                "result": r.result, "error": r.error, "node": r.node, "by": r.created_by,
                "created": format_time(r.created_us, tz),
                "finished": fmt(r.finished_us, tz)}

    def package_path(self, request_id: int) -> Path:
        with self.engine.connect() as conn:
            pkg = conn.execute(select(evidence_requests.c.package).where(evidence_requests.c.id == request_id)).scalar()
        if not pkg:
            raise NotFound("this request has no package yet")
        path = self.packages_dir / pkg["zip"]
        if not path.is_file():
            raise NotFound(f"the package file {pkg['zip']} is not on this server")
        return path

