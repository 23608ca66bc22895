"""Run ``camsim.py`` (the GStreamer RTSP camera simulator) from the project's Python.

The GStreamer bindings exist only for Debian's ``/usr/bin/python3``, so the server runs
as a child process of that interpreter; this module (stdlib only) starts it, waits until
it listens, hands out camera URLs and stops/restarts it to simulate outages::

    with CameraSimulator({"cam1": "a.ts", "cam2": "b.ts"}, user="u", password="p") as sim:
        url = sim.url("cam1")          # rtsp://u:p@127.0.0.1:PORT/cam1
        sim.stop(); sim.start()        # outage and recovery, same port

Use :func:`gst_rtsp_available` to skip tests cleanly where GStreamer is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from functools import lru_cache
from pathlib import Path
from typing import IO, Mapping
from urllib.parse import quote

__all__ = ["CAMSIM_SCRIPT", "DEFAULT_PYTHON", "CameraSimulator", "gst_rtsp_available"]

#: The standalone server script, run under :data:`DEFAULT_PYTHON`.
CAMSIM_SCRIPT = Path(__file__).resolve().with_name("camsim.py")
#: Debian's interpreter, the one that has the ``gi`` GStreamer bindings.
DEFAULT_PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"

_EXIT_BIND_FAILED = 3  # camsim.py's status when the port is busy

_INSTALL_HINT = (
    "install the Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-rtsp"
)

_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
print(",".join(e for e in ("multifilesrc", "tsdemux", "h264parse", "rtph264pay")
               if Gst.ElementFactory.find(e) is None))
"""


@lru_cache(maxsize=None)
def gst_rtsp_available(python: str = DEFAULT_PYTHON) -> tuple[bool, str]:
    """Whether the camera simulator can run under *python*: ``(ok, reason_if_not)``."""
    if shutil.which(python) is None:
        return False, f"{python} not found (the GStreamer bindings come with Debian's python3)"
    try:
        proc = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"GStreamer RTSP server bindings unusable from {python} ({last}); {_INSTALL_HINT}"
    missing = proc.stdout.strip()
    if missing:
        return False, f"GStreamer elements missing: {missing}; {_INSTALL_HINT}"
    return True, ""


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after *timeout* seconds."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass


