"""One Varta node process: ``varta serve`` (all roles), ``varta recorder``, ``varta web`` or
``varta analytics run`` (docs/design/cluster.md, "A node's life").

Start: take the data folder's lock (one process per node), open and migrate the database
(once in the cluster), adopt footage recorded under the node's pre-cluster name, register
the node and start its session, start the roles, then the coordinator that gives them work
by lease, and serve HTTP: the console and API on web nodes, the internal node API on every
node (a recording node serves only that, without loading the web application).

Stop (SIGINT/SIGTERM): hand cameras to other nodes make-before-break (up to
``shutdown_handover_s``), stop the roles, end the session (whatever is left is free at
once for the other nodes), release the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

from varta import __version__

log = logging.getLogger("varta.node")

RECORDER, WEB, ANALYTICS = "recorder", "web", "analytics"


class NodeStartError(RuntimeError):
    pass


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise NodeStartError(f"listen address {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080") from None


def bind(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise NodeStartError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def advertised(settings, sock: socket.socket) -> str:
    if settings.node_address:
        return settings.node_address.rstrip("/")
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def adopt_legacy_rows(engine, node_id: str, names: list[str]) -> int:
    """Footage, outages, statuses, events, alarms and jobs written before this node had an id
    were labelled with its host (or recorder) name: they are this node's now."""
    from sqlalchemy import update

    from varta.db.schema import (analytics_status, camera_status, cluster_nodes, events, jobs, outages, segments,
                                 system_alarms)

    done = 0
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(cluster_nodes.select().with_only_columns(cluster_nodes.c.id))}
        for name in {n for n in names if n and n not in known}:
            for table, col in ((segments, "recorder"), (outages, "recorder"), (camera_status, "recorder"),
                               (events, "worker"), (analytics_status, "worker"), (system_alarms, "node"),
                               (jobs, "node")):
                res = conn.execute(update(table).where(table.c[col] == name).values({col: node_id}))
                done += res.rowcount or 0
    if done:
        log.info("adopted %d rows recorded under this node's former name(s) %s", done, ", ".join(names))
    return done


@dataclass
class NodeRuntime:
    settings: object
    roles: set[str]
    engine: object = None
    identity: object = None
    registry: object = None
    verifier: object = None
    peers: object = None
    files: object = None
    live: object = None
    recorder: object = None
    analytics_worker: object = None
    analytics_child: object = None
    runner: object = None
    coordinator: object = None
    registry_cameras: object = None
    access: object = None
    who: object = None
    address: str = ""
    _lock: object = None
    _stoppers: list = field(default_factory=list)

    def name_of(self, node_id: str | None) -> str:
        if not node_id:
            return "?"
        try:
            return self.registry.names().get(node_id, node_id[:8])
        except Exception:  # noqa: BLE001 - a label only
            return node_id[:8]

    def settled(self) -> bool:
        c = self.coordinator
        return c is not None and c._ok_since is not None and \
            __import__("time").monotonic() - c._ok_since >= c.ttl_s


