"""Package builds and transfers, as jobs of the one job runner (varta/jobs/runner.py).

The row in ``jobs`` is the shared state, so any web node reports on a job another node
runs. A build whose node dies is built again by another node (from the archive, which the
request's hold keeps); a transfer whose node dies continues on another node from the
parts already in the bucket, reading the package from the node that built it. A job that
cannot go on (the package's node is down too) fails with the reason.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from varta import __version__
from varta.access.policy import Principal
from varta.clock import format_time, now_us
from varta.evidence import requests as rules
from varta.evidence.package import PackageError, PackageItem, build_package, video_name, zip_package
from varta.evidence.records import NotFound, fmt
from varta.evidence.redaction import RedactionError, RedactionOptions, load_redaction_detector, redact_file
from varta.evidence.transfer import (FolderTarget, S3Target, TransferError, TransferInterrupted, check_target,
                                     copy_to_folder, presign, upload_to_s3)
from varta.jobs.runner import JobContext, JobRunner, JobStopped, expected_errors
from varta.playback.export import ExportError, export_camera, sha256_file
from varta.storage.files import FileUnavailable

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
    """A transfer's multipart state, kept in its job row so any node can resume it."""

    def __init__(self, job: JobContext):
        self.job = job

    def load(self) -> dict | None:
        return self.job.load_resume()

    def save(self, state: dict) -> None:
        self.job.save_resume(state)


