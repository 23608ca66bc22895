"""A command's own short session, so that work it runs itself is held by lease like any node's.

``varta request prepare`` on a server's shell builds the package in its own process. Its
job lease needs a live holder: the command registers a session (role ``cli``), keeps it
alive while it works, and ends it when done. If the command is killed, the session lapses
like a dead node's and a web node takes the job over.
"""

from __future__ import annotations

import os
import threading
import uuid

from sqlalchemy import delete, select

from varta import __version__
from varta.db.schema import cluster_nodes, leases


class CommandSession:
    def __init__(self, engine, name: str, ttl_s: float = 5.0):
        from varta.cluster.nodes import NodeRegistry

        self.engine = engine
        self.id = f"cli-{uuid.uuid4()}"
        self.name = name
        self.registry = NodeRegistry(engine, int(ttl_s * 1e6))
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CommandSession":
        self.registry.register(node_id=self.id, name=self.name, roles=["cli"], address="", version=__version__,
                               capacity=0, groups=[], takes_unpinned=False, public_key="", wrap_key="",
                               pid=os.getpid())
        self._thread = threading.Thread(target=self._beat, name="cli-session", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.registry.heartbeat(self.id)
            except Exception:  # noqa: BLE001 - the next beat tries again
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.registry.stopped(self.id)
        with self.engine.begin() as conn:  # nothing held any more: leave no trace in the node list
            if conn.execute(select(leases.c.name).where(leases.c.holder == self.id)).first() is None:
                conn.execute(delete(cluster_nodes).where(cluster_nodes.c.id == self.id))