def start_node(settings, roles: set[str], sock: socket.socket | None, *, child_analytics: bool = True) -> NodeRuntime:
    """Everything but the HTTP server: returns the running node."""
    from varta.cameras.registry import CameraRegistry
    from varta.cli_support import access_control
    from varta.cluster.identity import DataFolderLock, NodeLockError, load_identity
    from varta.cluster.nodes import NodeError, NodeRegistry
    from varta.cluster.peer import PeerClient, PeerVerifier
    from varta.db.engine import open_database
    from varta.live.hub import LiveHub
    from varta.storage.files import NodeFiles

    rt = NodeRuntime(settings, set(roles))
    rt.identity = load_identity(settings.home)
    try:
        rt._lock = DataFolderLock(settings.home).acquire()
    except NodeLockError as exc:
        raise NodeStartError(str(exc)) from None
    try:
        rt.engine = open_database(settings.db_url, keys_dir=settings.keys_dir, identity=rt.identity)
    except Exception as exc:
        rt._lock.release()
        raise NodeStartError(f"cannot open the database: {exc}") from None
    from varta.config import unknown_setting_keys

    for key in unknown_setting_keys():
        log.warning("setting %s is not known to this version (%s): ignored", key, __version__)
    rt.registry = NodeRegistry(rt.engine, int(settings.cluster_lease_s * 1e6))
    if not any(n.id == rt.identity.id for n in rt.registry.list()):
        adopt_legacy_rows(rt.engine, rt.identity.id, [settings.recorder_name, os.uname().nodename])
    rt.address = advertised(settings, sock) if sock is not None else ""
    try:
        rt.registry.register(node_id=rt.identity.id, name=settings.node_name, roles=sorted(roles),
                             address=rt.address, version=__version__, capacity=settings.node_capacity,
                             groups=settings.node_groups, takes_unpinned=settings.record_unassigned,
                             public_key=rt.identity.public_key_pem, wrap_key=rt.identity.wrap_key_pem,
                             pid=os.getpid())
    except NodeError as exc:
        rt._lock.release()
        raise NodeStartError(str(exc)) from None
    _secrets_key(rt)
    rt.access = access_control(settings, rt.engine)
    from varta.access.service import console_principal

    rt.who = console_principal(rt.access.accounts, None)
    rt.access.record(rt.who, "system.maintain", f"node:{settings.node_name}",
                     detail=f"node {rt.identity.id} started: {', '.join(sorted(roles))} at {rt.address or '-'}")
    rt.verifier = PeerVerifier(rt.registry)
    rt.peers = PeerClient(rt.identity, rt.registry)
    from varta.storage.objects import StoreError, open_store

    try:
        store = open_store(settings)
    except StoreError as exc:
        rt._lock.release()
        raise NodeStartError(str(exc)) from None
    if store is not None:
        info = store.check()  # said plainly at start: which protection of holds is in force
        if not info.reachable:
            log.error("archive: %s cannot be reached now (%s); segments wait on this disk until it can",
                      store.cfg.where(), info.detail)
        else:
            log.info("archive: %s; holds are protected by %s", store.cfg.where(),
                     "the bucket (S3 Object Lock legal holds)" if info.object_lock
                     else "Varta's database only (the bucket has no Object Lock)")
    rt.files = NodeFiles(settings, rt.identity.id, rt.peers, store)
    rt.registry_cameras = CameraRegistry(rt.engine)
    from varta.cluster.leases import LeaseStore

    rt.live = LiveHub(settings.rtsp_timeout_s, node_id=rt.identity.id, leases=LeaseStore(rt.engine),
                      registry=rt.registry, peers=rt.peers, recording_now=lambda cam: recording_now(rt, cam))
    work = []
    if RECORDER in roles:
        from varta.recording.service import RecorderService

        rt.recorder = RecorderService(rt.engine, settings, rt.identity.id, node_name=rt.name_of, live=rt.live,
                                      store=store)
        rt.recorder.start()
        work.append(rt.recorder)
    if ANALYTICS in roles:
        from varta.analytics.role import AnalyseRole

        work.append(AnalyseRole(rt.engine))
        if child_analytics:
            from varta.analytics.child import AnalyticsChild

            rt.analytics_child = AnalyticsChild(node_id=rt.identity.id).start()
    if WEB in roles:
        from varta.jobs.runner import JobRunner

        rt.runner = JobRunner(rt.engine, rt.identity.id, settled=rt.settled, node_name=rt.name_of)
    from varta.cluster.coordinator import Coordinator, Duty

    duties = [Duty("monitor", lambda: monitor_nodes(rt))]
    if WEB in roles:
        # One web node for the city sends what outside systems are owed (it holds the city's
        # key, from which the receivers' signing secrets are derived).
        duties.append(Duty("deliveries", exchange_dispatcher(rt).tick, background=True))
        from varta.onvif.service import Onvif

        # One web node for the city checks the ONVIF devices (clock, streams, firmware) and
        # sends idle PTZ cameras home.
        duties.append(Duty("onvif", Onvif(rt.engine, rt.registry, settings, node=rt.identity.id).tick, background=True))
        from varta.onvif.events import CameraEvents

        # …and, on the node holding it, the cameras' own motion and tamper events (PullPoint).
        duties.append(Duty("onvif_events", CameraEvents(rt.engine, settings.onvif_timeout_s).tick))
    if store is not None:
        from varta.storage.holds import LegalHolds

        # One node for the city keeps the bucket's legal holds in step with Varta's holds.
        duties.append(Duty("archive_holds", LegalHolds(rt.engine, store).tick, background=True))
    if store is not None or rt.engine.dialect.name == "postgresql":
        from varta.events.system_alarms import SystemAlarms
        from varta.recording.expiry import CityRetention

        # One node for the city: bucket-only footage of any recorder (a dead one's too), and
        # whole days of the PostgreSQL index (prepared ahead, dropped when all expired).
        duties.append(Duty("archive_retention", CityRetention(rt.engine, settings, store,
                                                              SystemAlarms(rt.engine, rt.identity.id)).tick,
                           background=True))
    rt.coordinator = Coordinator(
        rt.engine, rt.identity.id, roles=work, duties=duties, tick_s=settings.cluster_tick_s,
        ttl_s=settings.cluster_lease_s, max_moves=settings.cluster_max_moves, registry=rt.registry,
        load=lambda: node_load(rt), every_full_pass=[lambda: share_key(rt)])
    rt.coordinator.start()
    if rt.runner is not None:
        rt.runner.start()
        threading.Thread(target=_city_key, args=(rt,), name="instance-key", daemon=True).start()
    return rt