class EvidenceJobs:
    def __init__(self, evidence, runner: JobRunner, files=None):
        self.ev = evidence
        self.engine = evidence.engine
        self.runner = runner
        self.files = files  # varta.storage.files.NodeFiles: segments and packages on any node
        self.packages_dir = evidence.settings.evidence_dir / "packages"
        runner.register(PACKAGE, _Handler(self, self._run_package))
        runner.register(TRANSFER, _Handler(self, self._run_transfer))
        expected_errors(PackageError, TransferError, JobError, rules.RequestError, NotFound, RedactionError,
                        FileUnavailable)

    def _remove_leftovers(self, job_id: str, name: str | None) -> None:
        """A killed build leaves NAME.part/, NAME.zip.part and its redaction scratch folder;
        only this job's (by name), so a build running on another node sharing the folder
        is never touched."""
        root = self.ev.settings.evidence_dir
        doomed = [root / f"redact-{job_id}"]
        if name:
            doomed += [self.packages_dir / f"{name}.part", self.packages_dir / f"{name}.zip.part"]
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink(missing_ok=True)

    # --- starting ----------------------------------------------------------------------
    def start(self, kind: str, request_id: int, who: Principal) -> dict:
        row = self.ev.requests.row(request_id)
        if kind == PACKAGE:
            rules.next_state(row.state, "prepare")  # approved (or rebuilding a prepared one)
        else:
            rules.next_state(row.state, "transfer")
            if not row.package:
                raise rules.RequestError("build the package first")
            transfer_target(self.ev.settings)  # fail now, not in the background, when none is set
        busy = self.runner.busy((PACKAGE, TRANSFER), request_id)
        if busy:
            raise rules.RequestError(f"job {busy} of this request is still running")
        job_id = self.runner.submit(kind, {"by": principal_dict(who)}, who.login, subject=request_id)
        return self.get(job_id)

    # --- the work ----------------------------------------------------------------------
    def _documents(self, scratch: Path, request_id: int) -> list[tuple[Path, str, dict]]:
        """The request's own documents (the letter filed with it), in the package under
        ``documents/`` and in its manifest with their SHA-256."""
        out = []
        for i, a in enumerate(self.ev.requests.attachments(request_id), 1):
            name, media_type, content = self.ev.requests.attachment(request_id, a["id"])
            src = scratch / "documents" / f"{i:02d}"
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(content)
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120] or f"document-{i}"
            out.append((src, f"documents/{i:02d}-{safe}", {"role": "request document", "name": name,
                                                          "media_type": media_type}))
        return out

    def _run_package(self, job: JobContext, request_id: int, who: Principal) -> dict:
        ev, settings = self.ev, self.ev.settings
        job_id = job.id
        if job.params.get("name"):  # built before, by a node that stopped: its leftovers here, if any
            self._remove_leftovers(job_id, job.params["name"])
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
        job.save_params({"by": principal_dict(who), "name": name})  # to clean up after a crash
        progress = job.progress
        key = ev.key
        scratch = settings.evidence_dir / f"redact-{job_id}"
        try:
            extras = []
            if row.redaction:
                extras = self._redacted_copies(scratch, items, row.redaction, lambda p: progress(p * 0.5))
                base, span = 0.5, 0.45
            else:
                base, span = 0.0, 0.95
            extras += self._documents(scratch, request_id)
            with self._segments(scratch) as reader:
                built = build_package(
                    index=ev.index, segments_from=reader, ffmpeg=ev.ffmpeg, out_dir=out_dir, name=name,
                    items=items, request=ev.manifest_request(row), exported_by=principal_dict(who),
                    instance={"name": settings.instance_name, "id": key.fingerprint()[:16], "version": __version__},
                    key=key, tz=tz, progress=lambda p: progress(base + span * p), extra_files=extras)
        except BaseException:
            self._remove_leftovers(job_id, name)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        zipped = zip_package(built.path)
        shutil.rmtree(built.path)  # the zip holds every file; one copy on disk is enough
        package = {"name": name, "zip": zipped.name, "bytes": zipped.stat().st_size, "sha256": sha256_file(zipped),
                   "fingerprint": key.fingerprint(), "files": len(built.files),
                   "redacted": bool(row.redaction), "built": format_time(now_us(), tz), "built_by": who.login,
                   "gaps": sum(len(i.get("gaps", [])) for i in built.manifest.get("items", [])),
                   "node": job.files_node}
        if self.files is not None:  # into the archive bucket too (when there is one): any node serves it
            self.files.publish("packages", zipped.name, wait=True)
        ev.after_package(who, request_id, package, built.manifest, job.fence)
        return package

    def _segments(self, scratch: Path):
        """Segments from whichever node holds them (copied into ``scratch`` when remote)."""
        from contextlib import nullcontext

        if self.files is None:
            return nullcontext(self.ev.settings.recordings_dir)
        return self.files.reading(scratch)

    def _redacted_copies(self, tmp: Path, items: list[PackageItem], options: dict, progress) -> list:
        """A4.8: a re-encoded, redacted copy of each file, beside the untouched original."""
        detector = load_redaction_detector(self.ev.settings)
        out = []
        for n, item in enumerate(items):
            rel = video_name(item, self.ev.settings.tz)
            src = tmp / "orig" / rel
            try:
                with self._segments(tmp / "segments") as reader:
                    export_camera(self.ev.index, reader, self.ev.ffmpeg, item.camera_id,
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

    def _run_transfer(self, job: JobContext, request_id: int, who: Principal) -> dict:
        ev, settings = self.ev, self.ev.settings
        row = ev.requests.row(request_id)
        zpath = self._package_here(job, row.package)
        target = transfer_target(settings)
        total = zpath.stat().st_size
        report = job.progress

        def progress(done: int, _total: int) -> None:
            report(done / total if total else 1.0)

        if isinstance(target, S3Target):
            check_target(target)  # endpoint, keys and bucket (made private if missing), said plainly
            try:
                res = upload_to_s3(zpath, f"{row.number}/{zpath.name}", target, _RowState(job),
                                   progress, should_stop=job.should_stop, sha256=row.package["sha256"])
            except TransferInterrupted:
                raise JobStopped() from None  # resumed from the saved parts by the next node
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
        ev.after_transfer(who, request_id, transfer, job.fence)
        return transfer

    def _package_here(self, job: JobContext, package: dict) -> Path:
        """The package's zip on this node's disk: where it was built, or copied from the
        node that built it (a transfer taken over by another node)."""
        local = self.packages_dir / package["zip"]
        node = package.get("node")
        if local.is_file() or self.files is None or node in (None, "", job.files_node):
            if not local.is_file():
                raise JobError(f"the package file {local.name} is gone from the server; prepare the package again")
            return local
        try:
            return self.files.fetch(node, "packages", package["zip"], self.ev.settings.home / "cache" / "packages"
                                    / package["zip"])
        except FileUnavailable as exc:
            raise JobError(f"the package is on node {node}, which cannot be reached now ({exc}); transfer again "
                           "once it is back, or prepare the package again") from None

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
        row = self.runner.get(job_id)
        if row is None or row.kind not in (PACKAGE, TRANSFER):
            raise NotFound(f"no job {job_id}")
        return self._describe(row)

    def for_request(self, request_id: int) -> list[dict]:
        return [self._describe(r) for r in self.runner.for_subject(request_id, (PACKAGE, TRANSFER))]

    def _describe(self, r) -> dict:
        tz = self.ev.settings.tz
        return {"id": r.id, "request_id": r.subject, "kind": r.kind, "status": r.status, "progress": r.progress,
                "result": r.result, "error": r.error, "node": r.node, "by": r.created_by,
                "attempts": r.attempts, "created": format_time(r.created_us, tz),
                "finished": fmt(r.finished_us, tz)}

    def package_location(self, request_id: int) -> tuple[str | None, str]:
        """(the node whose disk holds the request's package, the zip's name)."""
        from sqlalchemy import select

        from varta.db.schema import evidence_requests

        with self.engine.connect() as conn:
            pkg = conn.execute(select(evidence_requests.c.package).where(evidence_requests.c.id == request_id)).scalar()
        if not pkg:
            raise NotFound("this request has no package yet")
        return pkg.get("node"), pkg["zip"]

    def package_path(self, request_id: int) -> Path:
        node, name = self.package_location(request_id)
        path = self.packages_dir / name
        if not path.is_file():
            raise NotFound(f"the package file {name} is not on this server")
        return path


class _Handler:
    """Adapts a ``run(job, request_id, who)`` method to the runner's handler protocol."""

    def __init__(self, jobs: EvidenceJobs, run):
        self.jobs, self._run = jobs, run

    def run(self, job: JobContext) -> dict:
        return self._run(job, job.subject, principal_from(job.params["by"]))

    def failed(self, job: JobContext, error: str) -> None:
        if job.kind == PACKAGE:
            self.jobs._remove_leftovers(job.id, job.params.get("name"))
        self.jobs.ev.record_failure(principal_from(job.params["by"]), job.id, job.kind, job.subject, error)
