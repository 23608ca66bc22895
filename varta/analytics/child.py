"""``varta serve`` runs the analytics worker as a child process and restarts it if it dies.

A separate process, not threads of the recorder: analysis can crash (a bad frame in a
native library), use memory or CPU, or hang, and recording must not notice (issue 5,
"analytics can never stall or lose recording"). The child runs niced (worker.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

from varta.recording.ingest import die_with_parent

log = logging.getLogger("varta.analytics")


class AnalyticsChild:
    def __init__(self, node_id: str, max_backoff_s: float = 30.0):
        self.node_id = node_id
        self.max_backoff_s = max_backoff_s
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="analytics-child", daemon=True)

    def start(self) -> "AnalyticsChild":
        self._thread.start()
        return self

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            cmd = [sys.executable, "-m", "varta.cli", "analytics", "run"]
            try:
                # The worker is part of this node: it follows the node's ``analyse`` leases
                # and neither takes the data folder's lock nor registers a node of its own.
                env = {**os.environ, "VARTA_NODE_CHILD": self.node_id}
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent)
            except OSError as exc:
                log.error("cannot start the analytics worker: %s", exc)
                self._stop.wait(backoff)
                continue
            code = self.proc.wait()
            if self._stop.is_set():
                return
            self.restarts += 1
            log.error("the analytics worker ended with code %s; restarting in %.0f s (recording is unaffected)",
                      code, backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout=5)