def _city_key(rt: NodeRuntime) -> None:
    """A web node makes sure the city's signing key exists (made once, by the first web
    node) and is shared with every node, long before the first package needs it."""
    from varta.evidence.keys import instance_key
    from varta.evidence.signing import KeyFileError

    try:
        instance_key(rt.engine, rt.identity, rt.settings.keys_dir)
    except KeyFileError as exc:
        log.info("instance key: %s", exc)
    except Exception:  # noqa: BLE001 - it is tried again when a package needs it
        log.exception("instance key: not ready")


def recording_now(rt: NodeRuntime, camera_id: str) -> bool:
    """This node's recording of the camera runs and can feed its live relay (PyAV backend)."""
    if rt.recorder is None or rt.settings.recorder_backend != "pyav":
        return False
    sup = rt.recorder.supervisors.get(camera_id)
    return sup is not None and sup.is_alive() and not sup.fenced and sup.state == "recording"


def share_key(rt: NodeRuntime) -> None:
    from varta.evidence.keys import share_instance_key
    from varta.secrets.vault import vault_for

    share_instance_key(rt.engine, rt.identity.id, rt.settings.keys_dir)
    vault_for(rt.engine).share()


def _secrets_key(rt: NodeRuntime, wait_s: float = 60.0) -> None:
    """The secrets key (varta/secrets): this node's own, made here the very first time, or
    waited for until a running node seals a copy for this one; then whatever the database
    still holds in clear (written before this version) is sealed."""
    from varta.secrets.box import SecretsError
    from varta.secrets.vault import seal_all, vault_for

    vault = vault_for(rt.engine)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            vault.ensure()
            break
        except SecretsError as exc:
            if time.monotonic() > deadline:
                log.error("secrets key: %s; cameras' addresses and second factors cannot be read until it "
                          "arrives", exc)
                return
            log.info("secrets key: %s (waiting)", exc)
            time.sleep(1.0)
    try:
        done = seal_all(rt.engine)
        if done:
            log.info("secrets sealed at rest: %s", ", ".join(f"{k} {n}" for k, n in done.items()))
    except Exception:  # noqa: BLE001 - tried again at the next start; reading still works
        log.exception("sealing the database's secrets")


def node_load(rt: NodeRuntime) -> dict:
    """What the Nodes page shows of this node (published with every heartbeat)."""
    out: dict = {"pid": os.getpid()}
    try:
        out["cpu_s"] = round(sum(os.times()[:2]), 1)
    except OSError:
        pass
    if rt.recorder is not None:
        sups = dict(rt.recorder.supervisors)
        out["cameras"] = len(sups)
        out["recording"] = sum(1 for s in sups.values() if s.state == "recording")
        out["standby"] = len(rt.recorder.standbys)
        st = rt.recorder.janitor.last_storage
        if st is not None:
            from varta.recording.janitor import storage_summary

            out["storage"] = storage_summary(st)
        if rt.recorder.shipper is not None:
            out["archive"] = rt.recorder.shipper.status()
    if rt.live is not None:
        out["relays"] = rt.live.sources()
    if rt.runner is not None:
        out["jobs"] = len(rt.runner._threads)
    return out


