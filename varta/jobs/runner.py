"""The one job runner: exports, evidence package builds and transfers, by lease.

A job is a row in ``jobs`` (status, progress, parameters, resumable state, result) and,
while it runs, a lease ``job:<id>`` held by the node running it. The row is the only
shared state, so any web node reports on any job. When the node running a job dies (its
session lapses), another node with the ``web`` role claims the lease and runs the job
again: an export or a package build starts over (the archive it reads is held), a transfer
continues from the parts already uploaded. A job that cannot go on says why and fails.
Every write of a running job checks its lease (fencing), so a node that was frozen and
woke up cannot overwrite what the new runner did.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from sqlalchemy import insert, select, update

from varta.clock import now_us
from varta.cluster.leases import JOB, Fence, Fenced, LeaseStore, check_fence, lease_name
from varta.db.schema import jobs

log = logging.getLogger("varta.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class JobStopped(Exception):
    """The node is shutting down: the job stays ``running`` and is resumed by the next node."""


class Handler(Protocol):
    def run(self, job: "JobContext") -> dict: ...
    def failed(self, job: "JobContext", error: str) -> None: ...  # journal, clean up


@dataclass
class JobContext:
    runner: "JobRunner"
    id: str
    kind: str
    subject: int | None
    params: dict
    fence: Fence
    attempt: int
    resumed_from: str  # the node that ran it before ("" on a first run)

    def progress(self, p: float) -> None:
        self.runner._progress(self, p)

    def save_params(self, params: dict) -> None:
        self.params = params
        self.runner._write(self, params=params)

    def load_resume(self) -> dict | None:
        with self.runner.engine.connect() as conn:
            return conn.execute(select(jobs.c.resume).where(jobs.c.id == self.id)).scalar()

    def save_resume(self, state: dict) -> None:
        self.runner._write(self, resume=state)

    def should_stop(self) -> bool:
        return self.runner._stopping.is_set()

    @property
    def files_node(self) -> str:
        return self.runner.files_node


class JobRunner:
    def __init__(self, engine, node_id: str, *, files_node: str | None = None, settled: Callable[[], bool] = lambda: True,
                 poll_s: float = 2.0, node_name: Callable[[str | None], str] = lambda n: n or "?"):
        self.engine = engine
        self.node_id = node_id
        self.files_node = files_node or node_id  # whose disk the job's output files are on
        self.leases = LeaseStore(engine)
        self.settled = settled
        self.poll_s = poll_s
        self.node_name = node_name
        self.handlers: dict[str, Handler] = {}
        self._stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._last_progress: dict[str, float] = {}
        self._loop_thread: threading.Thread | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    # --- submitting ------------------------------------------------------------------------
    def submit(self, kind: str, params: dict, created_by: str, subject: int | None = None) -> str:
        """A new job, run at once by this node (its lease taken in the same breath)."""
        job_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(insert(jobs).values(
                id=job_id, kind=kind, subject=subject, status=QUEUED, progress=0.0, params=params, error="",
                node=self.files_node, attempts=0, created_by=created_by, created_us=now_us()))
        fence = self.leases.create_held(JOB, job_id, self.node_id)
        self._spawn(job_id, fence, "")
        return job_id

    def busy(self, kind_in: tuple[str, ...], subject: int) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs.c.id).where(jobs.c.subject == subject, jobs.c.kind.in_(kind_in),
                                                       jobs.c.status.in_((QUEUED, RUNNING)))).first()
        return row.id if row else None

    # --- running ----------------------------------------------------------------------------
    def _spawn(self, job_id: str, fence: Fence, resumed_from: str) -> None:
        t = threading.Thread(target=self._body, args=(job_id, fence, resumed_from), name=f"job-{job_id}", daemon=True)
        self._threads[job_id] = t
        t.start()

    def _body(self, job_id: str, fence: Fence, resumed_from: str) -> None:
        try:
            self._run_job(job_id, fence, resumed_from)
        finally:
            self._threads.pop(job_id, None)
            self._last_progress.pop(job_id, None)

    def _run_job(self, job_id: str, fence: Fence, resumed_from: str) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            self.leases.drop(fence)
            return
        ctx = JobContext(self, row.id, row.kind, row.subject, dict(row.params or {}), fence, row.attempts + 1,
                         resumed_from)
        handler = self.handlers.get(row.kind)
        try:
            self._write(ctx, status=RUNNING, node=self.files_node, attempts=ctx.attempt, started_us=now_us(), error="")
            if handler is None:
                raise RuntimeError(f"this node cannot run {row.kind} jobs")
            result = handler.run(ctx)
        except JobStopped:
            log.info("job %s left for the next node (this one is stopping)", job_id)
            return
        except Fenced as exc:
            log.warning("job %s moved to another node (%s); this node stops working on it", job_id, exc)
            return
        except Exception as exc:  # noqa: BLE001 - every failure ends the job visibly
            known = getattr(exc, "job_message", None) or (str(exc) if _is_expected(exc) else None)
            if known is None:
                log.exception("job %s failed", job_id)
                known = f"internal error: {exc}"
            self._fail(ctx, handler, known)
            return
        try:
            self._write(ctx, status=DONE, progress=1.0, result=result, finished_us=now_us())
        except Fenced:
            return
        self.leases.drop(fence)

    def _fail(self, ctx: JobContext, handler, error: str) -> None:
        try:
            self._write(ctx, status=FAILED, error=error, finished_us=now_us())
        except Fenced:
            return
        if handler is not None:
            try:
                handler.failed(ctx, error)
            except Exception:
                log.exception("job %s: failure follow-up failed", ctx.id)
        self.leases.drop(ctx.fence)

    def _write(self, ctx: JobContext, **values) -> None:
        """Update the job's row under its lease (raises Fenced when it moved on)."""
        with self.engine.begin() as conn:
            check_fence(conn, ctx.fence)
            conn.execute(update(jobs).where(jobs.c.id == ctx.id).values(**values))

    def _progress(self, ctx: JobContext, p: float) -> None:
        last = self._last_progress.get(ctx.id, -1.0)
        if p - last >= 0.01 or p >= 1.0:  # at most ~100 writes per job
            self._last_progress[ctx.id] = p
            self._write(ctx, progress=round(min(p, 1.0), 3))

    def finish_with(self, ctx: JobContext, **values) -> None:
        """A handler's last writes that belong with the job's own (same fence)."""
        self._write(ctx, **values)

    # --- taking over ------------------------------------------------------------------------------
    def start(self) -> "JobRunner":
        self._loop_thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._loop_thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                self.take_over()
            except Exception:
                log.exception("jobs: looking for orphaned jobs failed; retrying")

    def take_over(self) -> list[str]:
        """Run the jobs this node holds but does not run (after its own restart), and claim
        the jobs of nodes that died."""
        taken = []
        for lease in self.leases.held_by(self.node_id, JOB).values():
            if lease.key not in self._threads:
                self._resume(lease.key, lease.fence(), self.node_id)
                taken.append(lease.key)
        if not self.settled():
            return taken
        orphans = [lease for lease in self.leases.orphans(JOB)]
        if orphans:
            got = self.leases.claim([lease.name for lease in orphans], self.node_id)
            for name, (before, fence) in got.items():
                self._resume(fence.name.split(":", 1)[1], fence, before.holder or "")
                taken.append(name)
        return taken

    def _resume(self, job_id: str, fence: Fence, previous: str) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs.c.status, jobs.c.kind).where(jobs.c.id == job_id)).first()
        if row is None or row.status not in (QUEUED, RUNNING):
            self.leases.drop(fence)
            return
        who = "this node's restart" if previous == self.node_id else f"node {self.node_name(previous)} stopped"
        log.info("job %s (%s) resumed here after %s", job_id, row.kind, who)
        self._spawn(job_id, fence, previous)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for t in list(self._threads.values()):
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        if self._loop_thread:
            self._loop_thread.join(timeout=5)

    # --- reading -----------------------------------------------------------------------------------
    def get(self, job_id: str):
        with self.engine.connect() as conn:
            return conn.execute(select(jobs).where(jobs.c.id == job_id)).first()

    def for_subject(self, subject: int, kinds: tuple[str, ...]) -> list:
        with self.engine.connect() as conn:
            return conn.execute(select(jobs).where(jobs.c.subject == subject, jobs.c.kind.in_(kinds))
                                .order_by(jobs.c.created_us.desc())).all()


_EXPECTED: tuple[type, ...] = ()


def expected_errors(*types: type) -> None:
    """Error types whose message is shown to the user as is (no traceback in the log)."""
    global _EXPECTED
    _EXPECTED = tuple(set(_EXPECTED) | set(types))


def _is_expected(exc: Exception) -> bool:
    return isinstance(exc, _EXPECTED)


def job_lease(job_id: str) -> str:
    return lease_name(JOB, job_id)