class CameraSimulator:
    """A local RTSP server with one simulated camera per mount (``{name: ts_path}``).

    *port* ``None`` lets the server pick a free port on 127.0.0.1 at the first start
    (no race between choosing and binding); later starts reuse the same port so that
    clients' URLs stay valid across a simulated outage. With *user*/*password* set,
    clients must use RTSP basic auth (others get 401). *threads* > 0 spreads RTSP
    clients over that many server threads (default: all on one thread, ~128 4 Mbit/s
    clients per core). The server's stdout/stderr go to :attr:`log_path`.
    """

    #: Interpreter that runs camsim.py (needs GStreamer's ``gi`` bindings).
    python: str = DEFAULT_PYTHON
    #: Seconds to wait for the server's READY line.
    ready_timeout: float = 20.0

    def __init__(
        self,
        mounts: Mapping[str, str | os.PathLike[str]],
        *,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        threads: int = 0,
        python: str | None = None,
        ready_timeout: float | None = None,
    ) -> None:
        if not mounts:
            raise ValueError("at least one mount is needed")
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        self.mounts: dict[str, Path] = {n.strip("/"): Path(p).resolve() for n, p in mounts.items()}
        for name, path in self.mounts.items():
            if not path.is_file():
                raise FileNotFoundError(f"mount {name!r}: {path}")
        self.port: int | None = port or None
        self.user, self.password, self.threads = user, password, threads
        if python is not None:
            self.python = python
        if ready_timeout is not None:
            self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="varta-camsim-"))
        # Remove the scratch dir (and kill a forgotten server) even without close().
        self._dir_finalizer = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self.log_path = self._workdir / "camsim.log"
        self.stats_path = self._workdir / "sessions.json"

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running else None

    def start(self) -> CameraSimulator:
        """Start the server (no-op if running) and wait until it accepts connections.

        Raises RuntimeError, with the server's output, if it exits or is not ready
        within :attr:`ready_timeout` seconds.
        """
        if self.is_running:
            return self
        if not self._dir_finalizer.alive:  # start() after close()
            self._workdir.mkdir(parents=True, exist_ok=True)
            self._dir_finalizer = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            status = self._spawn_and_wait(deadline)
            if status is None:
                return self
            # Restarting on a fixed port right after stop() can find it briefly taken
            # (e.g. by a client's ephemeral port); retry until the deadline.
            if status == _EXIT_BIND_FAILED and time.monotonic() + 0.25 < deadline:
                time.sleep(0.25)
                continue
            raise RuntimeError(
                f"camera simulator exited with status {status} before it was ready:\n"
                f"{self.log_text()[-4000:]}"
            )

    def _spawn_and_wait(self, deadline: float) -> int | None:
        """Start camsim once; None when READY, else its exit status."""
        ready_file = self._workdir / "ready"
        ready_file.unlink(missing_ok=True)
        cmd = [self.python, str(CAMSIM_SCRIPT), "--port", str(self.port or 0),
               "--ready-file", str(ready_file), "--exit-with-parent",
               "--threads", str(self.threads), "--stats-file", str(self.stats_path)]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        if self.user is not None:
            cmd += ["--user", self.user, "--password", str(self.password)]
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open while running
        # Output goes to a file, not a pipe: nobody drains a pipe while the server runs,
        # and a full pipe would block it. Own session: a terminal's Ctrl-C reaches us,
        # and we stop the server in order.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self._proc = proc
        self._finalizer = weakref.finalize(self, _terminate, proc, 1.0)
        while True:
            status = proc.poll()
            if status is not None:
                self._finalizer.detach()
                self._proc = None
                return status
            try:
                line = ready_file.read_text().strip()
            except FileNotFoundError:
                line = ""
            if line.startswith("READY "):
                self.port = int(line.rsplit(":", 1)[1])
                return None
            if time.monotonic() > deadline:
                self.stop(timeout=1.0)
                raise RuntimeError(
                    f"camera simulator not ready after {self.ready_timeout:g} s:\n"
                    f"{self.log_text()[-4000:]}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after *timeout* s). Clients see the
        connection drop. The port is kept: :meth:`start` serves on it again."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, downtime: float = 0.0) -> CameraSimulator:
        """Stop, stay down *downtime* seconds, start again on the same port."""
        self.stop()
        time.sleep(downtime)
        return self.start()

    def close(self) -> None:
        """Stop and remove the scratch directory (log included)."""
        self.stop()
        self._dir_finalizer()

    def __enter__(self) -> CameraSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ URLs

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator has not been started yet (port unknown)")
        return f"rtsp://{HOST}:{self.port}"

    def url(self, name: str, with_auth: bool = True) -> str:
        """``rtsp://[user:password@]127.0.0.1:PORT/NAME`` for mount *name*."""
        name = name.strip("/")
        if name not in self.mounts:
            raise KeyError(f"no mount {name!r}; have {sorted(self.mounts)}")
        base = self.base_url
        if with_auth and self.user is not None:
            cred = f"{quote(self.user, safe='')}:{quote(str(self.password), safe='')}@"
            base = base.replace("rtsp://", "rtsp://" + cred, 1)
        return f"{base}/{name}"

    def urls(self, with_auth: bool = True) -> dict[str, str]:
        return {name: self.url(name, with_auth) for name in self.mounts}

    def sessions(self) -> dict[str, dict[str, int]]:
        """Per mount: ``active`` RTSP sessions now, ``opened`` since start, ``peak``."""
        import json

        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def log_text(self) -> str:
        """The server's output so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<CameraSimulator {state} port={self.port} mounts={sorted(self.mounts)}>"