def exchange_dispatcher(rt: NodeRuntime):
    """The outbox's sender (varta/exchange), with the subscriber's rights checked at delivery."""
    from varta.events.system_alarms import SystemAlarms
    from varta.evidence.keys import instance_key
    from varta.evidence.service import WEBHOOK_SECRETS
    from varta.exchange.dispatcher import Dispatcher, rights_check
    from varta.exchange.store import Exchange

    key = []

    def master() -> bytes:
        if not key:
            key.append(instance_key(rt.engine, rt.identity, rt.settings.keys_dir).derive(WEBHOOK_SECRETS))
        return key[0]

    from varta.lockdown.service import withheld_picture

    return Dispatcher(Exchange(rt.engine, master, rt.settings.tz), rights_check(rt.access),
                      SystemAlarms(rt.engine, rt.identity.id), withhold_picture=withheld_picture(rt.engine))


def monitor_nodes(rt: NodeRuntime) -> None:
    """The cluster-wide duty of one node: an alarm while a node is down, cleared when it
    returns (or was stopped cleanly)."""
    from varta.clock import format_time
    from varta.events.system_alarms import SystemAlarms

    for n in rt.registry.list():
        alarms = SystemAlarms(rt.engine, n.id)
        if n.status == "down":
            alarms.raise_once("node_down", "critical",
                              f"node {n.name} ({', '.join(n.roles)}, host {n.hostname}) stopped heartbeating at "
                              f"{format_time(n.heartbeat_us, rt.settings.tz)}; its cameras and jobs were taken "
                              f"over by other nodes")
        else:
            alarms.clear("node_down")


def stop_node(rt: NodeRuntime) -> None:
    """Hand work over, stop the roles, end the session, release the lock."""
    if rt.coordinator is not None:
        try:
            rt.coordinator.hand_over_all(rt.settings.shutdown_handover_s)
        except Exception:  # noqa: BLE001 - stopping must go on
            log.exception("hand-over at shutdown failed")
        rt.coordinator.stop()
    if rt.analytics_child is not None:
        rt.analytics_child.stop()
    if rt.analytics_worker is not None:
        rt.analytics_worker.stop()
    if rt.recorder is not None:
        rt.recorder.stop()
    if rt.runner is not None:
        rt.runner.stop()
    if rt.live is not None:
        rt.live.stop_all()
    try:
        rt.registry.stopped(rt.identity.id)
        rt.access.record(rt.who, "system.maintain", f"node:{rt.settings.node_name}",
                         detail=f"node {rt.identity.id} stopped")
    except Exception:  # noqa: BLE001
        log.exception("could not record the node's stop")
    if rt._lock is not None:
        rt._lock.release()


def serve_http(app, sock: socket.socket, on_started=None, more: tuple[socket.socket, ...] = ()) -> None:
    """Serve ``app`` on ``sock`` (and the ``more`` sockets) until SIGINT/SIGTERM (handled
    here, so the caller's clean-up always runs afterwards)."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # the signals are ours: see below
            yield

    # No per-message deflate: live video is already compressed, and zlib over every
    # viewer's copy cost 0.3 % of a core per viewer (bench/RESULTS.md, live).
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, ws_per_message_deflate=False,
                                    lifespan="on"))
    asked = []

    def on_signal(signum, _frame):
        asked.append(signum)
        server.should_exit = True  # an attribute, no lock: safe in a signal handler

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    if on_started:
        def announce() -> None:
            import time

            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                on_started()
        threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock, *more])


def internal_app(rt: NodeRuntime):
    """The lean app of a node without the web role: the internal API and a health check."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from varta.node.internal import internal_routes

    async def health(_request):
        return JSONResponse({"status": "ok", "node": rt.settings.node_name, "roles": sorted(rt.roles)})

    return Starlette(routes=[Route("/api/system/health", health), *internal_routes(rt)])


def run_node(settings, roles: set[str], listen: str, banner=None, remote_listen: tuple[str, ...] = ()) -> None:
    """Run a node until SIGINT/SIGTERM. ``remote_listen``: more addresses for the console
    and API whose connections are remote access (settings.remote_entrances)."""
    sock = bind(listen)
    more = tuple(bind(r) for r in remote_listen)
    if more:
        settings = settings.model_copy(update={"remote_entrances": [
            *settings.remote_entrances, *(s.getsockname()[0] for s in more)]})
    rt = start_node(settings, roles, sock)
    try:
        if WEB in roles:
            from varta.web.app import create_app

            app = create_app(settings, rt.engine, rt)
        else:
            app = internal_app(rt)
        serve_http(app, sock, on_started=(lambda: banner(rt)) if banner else None, more=more)
    finally:
        stop_node(rt)
